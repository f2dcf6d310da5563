"""Trace pivots on SQLite and PostgreSQL: evidence spans stored once and bounded per trace, the trace, correlation
and request views in time order with the failing step marked, 404, refused ids, and tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import traces as span_store
from faultlens.timeutil import ms_to_rfc3339, now_ms
from tests.conftest import make_services
from tests.helpers import event

T0 = now_ms() - 3_600_000


def span(
    span_id: str, start: int, end: int, *, trace_id: str = "tr-1", status: str = "error", **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": "gw-span",
        "name": f"call {span_id}",
        "kind": "client",
        "source": "checkout",
        "started_at": T0 + start,
        "ended_at": T0 + end,
        "duration_ms": float(end - start),
        "status": status,
        "http_status": None,
        "error_message": f"{span_id} failed" if status == "error" else None,
        "attributes": {"db.system": "postgresql"},
    }
    row.update(extra)
    return row


def _at(offset: int) -> str:
    return str(ms_to_rfc3339(T0 + offset))


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    svc = make_services(db_url, start_jobs=False)
    events = [
        event(
            id="e-gw",
            source="gateway",
            operation="POST /checkout",
            http_status=502,
            error_message="upstream failed",
            started_at=_at(0),
            duration_ms=900,
            occurred_at=_at(900),
            trace_id="tr-1",
            correlation_id="c-1",
            request_id="r-1",
        ),
        # No started_at: it starts at occurred_at minus its duration.
        event(
            id="e-worker",
            source="worker",
            error_message="job crashed",
            duration_ms=200,
            occurred_at=_at(700),
            trace_id="tr-1",
            correlation_id="c-1",
        ),
        event(id="e-ok", source="auth", status="success", occurred_at=_at(50), trace_id="tr-1"),
        # A trace with events only: its earliest failed event is the failing step.
        event(id="e2-ok", status="success", occurred_at=_at(0), trace_id="tr-2"),
        event(id="e2-late", error_message="second", occurred_at=_at(300), trace_id="tr-2"),
        event(id="e2-early", error_message="first", occurred_at=_at(100), trace_id="tr-2"),
    ]
    assert svc.pipeline.ingest(events, tenant="default").accepted == len(events)
    stored = span_store.insert_spans(
        svc.engine,
        [span("s-db", 100, 400), span("s-cache", 300, 350, kind="internal"), span("s-ok", 120, 130, status="ok")],
        tenant="default",
        max_per_trace=64,
    )
    assert stored == (3, 0)
    # Another tenant with the same trace, correlation and request ids.
    other = [event(id="o-1", error_message="OTHER-MARKER", trace_id="tr-1", correlation_id="c-1", request_id="r-1")]
    assert svc.pipeline.ingest(other, tenant="other").accepted == 1
    span_store.insert_spans(
        svc.engine, [span("o-span", 0, 10, error_message="OTHER-MARKER")], tenant="other", max_per_trace=64
    )
    span_store.insert_spans(svc.engine, [span("o-only", 0, 10, trace_id="tr-other")], tenant="other", max_per_trace=64)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def _ids(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["kind"], s["id"]) for s in body["steps"]]


def test_insert_spans_stores_each_span_once(services: Services) -> None:
    rows = [span("a", 0, 5, trace_id="t-idem"), span("b", 1, 5, trace_id="t-idem")]
    assert span_store.insert_spans(services.engine, rows, tenant="default", max_per_trace=10) == (2, 0)
    # An exporter's retry, and a span twice in one batch: stored once, counted as neither stored nor dropped.
    assert span_store.insert_spans(services.engine, rows + rows, tenant="default", max_per_trace=10) == (0, 0)
    dup = [span("c", 2, 5, trace_id="t-idem"), span("c", 2, 5, trace_id="t-idem")]
    assert span_store.insert_spans(services.engine, dup, tenant="default", max_per_trace=10) == (1, 0)
    with services.engine.connect() as conn:
        assert span_store.count_spans(conn, tenant="default", trace_id="t-idem") == 3
        # The same ids under another tenant are that tenant's own span.
    assert span_store.insert_spans(services.engine, rows, tenant="t2", max_per_trace=10) == (2, 0)


def test_insert_spans_caps_each_trace(services: Services) -> None:
    engine = services.engine
    assert span_store.insert_spans(
        engine, [span("x0", 50, 60, trace_id="t-cap")], tenant="default", max_per_trace=3
    ) == (1, 0)
    batch = [span(f"x{i}", 100 - i, 200, trace_id="t-cap") for i in range(1, 6)]
    batch.append(span("y1", 0, 1, trace_id="t-cap-2"))
    # Two free places on t-cap: the two earliest-starting new spans take them; the rest are dropped.
    assert span_store.insert_spans(engine, batch, tenant="default", max_per_trace=3) == (3, 3)
    with engine.connect() as conn:
        assert span_store.count_spans(conn, tenant="default", trace_id="t-cap") == 3
        kept, _ = span_store.list_spans(conn, tenant="default", trace_ids=["t-cap"], limit=10)
    assert sorted(s["span_id"] for s in kept) == ["x0", "x4", "x5"]
    # A full trace: a stored span sent again is skipped, a new one dropped.
    again = [span("x0", 50, 60, trace_id="t-cap"), span("x9", 0, 1, trace_id="t-cap")]
    assert span_store.insert_spans(engine, again, tenant="default", max_per_trace=3) == (0, 1)
    assert span_store.insert_spans(engine, [span("z", 0, 1, trace_id="t-none")], tenant="default", max_per_trace=0) == (
        0,
        1,
    )


def test_trace_in_time_order_with_the_failing_span(client: TestClient) -> None:
    r = client.get("/api/v1/traces/tr-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert _ids(body) == [
        ("event", "e-gw"),
        ("event", "e-ok"),
        ("span", "s-db"),
        ("span", "s-ok"),
        ("span", "s-cache"),
        ("event", "e-worker"),
    ]
    steps = {s["id"]: s for s in body["steps"]}
    assert [s["id"] for s in body["steps"] if s["failing"]] == ["s-db"]
    assert body["failing_step"] == 2
    assert (steps["e-gw"]["start_offset_ms"], steps["e-gw"]["duration_ms"]) == (0, 900)
    assert (steps["s-db"]["start_offset_ms"], steps["s-db"]["duration_ms"]) == (100, 300)
    assert (steps["e-worker"]["start_offset_ms"], steps["e-worker"]["duration_ms"]) == (500, 200)
    assert steps["e-ok"]["failed"] is False and steps["s-ok"]["failed"] is False and steps["s-cache"]["failed"]
    assert steps["e-gw"]["links"] == {"event": "/api/v1/events/e-gw", "page": "/events/e-gw"}
    assert steps["e-gw"]["event_id"] == "e-gw" and steps["s-db"]["event_id"] is None
    assert steps["s-db"]["attributes"] == {"db.system": "postgresql"} and steps["s-cache"]["span_kind"] == "internal"
    assert body["started_at"] == _at(0) and body["duration_ms"] == 900
    assert (body["event_count"], body["span_count"], body["truncated"]) == (3, 3, False)
    assert "OTHER-MARKER" not in r.text and "o-span" not in r.text


def test_without_failed_spans_the_earliest_failed_event_fails(client: TestClient) -> None:
    body = client.get("/api/v1/traces/tr-2").json()
    assert _ids(body) == [("event", "e2-ok"), ("event", "e2-early"), ("event", "e2-late")]
    assert [s["id"] for s in body["steps"] if s["failing"]] == ["e2-early"]


def test_a_sub_millisecond_trace_lasts_as_long_as_its_longest_step(services: Services, client: TestClient) -> None:
    # Times are whole milliseconds, OTLP spans often last microseconds: the trace is not "0 ms" long.
    one = event(id="e-fast", error_message="fast", occurred_at=_at(10), duration_ms=0.25, trace_id="tr-fast")
    assert services.pipeline.ingest([one], tenant="default").accepted == 1
    body = client.get("/api/v1/traces/tr-fast").json()
    assert body["duration_ms"] == pytest.approx(0.25) and body["steps"][0]["duration_ms"] == pytest.approx(0.25)


def test_correlation_and_request_pivots(client: TestClient) -> None:
    body = client.get("/api/v1/correlations/c-1").json()
    assert [i for k, i in _ids(body) if k == "event"] == ["e-gw", "e-worker"]
    assert [i for k, i in _ids(body) if k == "span"] == ["s-db", "s-ok", "s-cache"]
    assert body["pivot"] == "correlation" and body["trace_ids"] == ["tr-1"]
    body = client.get("/api/v1/requests/r-1").json()
    assert _ids(body) == [("event", "e-gw"), ("span", "s-db"), ("span", "s-ok"), ("span", "s-cache")]
    assert body["steps"][1]["failing"] is True


def test_unknown_ids_are_404_and_bad_ids_400(client: TestClient) -> None:
    for path, code in (
        ("/api/v1/traces/nope", "trace_not_found"),
        ("/api/v1/correlations/nope", "correlation_not_found"),
        ("/api/v1/requests/nope", "request_not_found"),
        # Another tenant's trace is no trace at all.
        ("/api/v1/traces/tr-other", "trace_not_found"),
    ):
        r = client.get(path)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == code and "request_id" in r.json()
    for bad in ("x" * 129, "a%01b", "a%C2%85b"):
        r = client.get(f"/api/v1/traces/{bad}")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    assert client.get("/api/v1/traces/" + "x" * 128).status_code == 404


def test_a_tenant_sees_only_its_own_trace(services: Services) -> None:
    from faultlens.store import keys

    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant="other", scopes=["read"])
        _, ingest_only = keys.create_key(conn, tenant="default", scopes=["ingest"])
    with TestClient(create_app(services)) as c:
        r = c.get("/api/v1/traces/tr-1", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
        assert _ids(r.json()) == [("span", "o-span"), ("event", "o-1")]
        assert "e-gw" not in r.text and "s-db" not in r.text
        assert c.get("/api/v1/traces/tr-1").status_code == 401
        r = c.get("/api/v1/traces/tr-1", headers={"Authorization": f"Bearer {ingest_only}"})
        assert r.status_code == 403


def test_concurrent_batches_never_overfill_a_trace(services: Services) -> None:
    """Four writers race for one trace's 15 places: the lock per trace lets exactly 15 spans in."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [[span(f"w{w}-{i}", i, i + 1, trace_id="t-race") for i in range(10)] for w in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda rows: span_store.insert_spans(services.engine, rows, tenant="default", max_per_trace=15), batches
            )
        )
    assert sum(s for s, _ in results) == 15 and sum(d for _, d in results) == 25
    with services.engine.connect() as conn:
        assert span_store.count_spans(conn, tenant="default", trace_id="t-race") == 15
