"""GET /api/v1/releases/timeline on SQLite and PostgreSQL: every gate record of a release newest first, filtered by
environment, only the caller's tenant's, an unknown (or another tenant's) release answered 404 alike."""

from __future__ import annotations

from fastapi.testclient import TestClient

from faultlens.services import Services
from faultlens.store import keys
from faultlens.timeutil import now_ms
from tests.helpers import event
from tests.release_seed import seed_release

TIMELINE = "/api/v1/releases/timeline"


def _key(services: Services, tenant: str, *scopes: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def test_timeline_lists_every_gate_record_newest_first(quiet: Services, api: TestClient) -> None:
    now = now_ms()
    with quiet.engine.begin() as conn:
        seeded = seed_release(conn, tenant="alpha", release="v2", baseline="v1", environment="production", now=now)
        # The same release name in another tenant: never shown to alpha.
        seed_release(conn, tenant="beta", release="v2", baseline="v0", environment="production", now=now)
        seed_release(conn, tenant="beta", release="beta-only", baseline="v0", environment="production", now=now)
    alpha = _key(quiet, "alpha", "read")

    r = api.get(TIMELINE, params={"release": "v2"}, headers=alpha)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["release"] == "v2" and body["environment"] is None
    assert body["environments"] == ["production", "staging"]
    assert [a["id"] for a in body["analyses"]] == seeded.analyses[::-1]
    newest = body["analyses"][0]
    assert newest["verdict"] == "fail" and newest["score"] == 0.25 and newest["baseline"] == "v1"
    assert newest["rollout_id"] == seeded.rollout_id
    assert [m["name"] for m in newest["metrics"]][:2] == ["actionable_failure_rate", "latency_p95"]
    assert newest["created_at"].endswith("Z")
    assert [rb["id"] for rb in body["rollbacks"]] == [seeded.rollback_id, seeded.drill_id]
    real, drill = body["rollbacks"]
    assert real["drill"] is False and real["replay_passed"] is False and real["recovery_state"] == "recovered"
    assert real["completed_at"] is not None and drill["drill"] is True and drill["replay_passed"] is None
    assert [x["id"] for x in body["readiness"]] == seeded.readiness[::-1]
    assert body["readiness"][0]["admitted"] is False
    assert body["readiness"][0]["failed_checks"] == ["rollout", "replay"]
    assert body["readiness"][0]["checks"]["rollout"] is False and body["readiness"][0]["checks"]["quality"] is True
    assert [x["id"] for x in body["replays"]] == seeded.replays
    assert body["replays"][0] | {"id": None} == body["replays"][0] | {
        "id": None,
        "passed": False,
        "total": 40,
        "failed": 3,
        "p95_ms": 412.5,
        "suite": "checkout",
    }
    assert "report" not in body["replays"][0], "the stored report body stays behind its own route"
    [rollout] = body["rollouts"]
    assert (
        rollout["id"] == seeded.rollout_id and rollout["state"] == "rolled_back" and rollout["decision"] == "rollback"
    )

    only_staging = api.get(TIMELINE, params={"release": "v2", "environment": "staging"}, headers=alpha).json()
    assert only_staging["environment"] == "staging"
    assert only_staging["analyses"] == [] and only_staging["rollouts"] == []
    assert [rb["id"] for rb in only_staging["rollbacks"]] == [seeded.drill_id]
    assert len(only_staging["readiness"]) == 2 and len(only_staging["replays"]) == 1
    assert only_staging["environments"] == ["production", "staging"], "every environment, for switching"


def test_unknown_and_other_tenants_releases_are_404_alike(quiet: Services, api: TestClient) -> None:
    with quiet.engine.begin() as conn:
        seed_release(conn, tenant="beta", release="beta-only", baseline="v0", environment="production", now=now_ms())
    alpha = _key(quiet, "alpha", "read")
    theirs = api.get(TIMELINE, params={"release": "beta-only"}, headers=alpha)
    unknown = api.get(TIMELINE, params={"release": "never-seen"}, headers=alpha)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"] == "release_not_found"
    beta = _key(quiet, "beta", "read")
    assert api.get(TIMELINE, params={"release": "beta-only"}, headers=beta).status_code == 200
    assert api.get(TIMELINE, params={"release": "beta-only"}).status_code == 401
    assert api.get(TIMELINE, params={"release": "beta-only"}, headers=_key(quiet, "beta", "ingest")).status_code == 403


def test_a_release_seen_only_in_events_has_an_empty_timeline(quiet: Services, api: TestClient) -> None:
    headers = _key(quiet, "default", "admin")
    sent = [
        event(id="e1", release="v9", environment="production", status="success"),
        event(id="e2", release="v9", status="failure"),
        event(id="e3", release="other", environment="staging"),
    ]
    assert api.post("/api/v1/events", json=sent, headers=headers).json()["accepted"] == 3
    body = api.get(TIMELINE, params={"release": "v9"}, headers=headers).json()
    assert body["environments"] == ["production"]
    assert [body[k] for k in ("analyses", "rollouts", "rollbacks", "readiness", "replays")] == [[]] * 5


def test_bad_parameters_are_refused_not_500(quiet: Services, api: TestClient) -> None:
    headers = _key(quiet, "default", "read")
    for params in (
        {},
        {"release": ""},
        {"release": "x" * 129},
        {"release": "v1", "environment": "e" * 65},
        {"release": "v1", "window": "7d"},
        {"release": "v1\x00"},
    ):
        r = api.get(TIMELINE, params=params, headers=headers)
        assert r.status_code in (400, 422), (params, r.status_code, r.text)
        assert r.json()["error"]["code"], r.text
