"""Release readiness end to end (SQLite and PostgreSQL): not admitted without a replay, admitted after a passing one
run against a real target when every check's evidence is there, each check failing on its own evidence, the
evidence records stored immutable and listed per tenant, the contract path, and P6_READINESS_REQUIRED=false."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from faultlens.api.app import create_app
from faultlens.api.compat.release import READINESS_PATH
from faultlens.releases import readiness
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.alerts import AlertRow, save_alert
from faultlens.store.tables import canary_analyses, readiness_evidence, rollbacks
from faultlens.timeutil import now_ms
from faultlens.triage import slo
from tests.conftest import make_services
from tests.helpers import ago
from tests.integration.test_replay import target_app
from tests.live_server import LiveServer

READINESS = "/api/v1/releases/readiness"
REPLAYS = "/api/v1/releases/replays"
RELEASE = "v2"
CHECKS = ["quality", "performance", "security", "cost", "rollout", "rollback", "ops"]
MINUTE = 60_000
PASSING_SUITE = {
    "version": 1,
    "suite": "smoke",
    "suite_version": "1",
    "defaults": {"latency_budget_ms": 2000},
    "requests": [{"name": "ok", "path": "/ok"}, {"name": "missing", "path": "/nope", "expect_status": "4xx"}],
}


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with LiveServer(target_app()) as server:
        yield server.url


def _services(db_url: str, target: str = "http://127.0.0.1:9", **settings: Any) -> Services:
    return make_services(db_url, start_jobs=False, replay_targets=f"{target}/api", **settings)


def _key(services: Services, tenant: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _row, secret = keys.create_key(conn, tenant=tenant, scopes=["admin"])
    return {"Authorization": f"Bearer {secret}"}


def _events(
    client: TestClient,
    headers: dict[str, str],
    n: int,
    *,
    actionable: int = 0,
    attempt: int = 1,
    release: str = RELEASE,
) -> None:
    batch = []
    for i in range(n):
        failed = i < actionable
        batch.append(
            {
                "source": "checkout",
                "status": "failure" if failed else "success",
                "http_status": 500 if failed else 200,
                "error_message": "upstream db refused the connection" if failed else None,
                "occurred_at": ago(minutes=5 + i % 60),
                "duration_ms": 10.0 + i % 7,
                "attempt": attempt,
                "release": release,
                "environment": "staging",
            }
        )
    r = client.post("/api/v1/events", json=batch, headers=headers)
    assert r.status_code in (200, 202), r.text
    assert r.json()["accepted"] == n


def _analysis(services: Services, tenant: str, verdict: str = "pass", *, at: int | None = None) -> str:
    analysis_id = str(uuid.uuid4())
    now = now_ms() if at is None else at
    with services.engine.begin() as conn:
        conn.execute(
            canary_analyses.insert().values(
                id=analysis_id,
                tenant=tenant,
                baseline="v1",
                canary=RELEASE,
                environment="production",
                since=now - 30 * MINUTE,
                until=now,
                verdict=verdict,
                score=1.0 if verdict == "pass" else 0.25,
                result=json.dumps({"metrics": [], "reasons": []}),
                requested_by="test",
                created_at=now,
            )
        )
    return analysis_id


def _rollback(
    services: Services,
    tenant: str,
    *,
    drill: bool,
    release: str = "v1",
    environment: str = "staging",
    decided_at: int,
    recovery_minutes: float | None = 5,
) -> str:
    rollback_id = str(uuid.uuid4())
    completed = None if recovery_minutes is None else decided_at + int(recovery_minutes * MINUTE)
    with services.engine.begin() as conn:
        conn.execute(
            rollbacks.insert().values(
                id=rollback_id,
                tenant=tenant,
                release=release,
                environment=environment,
                reason="drill" if drill else "actionable_failure_rate failed twice",
                drill=drill,
                decided_at=decided_at,
                deadline_at=decided_at + 30 * MINUTE,
                completed_at=completed,
                recovery_state="recovered" if completed else "pending",
                created_by="test",
            )
        )
    return rollback_id


def _alert(services: Services, tenant: str, name: str, level: str, **labels: str) -> None:
    now = now_ms()
    row = AlertRow(
        id=uuid.uuid4().hex,
        tenant=tenant,
        name=name,
        level=level,
        labels={"alertname": name, "level": level, **labels},
        annotations={},
        state="firing",
        value=None,
        threshold=None,
        active_since=now,
        starts_at=now,
        ends_at=None,
        last_seen_at=now,
        last_notified_at=None,
        episode=1,
        silenced_by=None,
        acked_by=None,
        acked_at=None,
        ack_comment=None,
        updated_at=now,
    )
    with services.engine.begin() as conn:
        save_alert(conn, row, new=True)


def _evaluate(client: TestClient, headers: dict[str, str], path: str = READINESS, **body: Any) -> dict[str, Any]:
    r = client.post(path, json={"release": RELEASE, **body}, headers=headers)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _seed_good(services: Services, client: TestClient, tenant: str, headers: dict[str, str]) -> None:
    _events(client, headers, 60)
    _analysis(services, tenant, "pass")
    _rollback(services, tenant, drill=True, decided_at=now_ms() - 3 * 86_400_000)


def test_admitted_only_after_a_passing_replay(db_url: str, target: str) -> None:
    services = _services(db_url, target)
    try:
        with TestClient(create_app(services)) as client:
            a, b = _key(services, "acme"), _key(services, "other")
            _seed_good(services, client, "acme", a)

            first = _evaluate(client, a)
            assert first["admitted"] is False and first["enforced"] is True
            assert first["replay_passed"] is False and first["replay_report_id"] is None
            assert first["failed_checks"] == ["performance", "replay"]
            assert list(first["checks"]) == CHECKS
            checks = first["checks"]
            assert checks["quality"]["evidence"]["events"] == 60
            assert checks["quality"]["evidence"]["actionable_failure_rate"] == 0
            assert checks["cost"]["evidence"]["attempts_per_event"] == 1
            assert checks["rollout"]["evidence"]["analysis"]["verdict"] == "pass"
            assert checks["rollback"]["evidence"]["rollback"]["drill"] is True
            assert "release_rollback" in checks["ops"]["evidence"]["runbooks"]
            assert first["replay"]["reason"] == f"no replay of {RELEASE} in staging"

            body = {"release": RELEASE, "environment": "staging", "target": f"{target}/api", "suite": PASSING_SUITE}
            replay = client.post(REPLAYS, json=body, headers=a)
            assert replay.status_code == 200 and replay.json()["passed"] is True, replay.text

            second = _evaluate(client, a)
            assert second["admitted"] is True and second["failed_checks"] == []
            assert second["replay_passed"] is True and second["replay_report_id"] == replay.json()["id"]
            assert all(second["checks"][name]["passed"] for name in CHECKS)
            assert second["checks"]["performance"]["evidence"]["budgets"] == 2
            assert second["inputs"]["settings"]["p6_readiness_required"] is True
            assert second["inputs"]["rule_version"] == services.classifier_for("acme").version
            assert second["window"]["label"] == "24h"

            # The document-004 contract path answers the same record shape (and stores its own).
            contract = _evaluate(client, a, READINESS_PATH, environment="staging")
            assert set(contract) == set(second) and contract["admitted"] is True

            # Stored: listed newest first, fetched as answered, invisible to another tenant.
            listed = client.get(READINESS, params={"release": RELEASE}, headers=a).json()["evaluations"]
            assert [e["id"] for e in listed] == [contract["id"], second["id"], first["id"]]
            assert client.get(f"{READINESS}/{second['id']}", headers=a).json() == second
            assert client.get(f"{READINESS}/{second['id']}", headers=b).status_code == 404
            assert client.get(READINESS, headers=b).json()["evaluations"] == []
            unknown = client.get(f"{READINESS}/{uuid.uuid4()}", headers=a)
            assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "readiness_evidence_not_found"
            # Another tenant's replay cannot be borrowed.
            r = client.post(READINESS, json={"release": RELEASE, "replay_report_id": replay.json()["id"]}, headers=b)
            assert r.status_code == 404 and r.json()["error"]["code"] == "replay_report_not_found"

            # A real rollback after that replay: blocked, and the replay no longer counts.
            _rollback(
                services,
                "acme",
                drill=False,
                release=RELEASE,
                environment="production",
                decided_at=now_ms(),
                recovery_minutes=None,
            )
            third = _evaluate(client, a)
            assert third["admitted"] is False and third["failed_checks"] == ["rollout", "replay"]
            assert third["checks"]["rollout"]["reason"].startswith("blocked: rolled back in production")
            assert "older than the release's last rollback" in third["replay"]["reason"]
            with services.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(readiness_evidence)).scalar() == 4
    finally:
        services.engine.dispose()


def test_each_check_fails_on_its_evidence(sqlite_url: str) -> None:
    services = _services(sqlite_url)
    with TestClient(create_app(services)) as client:
        a = _key(services, "acme")
        empty = _evaluate(client, a)
        assert empty["failed_checks"] == [*CHECKS[:2], "cost", "rollout", "rollback", "replay"]
        assert empty["checks"]["quality"]["reason"].startswith("no evidence")
        assert empty["checks"]["rollout"]["reason"] == f"no canary analysis of {RELEASE}"

        _events(client, a, 10)
        few = _evaluate(client, a)
        assert few["checks"]["quality"]["reason"].startswith("too little evidence: 10 events")

        _events(client, a, 50, actionable=5, attempt=5)
        _analysis(services, "acme", "fail")
        # A drill that took 45 minutes does not prove recovery within ROLLBACK_MAX_MINUTES (30).
        _rollback(services, "acme", drill=True, decided_at=now_ms() - 86_400_000, recovery_minutes=45)
        _alert(services, "acme", "security_refused_keys", "P0")
        _alert(services, "acme", "event_volume_spike", "P2", source="checkout")
        bad = _evaluate(client, a)
        checks = bad["checks"]
        assert bad["failed_checks"] == [*CHECKS, "replay"]
        assert "checkout" in checks["quality"]["reason"] and checks["quality"]["evidence"]["actionable"] == 5
        assert checks["security"]["evidence"]["firing"][0]["name"] == "security_refused_keys"
        assert checks["cost"]["reason"].startswith("event_volume_spike firing")
        assert checks["cost"]["evidence"]["attempts_per_event"] > 3
        assert checks["rollout"]["reason"] == f"the last canary analysis of {RELEASE} says fail"
        assert checks["rollback"]["evidence"]["considered"] == 1
        assert checks["ops"]["reason"] == "1 P0/P1 alert(s) firing"
        assert set(checks["ops"]["evidence"]["runbooks"]) == {
            "event_volume_spike",
            "release_rollback",
            "security_refused_keys",
        }

        # Window and ids are checked: a bad window is a 400 naming the body field, an unknown replay a 404.
        r = client.post(READINESS, json={"release": RELEASE, "window": "5y"}, headers=a)
        assert r.status_code == 400 and r.json()["error"]["details"]["params"][0]["location"] == "body"
        r = client.post(READINESS, json={"release": RELEASE, "replay_report_id": "nope"}, headers=a)
        assert r.status_code == 404
        r = client.post(READINESS, json={"release": "", "environment": "staging"}, headers=a)
        assert r.status_code in (400, 422)
    services.engine.dispose()


def test_missing_runbook_fails_ops(sqlite_url: str) -> None:
    services = _services(sqlite_url)
    _alert(services, "acme", "recurring_failure", "P2")
    found = readiness.evaluate_readiness(
        services.engine,
        services.settings,
        slo=slo.SloConfig(),
        rule_version="test",
        runbook_for=lambda name, _level: None if name == "recurring_failure" else f"https://runbooks/{name}",
        tenant="acme",
        release=RELEASE,
        requested_by="test",
    )
    assert found["checks"]["ops"]["passed"] is False
    assert found["checks"]["ops"]["evidence"]["missing_runbooks"] == ["recurring_failure"]
    services.engine.dispose()


def test_not_enforced(sqlite_url: str) -> None:
    services = _services(sqlite_url, p6_readiness_required=False)
    with TestClient(create_app(services)) as client:
        a = _key(services, "acme")
        found = _evaluate(client, a)
        assert found["admitted"] is True and found["enforced"] is False
        assert "replay" in found["failed_checks"] and found["replay_passed"] is False
        assert found["inputs"]["settings"]["p6_readiness_required"] is False
    services.engine.dispose()
