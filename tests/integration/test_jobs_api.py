"""Jobs API and job metrics over HTTP on SQLite and PostgreSQL: listing, detail, 404, scopes, gauges."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from faultlens.jobs import runner
from faultlens.jobs.metrics import register_metrics
from faultlens.services import Services
from faultlens.store import keys
from tests.integration.test_backfill import OPS_PACK, mixed_events

NEWER_PACK = {**OPS_PACK, "id": "ops@2026-12-05"}


def _gauges(services: Services) -> dict[str, float]:
    text = generate_latest(services.metrics.registry).decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        # The gauges read from the jobs table (jobs_run_total / jobs_failed_total count this process's runs).
        if line.startswith("faultlens_jobs_") and not line.startswith(
            ("faultlens_jobs_run_", "faultlens_jobs_failed_")
        ):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_jobs_are_listed_newest_first_with_progress(quiet: Services, api: TestClient) -> None:
    register_metrics(quiet)
    register_metrics(quiet)  # idempotent: a second registration must not raise
    assert api.get("/api/v1/jobs").json() == {"items": []}
    assert _gauges(quiet) == {
        'faultlens_jobs_running{kind="backfill"}': 0.0,
        'faultlens_jobs_running{kind="rollup_rebuild"}': 0.0,
        'faultlens_jobs_running{kind="partition_events"}': 0.0,
        'faultlens_jobs_pending{kind="backfill"}': 0.0,
        'faultlens_jobs_pending{kind="rollup_rebuild"}': 0.0,
        'faultlens_jobs_pending{kind="partition_events"}': 0.0,
        'faultlens_jobs_progress_ratio{kind="backfill"}': 1.0,
        'faultlens_jobs_progress_ratio{kind="rollup_rebuild"}': 1.0,
        'faultlens_jobs_progress_ratio{kind="partition_events"}': 1.0,
        'faultlens_jobs_lag_seconds{kind="backfill"}': 0.0,
        'faultlens_jobs_lag_seconds{kind="rollup_rebuild"}': 0.0,
        'faultlens_jobs_lag_seconds{kind="partition_events"}': 0.0,
    }
    assert api.post("/api/v1/events", json=mixed_events(15)).json()["accepted"] == 15

    first = api.post("/api/v1/rules/activate", json=OPS_PACK).json()["backfill"]
    assert first["state"] == "pending" and first["progress"] == {"done": 0, "total": 0, "changed": 0}
    assert first["started_at"] is None and first["finished_at"] is None and first["error"] is None
    gauges = _gauges(quiet)
    assert gauges['faultlens_jobs_pending{kind="backfill"}'] == 1.0
    assert gauges['faultlens_jobs_progress_ratio{kind="backfill"}'] == 0.0

    ended = runner.run_until_idle(quiet, batch_size=4)
    assert [j.id for j in ended] == [first["id"]]
    second = api.post("/api/v1/rules/activate", json=NEWER_PACK).json()["backfill"]

    items = api.get("/api/v1/jobs").json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]
    assert set(items[1]) == {
        "id",
        "kind",
        "state",
        "scope",
        "tenant",
        "rule_version",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "error",
    }
    done = api.get(f"/api/v1/jobs/{first['id']}").json()
    assert done == items[1]
    assert (done["kind"], done["state"], done["rule_version"]) == (
        "backfill",
        "done",
        "ops@2026-12-01+" + (quiet.packs[-1].id),
    )
    assert (done["scope"], done["tenant"]) == ("tenant", "default")  # an admin's activation is its tenant's
    assert done["progress"] == {"done": 15, "total": 15, "changed": 5}  # the 5 moved events; successes stay
    assert done["started_at"] <= done["finished_at"]
    assert [i["id"] for i in api.get("/api/v1/jobs", params={"state": "pending"}).json()["items"]] == [second["id"]]
    assert api.get("/api/v1/jobs", params={"kind": "rollup_rebuild"}).json()["items"] == []
    assert [i["id"] for i in api.get("/api/v1/jobs", params={"limit": 1}).json()["items"]] == [second["id"]]
    gauges = _gauges(quiet)
    assert gauges['faultlens_jobs_pending{kind="backfill"}'] == 1.0
    assert gauges['faultlens_jobs_running{kind="backfill"}'] == 0.0

    runner.run_until_idle(quiet)
    assert _gauges(quiet)['faultlens_jobs_progress_ratio{kind="backfill"}'] == 1.0
    assert api.get(f"/api/v1/jobs/{second['id']}").json()["state"] == "done"


def test_job_errors_use_the_one_body(api: TestClient) -> None:
    for r, status, code in (
        (api.get("/api/v1/jobs/no-such-job"), 404, "job_not_found"),
        (api.get("/api/v1/jobs", params={"state": "sleeping"}), 400, "invalid_request"),
        (api.get("/api/v1/jobs", params={"limit": 0}), 400, "invalid_request"),
    ):
        assert r.status_code == status, r.text
        body = r.json()
        assert (
            set(body) == {"error", "request_id", "correlation_id", "trace_id"}
            and body["error"]["code"] == code
            and body["error"]["message"]
        )


def test_jobs_need_read_scope_and_activation_needs_admin(quiet: Services, api: TestClient) -> None:
    with quiet.engine.begin() as conn:
        _, ingest_only = keys.create_key(conn, tenant="default", scopes=["ingest"])
        _, reader = keys.create_key(conn, tenant="default", scopes=["read"])
    api.app.state.keys_present.checked = 0  # type: ignore[attr-defined]
    assert api.get("/api/v1/jobs").status_code == 401
    assert api.get("/api/v1/jobs", headers={"X-API-Key": ingest_only}).json()["error"]["code"] == "forbidden"
    assert api.get("/api/v1/jobs", headers={"X-API-Key": reader}).status_code == 200
    r = api.post("/api/v1/rules/activate", json=OPS_PACK, headers={"X-API-Key": reader})
    assert r.status_code == 403 and r.json()["error"]["details"] == {"required_scope": "admin"}
    assert quiet.pipeline.classifier.version == quiet.packs[-1].id  # nothing was activated
