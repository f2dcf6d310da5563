"""Rollouts on real databases: failing analyses in a row decide a rollback with its reason, a pass resets the count,
inconclusive ones do not count; the release stays blocked until a replay passes; a rollback not confirmed within
ROLLBACK_MAX_MINUTES is overdue; the release_rollback alert; the analyzer duty's pass on real events (analysis,
decision, automatic recovery); the API (tenants, 404, 409) and `faultlens rollout` against a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faultlens.alerting import views
from faultlens.api.app import create_app
from faultlens.cli import app as cli_app
from faultlens.errors import RolloutConflict
from faultlens.jobs.duty import held_leases
from faultlens.releases import analyzer, rollouts
from faultlens.services import Services
from faultlens.store import duty_runs, keys
from faultlens.store import rollouts as rollout_rows
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.live_server import LiveServer

MINUTE = 60_000
T0 = 1_700_000_000_000  # a fixed clock for the decision tests
ENV = "production"


@pytest.fixture
def svc(db_url: str) -> Iterator[Services]:
    s = make_services(db_url, start_jobs=False)
    yield s
    s.engine.dispose()


@pytest.fixture
def http(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(svc)) as c:
        yield c


def start(svc: Services, *, now: int = T0, tenant: str = "default", **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "release": "v2",
        "baseline": "v1",
        "environment": ENV,
        "source": None,
        "ratio": 0.1,
        "interval_min": 10.0,
        "max_failures": 2,
        "created_by": "test",
    }
    args.update(over)
    return rollouts.start_rollout(svc.engine, tenant=tenant, now=now, **args)


def verdict(svc: Services, rollout: dict[str, Any], v: str, at: int, *reasons: str) -> dict[str, Any]:
    return rollouts.apply_verdict(
        svc.engine,
        svc.settings,
        tenant="default",
        rollout_id=rollout["id"],
        verdict=v,
        reasons=list(reasons or ["actionable_failure_rate: the canary's rate is higher"]),
        at=at,
    )


def blocked(svc: Services, release: str = "v2", environment: str | None = ENV) -> str | None:
    with svc.engine.connect() as conn:
        return rollouts.blocked_reason(conn, tenant="default", release=release, environment=environment)


def replay(svc: Services, *, passed: bool, at: int, release: str = "v2") -> int:
    with svc.engine.begin() as conn:
        return rollouts.record_replay(conn, tenant="default", release=release, report_id="r-1", passed=passed, at=at)


def test_two_failing_analyses_in_a_row_decide_the_rollback_with_its_reason(svc: Services) -> None:
    r = start(svc)
    assert r["state"] == "running" and r["next_analysis_at"] is not None
    first = verdict(svc, r, "fail", T0 + 10 * MINUTE, "latency_p95: the canary is slower")
    assert first["decision"] == "continue" and first["rollback"] is None
    assert first["rollout"]["consecutive_failures"] == 1 and first["rollout"]["last_verdict"] == "fail"

    second = verdict(svc, r, "fail", T0 + 20 * MINUTE, "actionable_failure_rate: 9.00% against 1.00%")
    assert second["decision"] == "rollback"
    assert second["rollout"]["state"] == "rolled_back" and second["rollout"]["decision"] == "rollback"
    assert "2 canary analyses in a row failed" in second["rollout"]["decision_reason"]
    assert "actionable_failure_rate: 9.00% against 1.00%" in second["rollout"]["decision_reason"]
    back = second["rollback"]
    assert back["release"] == "v2" and back["baseline"] == "v1" and back["environment"] == ENV
    assert back["recovery_state"] == "pending" and back["completed_at"] is None and back["drill"] is False
    assert back["decided_at"] == "2023-11-14T22:33:20.000Z"  # T0 + 20 min, the moment of the 2nd fail
    assert back["deadline_at"] == "2023-11-14T23:03:20.000Z"  # + ROLLBACK_MAX_MINUTES (30)
    assert back["reason"] == second["rollout"]["decision_reason"]

    status = rollouts.rollout_status(svc.engine, tenant="default", rollout_id=r["id"])
    assert status["decision"] == "rollback" and status["rollback"] is True and status["blocked"] is True
    # Decided once: the rollout no longer counts verdicts, nor can it be promoted.
    with pytest.raises(RolloutConflict):
        verdict(svc, r, "fail", T0 + 30 * MINUTE)
    with pytest.raises(RolloutConflict):
        rollouts.promote(svc.engine, tenant="default", rollout_id=r["id"], by="test")


def test_a_pass_resets_the_count_and_inconclusive_ones_do_not_count(svc: Services) -> None:
    r = start(svc, max_failures=2)
    steps = [("fail", 1), ("pass", 0), ("fail", 1), ("inconclusive", 1), ("inconclusive", 1)]
    for i, (v, count) in enumerate(steps, start=1):
        out = verdict(svc, r, v, T0 + i * 10 * MINUTE)
        assert out["decision"] == "continue", (i, v)
        assert out["rollout"]["consecutive_failures"] == count and out["rollout"]["last_verdict"] == v
    out = verdict(svc, r, "fail", T0 + 60 * MINUTE)
    assert out["decision"] == "rollback" and out["rollout"]["consecutive_failures"] == 2


def test_the_release_stays_blocked_until_a_replay_after_the_rollback_passes(svc: Services) -> None:
    r = start(svc, max_failures=1)
    decided_at = T0 + 10 * MINUTE
    assert blocked(svc) is None
    assert verdict(svc, r, "fail", decided_at)["decision"] == "rollback"
    reason = blocked(svc)
    assert reason is not None and "a replay must pass before traffic returns" in reason
    assert blocked(svc, environment=None) == reason and blocked(svc, environment="staging") is None
    assert blocked(svc, release="v1") is None
    # A new rollout of the blocked release is refused; another release is not.
    with pytest.raises(RolloutConflict, match="blocked"):
        start(svc, now=decided_at + MINUTE)
    start(svc, now=decided_at + MINUTE, release="v3")

    assert replay(svc, passed=True, at=decided_at - MINUTE) == 0  # a replay before the decision clears nothing
    assert replay(svc, passed=False, at=decided_at + 5 * MINUTE) == 1
    assert "the last replay failed" in (blocked(svc) or "")
    assert replay(svc, passed=True, at=decided_at + 9 * MINUTE) == 1
    assert blocked(svc) is None
    assert replay(svc, passed=True, at=decided_at + 10 * MINUTE) == 0  # nothing left to clear
    [back] = rollouts.list_rollbacks(svc.engine, tenant="default", release="v2")["rollbacks"]
    assert back["replay_passed"] is True and back["replay_report_id"] == "r-1"
    assert start(svc, now=decided_at + 20 * MINUTE)["state"] == "running"


def test_a_running_rollout_of_the_same_scope_is_a_conflict(svc: Services) -> None:
    r = start(svc)
    with pytest.raises(RolloutConflict):
        start(svc)
    start(svc, source="checkout-api")  # another scope
    start(svc, tenant="other")  # another tenant
    rollouts.abort(svc.engine, tenant="default", rollout_id=r["id"], by="test")
    assert start(svc)["state"] == "running"


def test_the_database_keeps_one_running_rollout_per_scope_whatever_raced(svc: Services) -> None:
    """Two replicas starting the same rollout at once both pass the check for a running one; the unique index
    (uq_rollouts_running) lets one insert win and the other is a conflict, not a second running rollout."""
    first = start(svc, source="checkout-api")
    row = {
        "tenant": "default",
        "release": "v2",
        "baseline": "v1",
        "environment": ENV,
        "ratio": 0.1,
        "interval_min": 10.0,
        "max_failures": 2,
        "created_by": "race",
        "created_at": T0,
        "updated_at": T0,
    }
    with svc.engine.begin() as conn:  # what the losing start inserts after its check saw nothing running
        assert rollout_rows.create_rollout(conn, id="race-1", source="checkout-api", **row) is None
        assert rollout_rows.create_rollout(conn, id="race-2", source=None, **row) is not None  # the no-source scope
        assert rollout_rows.create_rollout(conn, id="race-3", source=None, **row) is None
    with svc.engine.connect() as conn:
        running = rollout_rows.list_rollouts(conn, tenant="default", state="running", limit=10)
    assert sorted(r["id"] for r in running) == sorted([first["id"], "race-2"])


def no_analysis(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise AssertionError("no rollout is due")


def test_a_rollback_not_confirmed_within_rollback_max_minutes_is_overdue(svc: Services) -> None:
    r = start(svc, max_failures=1, interval_min=10_000)  # never due again in this test
    decided = verdict(svc, r, "fail", T0)["rollback"]
    before = analyzer.run_pass(svc.engine, svc.settings, now=T0 + 29 * MINUTE, analyze=no_analysis)
    assert before.overdue == 0 and before.ok
    assert rollouts.get_rollback(svc.engine, tenant="default", rollback_id=decided["id"])["recovery_state"] == "pending"
    after = analyzer.run_pass(svc.engine, svc.settings, now=T0 + 30 * MINUTE, analyze=no_analysis)
    assert after.overdue == 1
    assert rollouts.get_rollback(svc.engine, tenant="default", rollback_id=decided["id"])["recovery_state"] == "overdue"
    # The deploy tool confirms late: recovered, and the record says it was late.
    done = rollouts.complete_rollback(
        svc.engine, tenant="default", rollback_id=decided["id"], recovered=True, detail="argo", now=T0 + 40 * MINUTE
    )
    assert done["recovery_state"] == "recovered" and done["completed_at"] is not None
    assert done["recovery_detail"]["late"] is True and done["recovery_detail"]["detail"] == "argo"
    # Repeating it answers the same record; saying the opposite now is a conflict.
    again = rollouts.complete_rollback(svc.engine, tenant="default", rollback_id=decided["id"], recovered=True)
    assert again == done
    with pytest.raises(RolloutConflict):
        rollouts.complete_rollback(svc.engine, tenant="default", rollback_id=decided["id"], recovered=False)


def rollback_alerts(svc: Services, now: int) -> list[dict[str, Any]]:
    assert svc.alerting is not None
    svc.alerting.evaluate_once(now=now)
    found = views.list_alerts(svc.engine, tenant="default", state="active", level=None, limit=100)["alerts"]
    return [a for a in found if a["name"] == "release_rollback"]


def test_the_release_rollback_alert_holds_until_recovery_and_a_passing_replay(svc: Services) -> None:
    now = now_ms()
    r = start(svc, now=now - 20 * MINUTE, max_failures=1)
    back = verdict(svc, r, "fail", now - 10 * MINUTE, "actionable_failure_rate: 12.00% against 1.00%")["rollback"]
    [alert] = rollback_alerts(svc, now)
    assert alert["level"] == "P1"
    assert alert["labels"] == {"alertname": "release_rollback", "level": "P1", "release": "v2", "environment": ENV}
    assert alert["summary"].startswith(f"roll back v2 in {ENV}: 1 canary analyses in a row failed: ")
    assert "12.00% against 1.00%" in alert["summary"]
    assert back["id"] in alert["description"] and alert["runbook_url"].endswith("#release_rollback")

    rollouts.complete_rollback(svc.engine, tenant="default", rollback_id=back["id"], recovered=True)
    [still] = rollback_alerts(svc, now + MINUTE)  # recovered, but no replay has passed: still blocked
    assert still["id"] == alert["id"] and "a replay must pass" in still["summary"]
    replay(svc, passed=True, at=now)
    assert rollback_alerts(svc, now + 2 * MINUTE) == []

    # A drill never alerts.
    rollouts.record_drill(
        svc.engine,
        tenant="default",
        release="v9",
        environment="staging",
        source=None,
        created_by="drill",
        decided_at=now - MINUTE,
        completed_at=None,
        recovered=False,
    )
    assert rollback_alerts(svc, now + 3 * MINUTE) == []


# --- the duty's pass on real events ------------------------------------------------------------------------------


def outcomes(
    release: str, n: int, failures: int, start: int, end: int, *, duration: float = 80.0
) -> list[dict[str, Any]]:
    """n outcomes of `release` spread over [start, end), the first `failures` of them actionable failures."""
    step = (end - start) // n
    out = []
    for i in range(n):
        bad = i < failures
        out.append(
            {
                "id": f"{release}-{start}-{i}",
                "source": "checkout-api",
                "status": "failure" if bad else "success",
                "occurred_at": start + i * step,
                "duration_ms": duration + (i % 7),
                "release": release,
                "environment": ENV,
                **({"http_status": 502, "error_message": "failed_contact_upstream"} if bad else {"http_status": 200}),
            }
        )
    return out


def ingest(svc: Services, rows: list[dict[str, Any]]) -> None:
    result = svc.pipeline.ingest(rows, tenant="default", epoch_ms=True)
    assert not result.rejected, result.rejected[:1]


def test_the_analyzer_pass_analyses_due_rollouts_decides_and_confirms_recovery(svc: Services) -> None:
    now = now_ms() - now_ms() % MINUTE
    windows = [(now - 40 * MINUTE, now - 30 * MINUTE), (now - 30 * MINUTE, now - 20 * MINUTE)]
    for since, until in windows:
        ingest(svc, outcomes("v1", 900, 9, since, until))  # 1% actionable
        ingest(svc, outcomes("v2", 300, 60, since, until))  # 20%
    # After the rollback (decided at now - 20 min): only v1 serves, as well as before.
    ingest(svc, outcomes("v1", 900, 8, now - 10 * MINUTE, now))
    r = start(svc, now=now - 40 * MINUTE)

    assert analyzer.run_pass(svc.engine, svc.settings, now=now - 35 * MINUTE).analysed == []  # not due yet
    first = analyzer.run_pass(svc.engine, svc.settings, now=now - 30 * MINUTE)
    assert first.ok and first.analysed == [{"rollout_id": r["id"], "verdict": "fail", "decision": "continue"}]
    assert analyzer.run_pass(svc.engine, svc.settings, now=now - 25 * MINUTE).analysed == []  # analysed already
    second = analyzer.run_pass(svc.engine, svc.settings, now=now - 20 * MINUTE)
    assert second.analysed == [{"rollout_id": r["id"], "verdict": "fail", "decision": "rollback"}]
    [back_id] = second.rollbacks
    assert second.recovered == []

    detail = rollouts.rollout_detail(svc.engine, tenant="default", rollout_id=r["id"])
    assert detail["state"] == "rolled_back" and detail["blocked"] is True
    assert [a["verdict"] for a in detail["analyses"]] == ["fail", "fail"]
    assert all(a["rollout_id"] == r["id"] and a["requested_by"] == "release_analyzer" for a in detail["analyses"])
    assert "actionable_failure_rate" in detail["decision_reason"]
    assert [b["id"] for b in detail["rollbacks"]] == [back_id]

    # Less than one interval after the decision: no judgement yet.
    early = analyzer.run_pass(svc.engine, svc.settings, now=now - 15 * MINUTE)
    assert early.recovered == [] and early.overdue == 0
    third = analyzer.run_pass(svc.engine, svc.settings, now=now)
    assert third.recovered == [back_id] and third.ok
    back = rollouts.get_rollback(svc.engine, tenant="default", rollback_id=back_id)
    assert back["recovery_state"] == "recovered" and back["completed_at"] is not None
    evidence = back["recovery_detail"]["evidence"]
    assert evidence["rolled_back_release_outcomes"] == 0
    assert evidence["environment"]["total"] == 900 and evidence["baseline_before"]["total"] == 900
    assert evidence["test"]["p_value"] >= svc.settings.release_canary_alpha
    assert back["recovery_detail"]["by"] == "release_analyzer" and back["recovery_detail"]["late"] is False


def test_recovery_is_not_confirmed_while_the_release_still_serves(svc: Services) -> None:
    now = now_ms() - now_ms() % MINUTE
    r = start(svc, now=now - 30 * MINUTE, max_failures=1)
    back = verdict(svc, r, "fail", now - 20 * MINUTE)["rollback"]
    ingest(svc, outcomes("v1", 300, 3, now - 30 * MINUTE, now - 20 * MINUTE))
    ingest(svc, outcomes("v1", 300, 3, now - 10 * MINUTE, now))
    ingest(svc, outcomes("v2", 5, 5, now - 5 * MINUTE, now))  # the rollback did not reach every instance
    report = analyzer.run_pass(svc.engine, svc.settings, now=now, analyze=no_analysis)
    assert report.recovered == []
    row = rollouts.get_rollback(svc.engine, tenant="default", rollback_id=back["id"])
    assert row["recovery_state"] == "pending"
    with svc.engine.connect() as conn:
        stored = rollout_rows.get_rollback(conn, tenant="default", rollback_id=back["id"])
    evidence = analyzer.recovery_evidence(svc.engine, svc.settings, stored, now=now)
    assert evidence is not None and evidence["recovered"] is False and evidence["rolled_back_release_outcomes"] == 5


# --- API and CLI -------------------------------------------------------------------------------------------------


def _key(svc: Services, tenant: str, *scopes: str) -> dict[str, str]:
    with svc.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def test_the_rollouts_api(svc: Services, http: TestClient) -> None:
    admin = _key(svc, "acme", "admin")
    reader = _key(svc, "acme", "read")
    other = _key(svc, "globex", "admin")
    body = {"release": "v2", "baseline": "v1", "environment": ENV}
    assert http.post("/api/v1/releases/rollouts", json=body, headers=reader).status_code == 403
    made = http.post("/api/v1/releases/rollouts", json=body, headers=admin)
    assert made.status_code == 201, made.text
    r = made.json()
    s = svc.settings
    assert (r["ratio"], r["interval_min"], r["max_failures"]) == (
        s.release_canary_ratio,
        s.release_canary_duration_min,
        s.release_rollback_after_failures,
    )
    assert r["state"] == "running" and r["created_by"] != "anonymous"
    again = http.post("/api/v1/releases/rollouts", json=body, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "rollout_conflict"
    for bad in ({**body, "ratio": 1.5}, {**body, "max_failures": 0}, {**body, "unknown": 1}, {"release": "v2"}):
        answer = http.post("/api/v1/releases/rollouts", json=bad, headers=admin)
        assert answer.status_code in (400, 422) and "error" in answer.json(), bad
    same = http.post("/api/v1/releases/rollouts", json={**body, "baseline": "v2"}, headers=admin)
    assert same.status_code == 400 and same.json()["error"]["code"] == "invalid_request"

    listed = http.get("/api/v1/releases/rollouts", params={"release": "v2"}, headers=reader).json()["rollouts"]
    assert [x["id"] for x in listed] == [r["id"]]
    assert http.get("/api/v1/releases/rollouts", headers=other).json()["rollouts"] == []
    detail = http.get(f"/api/v1/releases/rollouts/{r['id']}", headers=reader).json()
    assert detail["analyses"] == [] and detail["rollbacks"] == [] and detail["blocked"] is False
    status = http.get(f"/api/v1/releases/rollouts/{r['id']}/status", headers=reader).json()
    assert status["decision"] == "continue" and status["rollback"] is False and status["blocked"] is False
    # Another tenant's rollout answers like an unknown one.
    for path in ("", "/status"):
        missing = http.get(f"/api/v1/releases/rollouts/{r['id']}{path}", headers=other)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "rollout_not_found"
    assert http.post(f"/api/v1/releases/rollouts/{r['id']}/promote", headers=other).status_code == 404

    # Analysing now: no traffic at all is inconclusive, never a pass; it does not count as a failure.
    analysed = http.post(f"/api/v1/releases/rollouts/{r['id']}/analyze", headers=admin)
    assert analysed.status_code == 200, analysed.text
    out = analysed.json()
    assert out["analysis"]["verdict"] == "inconclusive" and out["decision"] == "continue"
    assert out["rollout"]["consecutive_failures"] == 0 and out["rollback"] is None
    assert len(http.get(f"/api/v1/releases/rollouts/{r['id']}", headers=reader).json()["analyses"]) == 1

    promoted = http.post(f"/api/v1/releases/rollouts/{r['id']}/promote", headers=admin).json()
    assert promoted["state"] == "promoted" and promoted["decision"] == "promote"
    assert http.post(f"/api/v1/releases/rollouts/{r['id']}/abort", headers=admin).status_code == 409
    assert http.post(f"/api/v1/releases/rollouts/{r['id']}/analyze", headers=admin).status_code == 409
    assert http.get(f"/api/v1/releases/rollouts/{r['id']}/status", headers=reader).json()["decision"] == "promote"

    # A rollback, listed, completed through the API; another tenant cannot see or complete it.
    r2 = rollouts.start_rollout(
        svc.engine,
        tenant="acme",
        release="v3",
        baseline="v2",
        environment=ENV,
        source=None,
        ratio=0.1,
        interval_min=10,
        max_failures=1,
        created_by="t",
    )
    rollouts.apply_verdict(
        svc.engine, svc.settings, tenant="acme", rollout_id=r2["id"], verdict="fail", reasons=["x"], at=now_ms()
    )
    [back] = http.get("/api/v1/releases/rollbacks", params={"release": "v3"}, headers=reader).json()["rollbacks"]
    assert back["recovery_state"] == "pending" and back["rollout_id"] == r2["id"]
    assert http.get("/api/v1/releases/rollbacks", headers=other).json()["rollbacks"] == []
    assert http.get(f"/api/v1/releases/rollbacks/{back['id']}", headers=other).status_code == 404
    assert http.post(f"/api/v1/releases/rollbacks/{back['id']}/complete", headers=other).status_code == 404
    done = http.post(
        f"/api/v1/releases/rollbacks/{back['id']}/complete", json={"detail": "argo aborted"}, headers=admin
    ).json()
    assert done["recovery_state"] == "recovered" and done["recovery_detail"]["detail"] == "argo aborted"
    assert http.get(f"/api/v1/releases/rollouts/{r2['id']}/status", headers=reader).json()["rollback"] is True


def test_the_rollout_cli_against_a_live_server(svc: Services) -> None:
    runner = CliRunner()
    with LiveServer(create_app(svc)) as server:

        def run(*args: str) -> Any:
            return runner.invoke(cli_app, ["rollout", *args, "--url", server.url])

        started = run(
            "start", "--release", "v2", "--baseline", "v1", "--environment", ENV, "--max-failures", "1", "--json"
        )
        assert started.exit_code == 0, started.output
        rollout_id = json.loads(started.stdout)["id"]
        status = run("status", rollout_id)
        assert status.exit_code == 0 and "decision continue" in status.stdout
        assert run("analyze", rollout_id).exit_code == 2  # no traffic: inconclusive
        assert run("list").stdout.count(rollout_id) == 1

        rollouts.apply_verdict(
            svc.engine,
            svc.settings,
            tenant="default",
            rollout_id=rollout_id,
            verdict="fail",
            reasons=["x"],
            at=now_ms(),
        )
        rolled = run("status", rollout_id)
        assert rolled.exit_code == 1 and "decision rollback" in rolled.stdout and "blocked" in rolled.stdout
        assert run("promote", rollout_id).exit_code == 2  # 409: no answer a pipeline could take for "go on"
        [back] = json.loads(run("rollbacks", "--json").stdout)["rollbacks"]
        done = run("complete-rollback", back["id"], "--detail", "traffic on v1")
        assert done.exit_code == 0 and "recovery recovered" in done.stdout
        assert run("status", "no-such-rollout").exit_code == 2


def test_the_analyzer_starts_with_the_server_under_its_lease(db_url: str) -> None:
    s = make_services(db_url, start_release_analyzer=True, release_analyzer_interval_s=0.05)
    try:
        r = start(s, now=now_ms() - 11 * MINUTE, interval_min=10.0)
        with TestClient(create_app(s)):
            deadline = time.monotonic() + 20
            while rollouts.rollout_status(s.engine, tenant="default", rollout_id=r["id"])["last_verdict"] is None:
                assert time.monotonic() < deadline, "the release analyzer did not analyse the due rollout"
                time.sleep(0.05)
            assert held_leases().get(analyzer.NAME) is True
        assert held_leases().get(analyzer.NAME) is False  # released at shutdown
        with s.engine.connect() as conn:
            runs = duty_runs.count_runs(conn, name=analyzer.NAME, since=0, until=now_ms() + 1)
        assert sum(runs.values()) >= 1
    finally:
        s.engine.dispose()
