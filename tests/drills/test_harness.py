"""The drill harness: the sink's modes, metrics and log parsing, the runner's verdicts and teardown, the smoke drill
against a real server (SQLite and PostgreSQL), reports and the `faultlens drill` CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from typer.testing import CliRunner

from faultlens.cli import app as cli_app
from faultlens.drills import report
from faultlens.drills.harness import (
    Drill,
    DrillConfig,
    DrillContext,
    metric_delta,
    metric_sum,
    parse_metrics,
    read_json_lines,
    run_drill,
    series_key,
    trace_id_of,
    traceparent,
)
from faultlens.drills.registry import DRILLS, get
from faultlens.drills.sink import Sink
from faultlens.drills.waits import WaitTimeout, poll_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- config and waits ----------------------------------------------------------------------------------------------
def test_seconds_scale_every_duration_with_a_floor(tmp_path: Path) -> None:
    fast = DrillConfig(time_scale=0.1, work_dir=tmp_path)
    assert fast.seconds(60) == pytest.approx(6.0)
    assert fast.seconds(1, at_least=0.5) == 0.5
    assert fast.fast and not DrillConfig(work_dir=tmp_path).fast
    assert DrillConfig(work_dir=tmp_path).seconds(60) == 60


def test_poll_until_returns_the_value_or_names_what_it_waited_for() -> None:
    calls = iter([None, 0, "found"])
    assert poll_until(lambda: next(calls), timeout_s=5, what="x", every_s=0.001) == "found"
    with pytest.raises(WaitTimeout, match=r"the moon: not within 0\.05 s"):
        poll_until(lambda: None, timeout_s=0.05, what="the moon")


# --- the sink ------------------------------------------------------------------------------------------------------
def test_sink_records_each_call_with_the_status_it_answered() -> None:
    with Sink() as sink:
        assert httpx.post(f"{sink.url}/hook", json={"a": 1}, headers={"Idempotency-Key": "k1"}).status_code == 200
        sink.fail()
        assert httpx.post(f"{sink.url}/hook", json={"a": 2}).status_code == 500
        sink.throttle(7)
        answer = httpx.post(f"{sink.url}/hook", content=b"not json")
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "7")
        sink.accept()
        calls = sink.wait_for(3, timeout_s=5)
        assert [c.status for c in calls] == [200, 500, 429]
        assert calls[0].body == {"a": 1} and calls[0].idempotency_key == "k1" and calls[2].body == "not json"
        assert calls[0].path == "/hook" and calls[0].at_ms <= calls[2].at_ms
        assert [c.body for c in sink.accepted()] == [{"a": 1}]
        with pytest.raises(WaitTimeout, match="sink receiving 2 accepted calls"):
            sink.wait_for(2, timeout_s=0.1, accepted=True)


def test_sink_down_refuses_connections_and_up_serves_on_the_same_port() -> None:
    with Sink() as sink:
        url = sink.url
        sink.down()
        assert sink.mode == "down"
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}/hook", json={}, timeout=2)
        sink.up()
        assert sink.url == url and sink.mode == "accept"
        assert httpx.post(f"{url}/hook", json={}).status_code == 200
        assert len(sink.calls) == 1


def test_a_hanging_sink_records_the_call_as_never_answered() -> None:
    with Sink() as sink:
        sink.hang(30)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{sink.url}/hook", json={}, timeout=0.3)
        assert sink.wait_for(1)[0].status == 0
        assert sink.accepted() == []


# --- metrics, logs, trace ids --------------------------------------------------------------------------------------
METRICS_TEXT = """# HELP faultlens_alert_deliveries_total Deliveries.
# TYPE faultlens_alert_deliveries_total counter
faultlens_alert_deliveries_total{receiver="sink",outcome="retry"} 3.0
faultlens_alert_deliveries_total{receiver="sink",outcome="delivered"} 1.0
faultlens_alert_deliveries_created{receiver="sink",outcome="retry"} 1.7e9
# HELP faultlens_up Up.
# TYPE faultlens_up gauge
faultlens_up 1.0
"""


def test_metrics_parse_to_sorted_label_keys_without_created_samples() -> None:
    parsed = parse_metrics(METRICS_TEXT)
    assert parsed == {
        'faultlens_alert_deliveries_total{outcome="retry",receiver="sink"}': 3.0,
        'faultlens_alert_deliveries_total{outcome="delivered",receiver="sink"}': 1.0,
        "faultlens_up": 1.0,
    }
    assert series_key("faultlens_up") == "faultlens_up"
    assert metric_sum(parsed, "faultlens_alert_deliveries_total") == 4.0
    assert metric_sum(parsed, "faultlens_alert_deliveries_total", outcome="retry") == 3.0
    assert metric_sum(parsed, "faultlens_alert_deliveries_total", outcome="dropped") == 0.0


def test_metric_delta_keeps_changed_series_and_counts_new_ones_from_zero() -> None:
    before = {"a_total": 1.0, "a_other": 5.0, "b_total": 2.0}
    after = {"a_total": 4.0, "a_other": 5.0, "a_new": 2.0, "b_total": 3.0}
    assert metric_delta(before, after, "a_") == {"a_total": 3.0, "a_new": 2.0}


def test_json_log_lines_parse_and_other_lines_are_kept_raw(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text('{"msg": "up", "trace_id": "abc"}\nTraceback (most recent call last):\n\n[1, 2]\n')
    assert read_json_lines(path) == [
        {"msg": "up", "trace_id": "abc"},
        {"msg": "Traceback (most recent call last):", "raw": True},
        {"msg": "[1, 2]", "raw": True},
    ]
    assert read_json_lines(tmp_path / "missing.log") == []


def test_trace_ids_are_read_from_traceparent_header_or_error_body() -> None:
    parent = traceparent("ab" * 16)
    assert parent.startswith(f"00-{'ab' * 16}-") and parent.endswith("-01")
    assert trace_id_of(httpx.Response(200, headers={"traceparent": parent})) == "ab" * 16
    assert trace_id_of(httpx.Response(200, headers={"x-trace-id": "t1"})) == "t1"
    assert trace_id_of(httpx.Response(503, json={"error": {"code": "db_busy", "trace_id": "t2"}})) == "t2"
    assert trace_id_of(httpx.Response(200, json=[1])) is None


# --- the runner ----------------------------------------------------------------------------------------------------
def _drill(run: object, name: str = "trivial") -> Drill:
    return Drill(name=name, title="A trivial drill", shows="The runner's verdicts.", run=run)  # type: ignore[arg-type]


def test_a_drill_whose_checks_hold_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    def run(ctx: DrillContext) -> None:
        ctx.note("did something")
        ctx.add_trace_id("t1")
        ctx.add_trace_id("t1")
        ctx.record_deltas({"faultlens_x_total": 1.0}, {"faultlens_x_total": 3.0, "faultlens_h_bucket": 1.0})
        ctx.check("it held", True, "detail")

    result = run_drill(_drill(run), drill_config)
    assert result.verdict == "pass" and result.passed
    assert [c.name for c in result.checks] == ["it held", "nothing lost"]
    assert any(text == "did something" for _, text in result.timeline)
    assert result.trace_ids == ["t1"]
    assert result.metric_deltas == {"faultlens_x_total": 2.0}
    assert result.time_scale == 0.1 and result.database == "sqlite"


@pytest.mark.parametrize(
    ("body", "failed"),
    [
        (lambda ctx: ctx.check("no", False, "why"), "no"),
        (lambda ctx: setattr(ctx, "lost", 2), "nothing lost"),
        (lambda ctx: None, None),  # no check at all proves nothing
        (lambda ctx: ctx.wait_until(lambda: False, 0.05, "the impossible"), "drill raised"),
    ],
)
def test_a_failed_check_a_loss_no_checks_or_an_exception_fails_the_drill(
    drill_config: DrillConfig, body: object, failed: str | None
) -> None:
    result = run_drill(_drill(body), drill_config)
    assert result.verdict == "fail"
    if failed is not None:
        assert failed in [c.name for c in result.checks if not c.ok]


def test_a_raising_drill_is_torn_down_and_reports_what_it_raised(drill_config: DrillConfig) -> None:
    cleaned: list[str] = []

    def run(ctx: DrillContext) -> None:
        ctx.on_cleanup(lambda: cleaned.append("first"))
        ctx.on_cleanup(lambda: cleaned.append("second"))
        ctx.sink()
        ctx.check("before the fault", True)
        raise RuntimeError("boom")

    result = run_drill(_drill(run), drill_config)
    raised = [c for c in result.checks if c.name == "drill raised"]
    assert result.verdict == "fail" and len(raised) == 1
    assert "RuntimeError: boom" in raised[0].detail and "test_harness.py" in raised[0].detail
    assert cleaned == ["second", "first"]


def test_redis_prefix_keys_are_deleted_at_teardown(drill_config: DrillConfig) -> None:
    seen: dict[str, str] = {}

    def run(ctx: DrillContext) -> None:
        prefix = ctx.redis_prefix()
        client = redis.Redis.from_url(ctx.cfg.redis_url)
        client.set(f"{prefix}:a", "1")
        client.set(f"{prefix}:b", "1")
        seen["prefix"] = prefix
        ctx.check("keys written", len(list(client.scan_iter(match=f"{prefix}*"))) == 2)

    try:
        result = run_drill(_drill(run), drill_config)
    except redis.ConnectionError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Redis is not reachable: {exc}")
    assert result.verdict == "pass", report.render_markdown([result])
    client = redis.Redis.from_url(drill_config.redis_url)
    assert list(client.scan_iter(match=f"{seen['prefix']}*")) == []


# --- real servers --------------------------------------------------------------------------------------------------
def test_smoke_drill_passes_against_a_real_server_and_stops_it(drill_config: DrillConfig) -> None:
    pids: list[int] = []
    smoke = get("smoke")

    def run(ctx: DrillContext) -> None:
        smoke.run(ctx)
        pids.extend(s.pid for s in ctx.servers)

    result = run_drill(_drill(run, name="smoke"), drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.metric_deltas['faultlens_ingest_events_total{outcome="accepted"}'] == 1
    assert len(result.trace_ids) == 1
    assert result.log_lines and all(line["trace_id"] == result.trace_ids[0] for line in result.log_lines)
    assert pids and not any(_alive(pid) for pid in pids)


def test_a_killed_server_restarts_on_its_port_and_database_and_a_second_runner_shares_them(
    drill_config: DrillConfig,
) -> None:
    def run(ctx: DrillContext) -> None:
        a = ctx.start_server(name="a", lease_ttl_s=3)
        port, db = a.port, a.db_url
        assert a.env["FAULTLENS_LEASE_TTL_S"] == "3" and a.env["FAULTLENS_OBS_METRICS_STRICT"] == "true"
        ctx.check("authorised", a.get("/api/v1/events").status_code == 200)
        ctx.check("anonymous refused", httpx.get(f"{a.url}/api/v1/events").status_code == 401)
        first_pid = a.pid
        a.kill9()
        ctx.check("killed", not a.running)
        with pytest.raises(httpx.ConnectError):
            a.get("/healthz")
        a.restart()
        ctx.check("same port and database, new process", (a.port, a.db_url) == (port, db) and a.pid != first_pid)
        ctx.check("logs of both starts", {line["_start"] for line in a.logs()} == {1, 2})
        ctx.check("per-start logs", all(line["_start"] == 2 for line in a.logs(start=2)))
        b = ctx.start_server(name="b", same_database_as=a)
        ctx.check("shares database and key", (b.db_url, b.key) == (a.db_url, a.key) and b.port != a.port)
        ctx.check("b answers with a's key", b.get("/api/v1/events").status_code == 200)

    result = run_drill(_drill(run, name="restart"), drill_config)
    assert result.verdict == "pass", report.render_markdown([result])


def test_smoke_drill_on_postgresql_drops_its_database(drill_config_pg: DrillConfig) -> None:
    result = run_drill(get("smoke"), drill_config_pg)
    assert result.verdict == "pass", report.render_markdown([result])
    with psycopg.connect(drill_config_pg.pg_admin_url, autocommit=True) as admin:
        left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'faultlens_drill_smoke_%'").fetchall()
    assert left == []


# --- reports and the CLI -------------------------------------------------------------------------------------------
def test_reports_show_verdict_checks_timeline_deltas_trace_ids_and_log_lines(drill_config: DrillConfig) -> None:
    def run(ctx: DrillContext) -> None:
        ctx.note("sink | down")
        ctx.check("retried", True, "3 retries")
        ctx.check("delivered", False, "none")
        ctx.add_trace_id("f" * 32)
        ctx.add_log_lines([{"msg": "delivery failed", "trace_id": "f" * 32, "level": "WARNING", "_start": 1}])
        ctx.record_deltas({}, {'faultlens_x_total{reason="db_busy"}': 2.0, "faultlens_y_seconds_sum": 0.25})

    result = run_drill(_drill(run), drill_config)
    text = report.render_markdown([result])
    assert "0 of 1 passed." in text and "## trivial: FAIL" in text
    assert "- [x] retried: 3 retries" in text and "- [ ] delivered: none" in text
    assert "sink \\| down" in text
    assert text.index('faultlens_x_total{reason="db_busy"}') < text.index("faultlens_y_seconds_sum")
    assert f"- `{'f' * 32}`" in text and '"msg": "delivery failed"' in text and "_start" not in text
    doc = json.loads(report.as_json([result]))
    assert doc["passed"] is False
    assert doc["drills"][0]["verdict"] == "fail" and doc["drills"][0]["id"] == result.id
    assert doc["drills"][0]["timeline"][1] == {"t_ms": result.timeline[1][0], "text": "sink | down"}


def test_cli_lists_the_drills_and_refuses_bad_runs() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["drill", "list"])
    assert listed.exit_code == 0 and all(name in listed.output for name in DRILLS)
    assert runner.invoke(cli_app, ["drill", "run"]).exit_code == 2
    assert runner.invoke(cli_app, ["drill", "run", "no-such-drill"]).exit_code == 2
    assert runner.invoke(cli_app, ["drill", "run", "smoke", "--all"]).exit_code == 2
    assert runner.invoke(cli_app, ["drill", "run", "smoke", "--database", "oracle"]).exit_code == 2


def test_cli_runs_a_drill_and_writes_its_reports(tmp_path: Path) -> None:
    md, js = tmp_path / "out.md", tmp_path / "out.json"
    args = ["drill", "run", "smoke", "--fast", "--report", str(md), "--json", str(js), "--work-dir", str(tmp_path)]
    done = CliRunner().invoke(cli_app, args)
    assert done.exit_code == 0, done.output
    assert "smoke: pass" in done.output and "1 of 1 drills passed" in done.output
    assert "## smoke: PASS" in md.read_text()
    assert json.loads(js.read_text())["drills"][0]["time_scale"] == 0.1
