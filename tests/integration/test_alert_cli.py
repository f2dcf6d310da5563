"""`faultlens alerts`: the routing file check, and list / show / ack / silence / history / resend on a real database."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import update
from typer.testing import CliRunner

from faultlens.cli import app
from faultlens.store.tables import alert_notifications
from tests.conftest import make_services
from tests.helpers import ago, event

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "alert-routing.yaml"


def test_check_accepts_the_example_and_lists_every_problem_of_a_bad_file(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["alerts", "check", str(EXAMPLE), "--no-env"])
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.output
    bad = tmp_path / "routing.yaml"
    bad.write_text(
        "version: 1\n"
        "receivers:\n  - {name: hook, type: pager, url: 'ftp://x'}\n"
        "routes:\n  - {matchers: ['level=~(P0'], receivers: [nobody]}\n"
    )
    r = runner.invoke(app, ["alerts", "check", str(bad)])
    assert r.exit_code == 1
    assert "receivers[0].type" in r.output and "routes[0]" in r.output
    missing = runner.invoke(app, ["alerts", "check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2


def test_the_life_of_an_alert_from_the_command_line(sqlite_url: str) -> None:
    svc = make_services(sqlite_url, start_jobs=False, obs_alert_webhook="http://127.0.0.1:9/hook")
    try:
        svc.pipeline.ingest(
            [
                event(
                    id="cli-retry",
                    source="billing-worker",
                    item_type="task",
                    status="retry",
                    attempt=6,
                    max_attempts=3,
                    error_message="card processor answered 503",
                    occurred_at=ago(minutes=3),
                )
            ],
            tenant="default",
        )
        assert svc.alerting is not None
        now = int(time.time() * 1000)
        svc.alerting.evaluate_once(now=now - 2 * 60_000)
    finally:
        svc.engine.dispose()
    # The pass the command runs is a minute after the first one: the P1 alert fires.
    fired = runner.invoke(
        app, ["alerts", "evaluate", "--db", sqlite_url], env={"OBS_ALERT_WEBHOOK": "http://127.0.0.1:9/hook"}
    )
    assert fired.exit_code == 0, fired.output
    [alert_id] = json.loads(fired.output)["fired"]
    listed = json.loads(runner.invoke(app, ["alerts", "list", "--db", sqlite_url]).output)
    assert [a["id"] for a in listed["alerts"]] == [alert_id]
    assert listed["counts"]["firing"]["P1"] == 1
    acked = runner.invoke(app, ["alerts", "ack", alert_id, "--by", "ana", "--comment", "looking", "--db", sqlite_url])
    assert acked.exit_code == 0 and json.loads(acked.output)["acknowledged"]["by"] == "ana"
    silenced = runner.invoke(
        app,
        [
            "alerts",
            "silence",
            "add",
            "-m",
            "alertname=silent_retry_loop",
            "--comment",
            "card processor down",
            "--by",
            "ana",
            "--duration",
            "30m",
            "--db",
            sqlite_url,
        ],
    )
    assert silenced.exit_code == 0, silenced.output
    silence_id = json.loads(silenced.output)["id"]
    active = json.loads(
        runner.invoke(app, ["alerts", "silence", "list", "--state", "active", "--db", sqlite_url]).output
    )
    assert [s["id"] for s in active["items"]] == [silence_id]
    expired = runner.invoke(app, ["alerts", "silence", "expire", silence_id, "--db", sqlite_url])
    assert json.loads(expired.output)["status"]["state"] == "expired"
    history = json.loads(runner.invoke(app, ["alerts", "history", "--db", sqlite_url]).output)
    assert {h["event"] for h in history["items"]} >= {"pending", "firing", "acknowledged"}
    shown = json.loads(runner.invoke(app, ["alerts", "show", alert_id, "--db", sqlite_url]).output)
    [note] = shown["notifications"]
    svc = make_services(sqlite_url, start_jobs=False)
    try:
        with svc.engine.begin() as conn:
            conn.execute(update(alert_notifications).values(state="dead"))
    finally:
        svc.engine.dispose()
    resent = runner.invoke(app, ["alerts", "resend", "--all-dead", "--db", sqlite_url])
    assert resent.exit_code == 0, resent.output
    assert [n["id"] for n in json.loads(resent.output)["resent"]] == [note["id"]]
    unknown = runner.invoke(app, ["alerts", "show", "nope", "--db", sqlite_url])
    assert unknown.exit_code == 1 and "alert_not_found" in unknown.output
    bad = runner.invoke(app, ["alerts", "list", "--state", "sleeping", "--db", sqlite_url])
    assert bad.exit_code == 2
