"""The ops summary contract (GET /api/v1/internal/ops/metrics/summary) on SQLite and PostgreSQL: figures against a
known workload, the window, tenant isolation, the body's shape, and the API usage recorder behind its api section."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from faultlens import metric_dictionary
from faultlens.api.app import create_app
from faultlens.api.compat.ops_summary import PATH
from faultlens.api.deps import Reader
from faultlens.api.usage import UsageRecorder
from faultlens.services import Services
from faultlens.store import api_usage, keys
from faultlens.store import jobs as job_store
from faultlens.store.tables import jobs
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.helpers import ago, event

ACTIONABLE = "failed_contact_upstream"  # service failure, actionable
UNCLASSIFIED = "zzqx frobnicated the wibble"  # no rule matches it
SECTIONS = ["api", "worker", "quality", "cost", "slo"]


@pytest.fixture
def quiet_services(db_url: str) -> Iterator[Services]:
    # No background jobs, no flushing thread: the tests flush the usage recorder themselves.
    svc = make_services(db_url, start_jobs=False, api_usage_flush_interval_s=0)
    yield svc
    svc.engine.dispose()


def _key(services: Services, tenant: str, scopes: list[str]) -> dict[str, str]:
    with services.engine.begin() as conn:
        _key_row, secret = keys.create_key(conn, tenant=tenant, scopes=scopes)
    return {"Authorization": f"Bearer {secret}"}


def _boom(principal: Reader) -> None:
    raise RuntimeError(f"a failing route of {principal.tenant}")


@pytest.fixture
def app(quiet_services: Services) -> FastAPI:
    application = create_app(quiet_services)
    # A route that fails after authenticating: the 5xx a tenant's error rate counts.
    application.add_api_route("/api/v1/test-only/boom", _boom, methods=["GET"])
    return application


def _figures(body: dict[str, Any]) -> dict[str, Any]:
    """name (with a level or version label appended) -> value, over every section."""
    out: dict[str, Any] = {}
    for figures in body["sections"].values():
        for f in figures:
            suffix = "".join(f":{v}" for v in f["labels"].values())
            out[f["name"] + suffix] = f["value"]
    return out


def _summary(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get(PATH, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _finish_job(services: Services, tenant: str | None, *, failed: bool = False) -> None:
    with services.engine.begin() as conn:
        job = job_store.create_job(conn, kind="backfill", tenant=tenant)
        if failed:
            job_store.fail_job(conn, job.id, owner=None, message="the test failed it")
        else:
            job_store.update_job(conn, job.id, {"state": "done", "finished_at": now_ms()})


def test_figures_match_a_known_workload_and_tenants_are_isolated(app: FastAPI, quiet_services: Services) -> None:
    services = quiet_services
    acme, globex = _key(services, "acme", ["admin"]), _key(services, "globex", ["admin"])
    client = TestClient(app, raise_server_exceptions=False)
    batch = [event(status="success", attempt=1) for _ in range(3)]
    batch += [event(error_message=ACTIONABLE, attempt=2) for _ in range(2)]
    batch += [event(error_message=UNCLASSIFIED, attempt=3)]
    batch += [event(status="success", attempt=1, occurred_at=ago(days=3))]  # in 7d, not in 24h
    # Enough volume, failing enough, for the hint engine to judge the source "payments".
    batch += [event(source="payments", status="success", attempt=1) for _ in range(12)]
    batch += [event(source="payments", error_message=ACTIONABLE, attempt=1) for _ in range(8)]
    # acme's five requests: 2xx x3, 4xx, 5xx.
    r = client.post("/api/v1/events", json=batch, headers=acme)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    assert client.get("/api/v1/stats/summary", headers=acme).status_code == 200
    assert client.get("/api/v1/stats/summary", headers=acme).status_code == 200
    assert client.get("/api/v1/events/no-such-event", headers=acme).status_code == 404
    assert client.get("/api/v1/test-only/boom", headers=acme).status_code == 500
    # Refused before a key's tenant is known: counted for nobody.
    assert client.get("/api/v1/stats/summary", headers={"Authorization": "Bearer nope"}).status_code == 401
    recorder: UsageRecorder = app.state.api_usage
    assert recorder.flush() == 5
    _finish_job(services, "acme")
    _finish_job(services, "acme", failed=True)
    _finish_job(services, "globex")
    with services.engine.begin() as conn:
        pending = job_store.create_job(conn, kind="backfill", tenant="acme")
        conn.execute(update(jobs).where(jobs.c.id == pending.id).values(created_at=now_ms() - 120_000))

    body = _summary(client, acme)
    ns = metric_dictionary.load().namespace(services.settings)
    got = _figures(body)
    assert body["tenant"] == "acme" and body["window"]["label"] == "24h"
    assert got[f"{ns}_http_requests_total"] == 5
    assert got[f"{ns}_http_request_error_ratio"] == pytest.approx(1 / 5)
    p95 = got[f"{ns}_http_request_duration_seconds_p95"]
    assert isinstance(p95, float) and 0 < p95 <= 10
    assert got[f"{ns}_jobs_run_total"] == 2 and got[f"{ns}_jobs_failed_total"] == 1
    assert 120 <= got[f"{ns}_jobs_lag_seconds"] < 180
    # In the 24h window: 26 events, 11 failures (all actionable, an unclassified failure is too), 1 unclassified.
    assert got[f"{ns}_events_actionable_failure_ratio"] == pytest.approx(11 / 26)
    assert got[f"{ns}_events_unclassified_ratio"] == pytest.approx(1 / 11)
    assert got[f"{ns}_rules_active_version:{services.classifier_for('acme').version}"] == 1
    assert got[f"{ns}_events_stored_total"] == 26
    assert got[f"{ns}_events_attempts_per_event"] == pytest.approx((3 + 4 + 3 + 20) / 26)
    assert 26 * 120 < got[f"{ns}_events_stored_bytes"] < 26 * 2000
    # The hints are the hint engine's (the alerts view over the last 7 days), counted by level.
    alerts = client.get("/api/v1/alerts", headers=acme, params={"window": "7d"}).json()
    levels = [h["level"] for h in alerts["hints"]]
    assert (got[f"{ns}_slo_hints:critical"], got[f"{ns}_slo_hints:warn"]) == (
        levels.count("critical"),
        levels.count("warn"),
    )
    assert levels, "the workload's failure rate raises at least one hint"

    week = _figures(_summary(client, acme, window="7d"))
    assert week[f"{ns}_events_stored_total"] == 27
    assert week[f"{ns}_events_attempts_per_event"] == pytest.approx(31 / 27)

    # globex sees none of acme's figures: only its own job, and the three requests it made are not flushed yet.
    other = _figures(_summary(client, globex))
    assert other[f"{ns}_http_requests_total"] == 0 and other[f"{ns}_http_request_duration_seconds_p95"] is None
    assert other[f"{ns}_http_request_error_ratio"] == 0
    assert (other[f"{ns}_jobs_run_total"], other[f"{ns}_jobs_failed_total"], other[f"{ns}_jobs_lag_seconds"]) == (
        1,
        0,
        0,
    )
    assert other[f"{ns}_events_stored_total"] == 0 and other[f"{ns}_events_stored_bytes"] == 0
    assert (other[f"{ns}_slo_hints:critical"], other[f"{ns}_slo_hints:warn"]) == (0, 0)
    recorder.flush()
    # Flushed now: acme's 24h and 7d summaries and its alerts (3), never globex's summary (1).
    assert _figures(_summary(client, acme))[f"{ns}_http_requests_total"] == 5 + 3
    assert _figures(_summary(client, globex))[f"{ns}_http_requests_total"] == 1


def test_the_body_shape_is_pinned(app: FastAPI, quiet_services: Services) -> None:
    admin = _key(quiet_services, "acme", ["admin"])
    body = _summary(TestClient(app), admin, window="1h")
    assert list(body) == ["tenant", "generated_at", "window", "sections"]
    assert list(body["window"]) == ["label", "since", "until"] and body["window"]["label"] == "1h"
    assert list(body["sections"]) == SECTIONS
    dictionary = metric_dictionary.load()
    ns = dictionary.namespace(quiet_services.settings)
    expected: dict[str, list[tuple[str, str, str]]] = {s: [] for s in SECTIONS}
    for spec in dictionary.metrics:
        if spec.summary is not None:
            expected[spec.summary.section].append((f"{ns}_{spec.summary.field}", spec.unit, spec.help))
    for section, figures in body["sections"].items():
        for f in figures:
            assert list(f) == ["name", "value", "unit", "help", "labels"], f
        shown = list(dict.fromkeys((f["name"], f["unit"], f["help"]) for f in figures))
        assert shown == expected[section], section
    names = {f["name"]: f for fs in body["sections"].values() for f in fs}
    assert names[f"{ns}_http_requests_total"] == {
        "name": f"{ns}_http_requests_total",
        "value": 0,
        "unit": "requests",
        "help": dictionary.metric("http_requests_total").help,
        "labels": {},
    }
    assert [f["labels"] for f in body["sections"]["slo"]] == [{"level": "critical"}, {"level": "warn"}]


def test_window_vocabulary_and_errors(app: FastAPI, quiet_services: Services) -> None:
    admin = _key(quiet_services, "acme", ["admin"])
    reader = _key(quiet_services, "acme", ["read"])
    client = TestClient(app)
    r = client.post("/api/v1/events", json=[event(occurred_at=ago(hours=2))], headers=admin)
    assert r.status_code == 200, r.text
    ns = metric_dictionary.load().namespace(quiet_services.settings)
    total = f"{ns}_events_stored_total"
    assert _figures(_summary(client, admin, window="1h"))[total] == 0
    assert _figures(_summary(client, admin, window="6h"))[total] == 1
    custom = _summary(client, admin, since=ago(hours=3), until=ago(hours=1))
    assert custom["window"]["label"] == "custom" and _figures(custom)[total] == 1
    assert _figures(_summary(client, admin, since=ago(days=9), until=ago(days=8)))[total] == 0
    for params in ({"window": "5y"}, {"window": "1h", "since": ago(hours=1)}, {"since": "yesterday"}, {"x": "1"}):
        bad = client.get(PATH, headers=admin, params=params)
        assert bad.status_code == 400, (params, bad.text)
        body = bad.json()
        # The one error body (its envelope is api/errors.py's; the trace ids beside request_id are issue 14's too).
        assert set(body) == {"error", "request_id", "correlation_id", "trace_id"}, body
        assert set(body["error"]) == {"code", "message", "details"}, body
        assert body["error"]["code"] == "invalid_request", body
    # Internal: the admin scope, never a read key; no key at all is 401.
    forbidden = client.get(PATH, headers=reader)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["details"]["required_scope"] == "admin"
    assert client.get(PATH, headers={"X-API-Key": "wrong"}).status_code == 401


def test_usage_is_flushed_at_shutdown_and_adds_up_across_replicas(quiet_services: Services) -> None:
    services = quiet_services
    admin = _key(services, "acme", ["admin"])
    with TestClient(create_app(services)) as client:
        assert client.get("/api/v1/stats/summary", headers=admin).status_code == 200
    start = now_ms() - 120_000
    with services.engine.connect() as conn:
        assert api_usage.sum_usage(conn, tenant="acme", start=start, end=now_ms() + 1).requests == 1
    # Two replicas counting the same minute: both rows add up.
    minute = api_usage.minute_of(now_ms())
    replicas = [UsageRecorder(services.engine, interval_s=0, clock=lambda: minute + 1) for _ in range(2)]
    for recorder, (status, ms) in zip(replicas, [(200, 3.0), (503, 700.0)], strict=True):
        recorder.record("globex", status, ms)
        recorder.record("globex", 200, 40.0)
        assert recorder.flush() == 2
    with services.engine.connect() as conn:
        usage = api_usage.sum_usage(conn, tenant="globex", start=minute, end=minute + 60_000)
    assert usage.by_class == {"2xx": 3, "5xx": 1}
    assert usage.buckets == (1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0)
    assert usage.duration_ms_sum == pytest.approx(783.0)


def test_p95_is_interpolated_inside_its_bucket() -> None:
    buckets = [0] * len(api_usage.BUCKET_COLUMNS)
    buckets[0], buckets[4] = 90, 10  # 90 requests at most 5 ms, 10 in (50, 100] ms
    assert api_usage.quantile_s(tuple(buckets), 0.95) == pytest.approx(0.075)
    assert api_usage.quantile_s(tuple([0] * 11 + [4]), 0.95) == 10.0  # past the last bound: the last bound
    assert api_usage.quantile_s(tuple([0] * 12), 0.95) is None
