"""The official OpenTelemetry Python SDK exporting to a running faultlens over OTLP/HTTP protobuf, read back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store import traces as trace_store
from tests.conftest import make_services
from tests.live_server import LiveServer

RESOURCE = {
    "service.name": "checkout",
    "service.version": "1.4.2",
    "deployment.environment.name": "prod",
    "k8s.pod.name": "checkout-7d9f",
    "not.allow.listed": "left out",
}


@dataclass
class Faultlens:
    services: Services
    url: str
    ingest_key: str
    read: httpx.Client

    def events(self) -> list[dict[str, Any]]:
        r = self.read.get("/api/v1/events", params={"limit": 500, "window": "7d"})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def event(self, event_id: str) -> dict[str, Any]:
        r = self.read.get(f"/api/v1/events/{event_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def faultlens(db_url: str) -> Iterator[Faultlens]:
    services = make_services(db_url, start_jobs=False, otlp_max_evidence_per_trace=3)
    with services.engine.begin() as conn:
        _, ingest = keys.create_key(conn, tenant="acme", scopes=["ingest"])
        _, read = keys.create_key(conn, tenant="acme", scopes=["read"])
    with (
        LiveServer(create_app(services)) as server,
        httpx.Client(base_url=server.url, headers={"x-api-key": read}, timeout=30) as client,
    ):
        yield Faultlens(services, server.url, ingest, client)
    services.engine.dispose()


def _tracer_provider(fl: Faultlens, **exporter: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    span_exporter = OTLPSpanExporter(endpoint=f"{fl.url}/v1/traces", headers={"x-api-key": fl.ingest_key}, **exporter)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


def _allowed(item: dict[str, Any]) -> dict[str, Any]:
    """Attributes but the two every SDK resource carries; keys outside the allow-list must not be there."""
    attrs = dict(item["attributes"])
    assert not {"not.allow.listed", "password", "http.route"} & set(attrs), attrs
    return {k: v for k, v in attrs.items() if k not in ("telemetry.sdk.language", "service.instance.id")}


def _hex(number: int, width: int) -> str:
    return format(number, f"0{width}x")


def test_sdk_spans_become_classified_events_and_evidence(faultlens: Faultlens) -> None:
    provider = _tracer_provider(faultlens, compression=Compression.Gzip)
    tracer = provider.get_tracer("shop.web")
    with tracer.start_as_current_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/orders/{id}",
            "http.response.status_code": 500,
            "correlation_id": "order-flow-77",
            "http.request.header.x-request-id": ("req-abc-1",),
            "password": "hunter2",
        },
    ) as server_span:
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as db_span:
            db_span.set_attribute("db.system", "postgresql")
            db_span.set_status(Status(StatusCode.ERROR, "connection refused by 10.0.0.5:5432 password=s3cr3t!"))
        with tracer.start_as_current_span("render", kind=SpanKind.INTERNAL):
            pass  # a successful internal span: dropped
        try:
            raise RuntimeError("database is unavailable")
        except RuntimeError as exc:
            server_span.record_exception(exc)
            server_span.set_status(Status(StatusCode.ERROR, str(exc)))
    with tracer.start_as_current_span(
        "POST /pay", kind=SpanKind.SERVER, attributes={"http.method": "POST", "http.status_code": 201}
    ):
        pass
    provider.shutdown()

    ctx = server_span.get_span_context()
    trace_hex, span_hex = _hex(ctx.trace_id, 32), _hex(ctx.span_id, 16)
    by_op = {e["operation"]: e for e in faultlens.events()}
    assert set(by_op) == {"/orders/{id}", "POST /pay"}, by_op.keys()
    failed = faultlens.event(f"otlp-{trace_hex}-{span_hex}")
    assert failed["source"] == "checkout" and failed["item_type"] == "request"
    assert failed["status"] == "failure" and failed["http_status"] == 500
    assert failed["failure_class"] == "service_failure"
    assert failed["error_message"].startswith("RuntimeError: database is unavailable")
    assert "Traceback" in failed["error_message"]
    assert (failed["trace_id"], failed["span_id"]) == (trace_hex, span_hex)
    assert failed["release"] == "1.4.2" and failed["environment"] == "prod"
    assert failed["correlation_id"] == "order-flow-77" and failed["request_id"] == "req-abc-1"
    # Only the allow-list (span first, then resource; the SDK adds telemetry.sdk.language to every resource).
    assert _allowed(failed) == {"http.request.method": "GET", "k8s.pod.name": "checkout-7d9f"}
    assert failed["attributes"]["telemetry.sdk.language"] == "python"
    assert failed["duration_ms"] is not None and failed["duration_ms"] >= 0
    ok = by_op["POST /pay"]
    assert ok["status"] == "success" and ok["http_status"] == 201 and ok["failure_class"] == "none"
    assert _allowed(ok) == {"http.method": "POST", "k8s.pod.name": "checkout-7d9f"}

    with faultlens.services.engine.connect() as conn:
        spans, more = trace_store.list_spans(conn, tenant="acme", trace_ids=[trace_hex], limit=10)
    assert not more and [s["name"] for s in spans] == ["SELECT orders"]
    evidence = spans[0]
    assert evidence["kind"] == "client" and evidence["status"] == "error" and evidence["source"] == "checkout"
    assert evidence["parent_span_id"] == span_hex
    assert "s3cr3t" not in evidence["error_message"] and "connection refused" in evidence["error_message"]
    assert _allowed(evidence) == {"db.system": "postgresql", "k8s.pod.name": "checkout-7d9f"}
    # Every span counted once by what became of it: 2 outcome events, 1 evidence span, 1 successful span dropped.
    registry = faultlens.services.metrics.registry
    counts = {
        outcome: registry.get_sample_value("faultlens_otlp_items_total", {"signal": "spans", "outcome": outcome})
        for outcome in ("event", "evidence", "evidence_capped", "dropped", "rejected")
    }
    assert counts == {"event": 2, "evidence": 1, "evidence_capped": 0, "dropped": 1, "rejected": 0}, counts


def test_a_span_exported_twice_is_stored_once(faultlens: Faultlens) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop.worker")
    with tracer.start_as_current_span("charge", kind=SpanKind.CONSUMER) as span:
        span.set_status(Status(StatusCode.ERROR, "card declined"))
        with tracer.start_as_current_span("POST stripe", kind=SpanKind.CLIENT) as call:
            call.set_status(Status(StatusCode.ERROR, "HTTP 402"))
    provider.shutdown()
    finished: tuple[ReadableSpan, ...] = memory.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"{faultlens.url}/v1/traces", headers={"x-api-key": faultlens.ingest_key})
    assert exporter.export(finished) is SpanExportResult.SUCCESS
    assert exporter.export(finished) is SpanExportResult.SUCCESS  # the exporter's retry of the same batch
    exporter.shutdown()
    events = faultlens.events()
    assert len(events) == 1 and events[0]["item_type"] == "message" and events[0]["status"] == "failure"
    trace_hex = _hex(span.get_span_context().trace_id, 32)
    with faultlens.services.engine.connect() as conn:
        assert trace_store.count_spans(conn, tenant="acme", trace_id=trace_hex) == 1


def test_client_that_went_away_is_client_abort(faultlens: Faultlens) -> None:
    provider = _tracer_provider(faultlens)
    tracer = provider.get_tracer("shop.web")
    attrs = {"http.request.method": "GET", "http.route": "/stream"}
    with tracer.start_as_current_span("GET /stream", kind=SpanKind.SERVER, attributes=attrs) as by_status:
        by_status.set_attribute("http.response.status_code", 499)
    with tracer.start_as_current_span("GET /download", kind=SpanKind.SERVER, attributes={"http.method": "GET"}) as gone:
        gone.set_attribute("http.status_code", 200)
        gone.set_status(Status(StatusCode.ERROR, "http.disconnect received before the response was complete"))
    with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER) as cancelled:
        try:
            raise TimeoutError("x")
        except TimeoutError:
            cancelled.add_event("exception", {"exception.type": "asyncio.CancelledError", "exception.message": ""})
            cancelled.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    by_id = {e["id"]: e for e in faultlens.events()}
    for span, http_status in ((by_status, 499), (gone, 499), (cancelled, None)):
        ctx = span.get_span_context()
        event = by_id[f"otlp-{_hex(ctx.trace_id, 32)}-{_hex(ctx.span_id, 16)}"]
        assert event["status"] == "cancelled", event
        assert event["http_status"] == http_status
        assert event["failure_class"] == "client_abort", event


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated:DeprecationWarning")
def test_sdk_error_logs_become_events_and_lower_ones_are_dropped(faultlens: Faultlens) -> None:
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    exporter = OTLPLogExporter(endpoint=f"{faultlens.url}/v1/logs", headers={"x-api-key": faultlens.ingest_key})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("shop.payments")
    logger.propagate = False
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    tracer_provider = TracerProvider(resource=Resource.create(RESOURCE))
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("pay", kind=SpanKind.SERVER) as span:
            logger.info("charging card")
            logger.warning("slow gateway")
            logger.error("payment gateway answered 502")
            try:
                {}["card"]
            except KeyError:
                logger.warning("lookup failed", exc_info=True)  # below ERROR, but it carries an exception
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    events = sorted(faultlens.events(), key=lambda e: e["error_message"])
    assert len(events) == 2, events
    assert events[0]["error_message"].startswith("KeyError: ") and "Traceback" in events[0]["error_message"]
    assert events[1]["error_message"] == "payment gateway answered 502"
    ctx = span.get_span_context()
    for event in events:
        assert event["status"] == "failure" and event["item_type"] == "job" and event["source"] == "checkout"
        assert event["operation"] == "shop.payments" and event["release"] == "1.4.2"
        assert (event["trace_id"], event["span_id"]) == (_hex(ctx.trace_id, 32), _hex(ctx.span_id, 16))
    assert events[0]["failure_class"] == "service_failure"  # the shipped rules decide: a bare KeyError is our bug
