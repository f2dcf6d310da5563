"""One failed request followed through the three signals: metrics narrow it, the trace finds the step, the log
line gives the evidence, joined by the same trace id (issue 14, proof)."""

from __future__ import annotations

import io
import logging
import sqlite3

import orjson
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.engine import make_url

from faultlens import logs, tracing
from faultlens.api.app import create_app
from tests.conftest import make_services
from tests.helpers import event


def _sample(services: object, name: str, labels: dict[str, str]) -> float:
    registry = services.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(f"faultlens_{name}", labels)
    return float(value or 0.0)


def test_a_locked_database_is_followed_from_metric_to_trace_to_log(sqlite_url: str) -> None:
    services = make_services(
        sqlite_url, start_jobs=False, sqlite_busy_timeout_s=0.3, database_lock_timeout_s=0.3, log_format="json"
    )
    exporter = InMemorySpanExporter()
    services.tracing = tracing.start(services.settings, exporter=exporter)
    assert services.tracing is not None
    stream = io.StringIO()
    handler = logs.setup("INFO", "json", stream=stream)
    try:
        services.tracing.instrument_engine(services.engine)
        with TestClient(create_app(services)) as client:
            assert client.post("/api/v1/events", json=[event(id="before")]).status_code == 200
            busy_before = _sample(services, "database_errors_total", {"reason": "db_busy"})
            errors_before = _sample(
                services,
                "http_requests_total",
                {"route": "/api/v1/events", "method": "POST", "status_class": "5xx"},
            )
            holder = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None, timeout=0)
            holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
            try:
                r = client.post("/api/v1/events", json=[event(id="during")], headers={"X-Correlation-ID": "drill-1"})
            finally:
                holder.close()
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"]["code"] == "database_unavailable" and body["correlation_id"] == "drill-1"
        trace_id = body["trace_id"]
        assert trace_id and r.headers["traceparent"].split("-")[1] == trace_id

        # 1. Metrics narrow the scope: the 5xx on the ingest route and the database error under its reason.
        assert _sample(services, "database_errors_total", {"reason": "db_busy"}) > busy_before
        labels = {"route": "/api/v1/events", "method": "POST", "status_class": "5xx"}
        assert _sample(services, "http_requests_total", labels) == errors_before + 1

        # 2. The trace finds the step: the request's server span, and under it the statement that failed.
        assert services.tracing.flush()
        spans = [s for s in exporter.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
        server = [s for s in spans if s.kind is SpanKind.SERVER]
        assert len(server) == 1 and (server[0].attributes or {}).get("correlation_id") == "drill-1"
        failed = [s for s in spans if s.kind is SpanKind.CLIENT and s.status.status_code is StatusCode.ERROR]
        assert failed, [(s.name, s.status.status_code) for s in spans]
        assert any("locked" in (s.status.description or "") for s in failed), [s.status for s in failed]

        # 3. The log gives the evidence: a JSON line with the same trace id, the error code and the correlation id.
        lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("trace_id") == trace_id]
        assert mine, lines[-5:]
        assert any(line.get("error_code") == "database_unavailable" for line in mine), mine
        assert all(line.get("correlation_id") == "drill-1" for line in mine), mine
    finally:
        logging.getLogger().removeHandler(handler)
        services.close()
