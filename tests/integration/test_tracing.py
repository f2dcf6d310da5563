"""faultlens' own traces (faultlens.tracing) and the ids of every request (api/context.py), over the real app."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from faultlens import request_context, tracing
from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.settings import Settings
from tests.conftest import make_services
from tests.integration.test_otlp_http import json_span, json_traces

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_PARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Traced:
    def __init__(self, services: Services, client: TestClient, exporter: InMemorySpanExporter) -> None:
        self.services = services
        self.client = client
        self.exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        assert self.services.tracing is not None
        assert self.services.tracing.flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced(db_url: str) -> Iterator[Traced]:
    """The app with tracing on, exporting to memory (the same wiring as build_services with an endpoint set)."""
    services = make_services(db_url, start_jobs=False)
    exporter = InMemorySpanExporter()
    services.tracing = tracing.start(services.settings, exporter=exporter)
    assert services.tracing is not None
    try:
        services.tracing.instrument_engine(services.engine)
        with TestClient(create_app(services)) as client:
            yield Traced(services, client, exporter)
    finally:
        services.close()
    assert tracing.active() is None


def _server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def test_a_request_is_one_server_span_by_route_template_with_its_sql_as_children(traced: Traced) -> None:
    r = traced.client.get("/api/v1/traces/abc123", headers={"X-Correlation-ID": "order-42", "X-Request-ID": "req-1"})
    assert r.status_code in (200, 404), r.text
    spans = traced.spans()
    (server,) = _server_spans(spans)
    assert server.name == "GET /api/v1/traces/{trace_id:path}"
    attrs = dict(server.attributes or {})
    assert attrs["http.route"] == "/api/v1/traces/{trace_id:path}"
    assert attrs["correlation_id"] == "order-42" and attrs["request_id"] == "req-1"
    assert tuple(attrs["http.request.header.x-request-id"]) == ("req-1",)  # type: ignore[arg-type]
    assert server.resource.attributes["service.name"] == "faultlens"
    assert server.resource.attributes["service.version"]
    trace_id = server.context.trace_id
    sql = [s for s in spans if s.kind is SpanKind.CLIENT and s.context.trace_id == trace_id and s.name != "connect"]
    assert sql, [s.name for s in spans]
    assert all({"db.statement", "db.query.text"} & set(s.attributes or {}) for s in sql), sql
    # Each statement's span hangs under the request's (directly, or under its connection's span).
    by_id = {s.context.span_id: s for s in spans}
    for span in sql:
        node: ReadableSpan | None = span
        while node is not None and node.parent is not None and node is not server:
            node = by_id.get(node.parent.span_id)
        assert node is server, span.name
    # The answer names the server span as the parent of whatever the caller does next.
    assert r.headers["traceparent"] == (
        f"00-{_hex(trace_id, 32)}-{_hex(server.context.span_id, 16)}-{int(server.context.trace_flags):02x}"
    )
    assert r.headers["x-correlation-id"] == "order-42" and r.headers["x-request-id"] == "req-1"


def test_no_span_attribute_carries_the_query_string(traced: Traced) -> None:
    # Like the access log: a query value (a filter, a cursor, a key pasted into a URL) never reaches the backend.
    r = traced.client.get("/api/v1/events?source=secret-q-value&window=1h")
    assert r.status_code in (200, 401), r.text
    (server,) = _server_spans(traced.spans())
    values = [str(v) for v in (server.attributes or {}).values()]
    assert values and not [v for v in values if "secret-q-value" in v], server.attributes


def test_an_incoming_traceparent_makes_the_server_span_its_child(traced: Traced) -> None:
    r = traced.client.get("/api/v1/events", params={"no_such_param": "1"}, headers={"traceparent": CALLER_PARENT})
    assert r.status_code == 400, r.text
    (server,) = _server_spans(traced.spans())
    assert _hex(server.context.trace_id, 32) == CALLER_TRACE
    assert server.parent is not None and _hex(server.parent.span_id, 16) == CALLER_SPAN
    body = r.json()
    assert body["trace_id"] == CALLER_TRACE
    assert r.headers["traceparent"].startswith(f"00-{CALLER_TRACE}-{_hex(server.context.span_id, 16)}-")
    assert HEX32.match(body["correlation_id"]) and body["correlation_id"] == r.headers["x-correlation-id"]
    assert dict(server.attributes or {})["correlation_id"] == body["correlation_id"]


def test_log_context_carries_the_active_span_ids(traced: Traced) -> None:
    """The provider tracing registers gives request_context (so every log line) the active span's ids."""
    provider = traced.services.tracing
    assert provider is not None
    tracer = provider.provider.get_tracer("test")
    with tracer.start_as_current_span("step") as span:
        ctx = request_context.current()
        assert ctx.trace_id == _hex(span.get_span_context().trace_id, 32)
        assert ctx.span_id == _hex(span.get_span_context().span_id, 16)
    assert request_context.current().trace_id is None


def test_the_otlp_receivers_own_requests_produce_no_span(traced: Traced) -> None:
    body = json_traces(json_span("1111111111111111", attributes=[]))
    r = traced.client.post("/v1/traces", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert traced.spans() == []  # neither a server span nor the receiver's SQL as root spans
    traced.client.get("/healthz")
    assert [s.name for s in _server_spans(traced.spans())] == ["GET /healthz"]  # and tracing is on


def _ids_problem(r: httpx.Response) -> str | None:
    body = r.json()
    if set(body) != {"error", "request_id", "correlation_id", "trace_id"}:
        return f"keys {sorted(body)}"
    if body["correlation_id"] != r.headers.get("x-correlation-id"):
        return f"correlation_id {body['correlation_id']!r} vs header {r.headers.get('x-correlation-id')!r}"
    if body["request_id"] != r.headers.get("x-request-id"):
        return "request_id is not the header"
    return None


def test_tracing_off_installs_nothing_and_still_echoes_the_ids(sqlite_url: str) -> None:
    services = make_services(sqlite_url, start_jobs=False)
    try:
        assert services.tracing is None and tracing.active() is None
        app = create_app(services)
        assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
        layer: Any = app.build_middleware_stack()
        while layer is not None:
            assert not isinstance(layer, OpenTelemetryMiddleware)
            layer = getattr(layer, "app", None)
        assert not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
        assert not RedisInstrumentor().is_instrumented_by_opentelemetry
        assert request_context._span_ids is None
        with TestClient(app) as client:
            plain = client.get("/healthz")
            assert "traceparent" not in plain.headers  # nothing came in, nothing is traced
            assert HEX32.match(plain.headers["x-correlation-id"])
            # A caller's trace context and correlation id come back, in the headers and in error bodies.
            headers = {"traceparent": CALLER_PARENT.upper(), "X-Correlation-ID": "checkout-7"}
            bad = client.get("/api/v1/events", params={"nope": "1"}, headers=headers)
            assert bad.status_code == 400 and _ids_problem(bad) is None, bad.text
            assert bad.json()["trace_id"] == CALLER_TRACE and bad.json()["correlation_id"] == "checkout-7"
            assert bad.headers["traceparent"] == CALLER_PARENT
            # The guard's own refusal (before any route) carries the same keys.
            refused = client.get("/api/v1/events", headers={**headers, "host": "evil.example"})
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "host_not_allowed"
            assert _ids_problem(refused) is None and refused.json()["trace_id"] == CALLER_TRACE
            # Not a correlation id (too long, or not visible ASCII): a fresh one instead; no trace: null.
            for wrong in ("x" * 129, "has space", "na\xefve".encode("latin-1")):
                r = client.get("/api/v1/events", params={"nope": "1"}, headers={"X-Correlation-ID": wrong})
                assert _ids_problem(r) is None and HEX32.match(r.json()["correlation_id"]), wrong
                assert r.json()["trace_id"] is None and "traceparent" not in r.headers
            junk = client.get("/healthz", headers={"traceparent": "00-zz-00f067aa0ba902b7-01"})
            assert "traceparent" not in junk.headers
    finally:
        services.close()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[str]:
    """A second faultlens in its own process (its own OTLP receiver), on a free port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "FAULTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'sink.db'}",
        "FAULTLENS_START_JOBS": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "faultlens.api.asgi:app", "--port", str(port)]
    proc = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the sink did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_spans_exported_over_otlp_reach_a_second_faultlens(tmp_path: Path, sink: str) -> None:
    """The real exporter, to another faultlens' OTLP receiver: the request's server span becomes its event there,
    with the correlation and request ids faultlens put on it."""
    source = make_services(
        f"sqlite:///{tmp_path / 'source.db'}",
        start_jobs=False,
        OTEL_EXPORTER_OTLP_ENDPOINT=sink,
        OTEL_SERVICE_NAME="faultlens-under-test",
    )
    try:
        assert source.tracing is not None and source.settings.otel_service_name == "faultlens-under-test"
        with TestClient(create_app(source)) as client:
            r = client.get(
                "/api/v1/traces/nothing-here",
                headers={"X-Correlation-ID": "e2e-corr-1", "X-Request-ID": "e2e-req-1"},
            )
            trace_id = r.headers["traceparent"].split("-")[1]
        assert source.tracing.flush(10)
    finally:
        source.close()
    with httpx.Client(base_url=sink, timeout=10) as sink_client:
        found = sink_client.get("/api/v1/correlations/e2e-corr-1")
        by_request = sink_client.get("/api/v1/requests/e2e-req-1")
    assert found.status_code == 200, found.text
    steps = found.json()["steps"]
    assert [s["trace_id"] for s in steps if s["kind"] == "event"] == [trace_id], steps
    (event,) = (s for s in steps if s["kind"] == "event")
    assert event["source"] == "faultlens-under-test"
    assert by_request.status_code == 200, by_request.text
    assert [s["trace_id"] for s in by_request.json()["steps"] if s["kind"] == "event"] == [trace_id]


def test_an_endpoint_setting_turns_tracing_on_and_names_the_traces_url() -> None:
    on = Settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/")
    assert tracing.traces_endpoint(on) == "http://collector:4318/v1/traces"
    exact = Settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://b/t")
    assert tracing.traces_endpoint(exact) == "http://b/t"
    assert (
        tracing.traces_endpoint(Settings(OTEL_EXPORTER_OTLP_ENDPOINT="", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="")) is None
    )
