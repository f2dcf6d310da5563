"""Drill `duplicates`: the same event batch and the same OTLP export delivered three times are stored once."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import Counter
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from faultlens.drills.harness import Drill, DrillContext, Server
from faultlens.drills.scenarios._evidence import (
    check_answer_ids,
    check_logged,
    delta,
    ids_of_source,
    now_rfc3339,
    stored,
    traced_headers,
)

SOURCE = "drill-duplicates"
OTLP_SERVICE = "drill-duplicates-otlp"
BATCH = 8
DELIVERIES = 3
_SERIES = ("faultlens_ingest_events_total", "faultlens_otlp_items_total")


def _attr(key: str, value: str | int | list[str]) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_export(trace_id: str, request_id: str) -> tuple[ExportTraceServiceRequest, str]:
    """One failed request as an SDK exports it: a SERVER span (the outcome event) with a failed CLIENT child (the
    trace's evidence). Returns the request and the outcome event's id (docs/otel.md: otlp-<trace>-<span>)."""
    server_span, client_span = secrets.token_hex(8), secrets.token_hex(8)
    end = time.time_ns()
    server = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(server_span),
        name="POST /checkout",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=end - 80_000_000,
        end_time_unix_nano=end,
        attributes=[
            _attr("http.route", "/checkout"),
            _attr("http.response.status_code", 502),
            _attr("http.request.header.x-request-id", [request_id]),
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream inventory failed"),
    )
    client = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(client_span),
        parent_span_id=bytes.fromhex(server_span),
        name="GET inventory",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=end - 60_000_000,
        end_time_unix_nano=end - 20_000_000,
        attributes=[_attr("http.response.status_code", 503)],
        status=Status(code=Status.STATUS_CODE_ERROR, message="inventory answered 503"),
    )
    resource = Resource(attributes=[_attr("service.name", OTLP_SERVICE)])
    export = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[server, client])])]
    )
    return export, f"otlp-{trace_id}-{server_span}"


def as_otlp_json(export: ExportTraceServiceRequest) -> bytes:
    """The same export in OTLP JSON: camelCase fields, and trace and span ids as hex (not protobuf's base64)."""
    doc = MessageToDict(export)
    for resource in doc.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return json.dumps(doc).encode()


def _batch(run: str) -> list[dict[str, Any]]:
    at = now_rfc3339()
    return [
        {
            "id": f"dup-{run}-{n}",
            "source": SOURCE,
            "status": "failure",
            "occurred_at": at,
            "error_message": f"ConnectionResetError: peer reset the connection (order {n})",
        }
        for n in range(BATCH)
    ]


def _event_batch(ctx: DrillContext, server: Server) -> None:
    batch = _batch(secrets.token_hex(3))
    ids = [e["id"] for e in batch]
    before = server.metrics()
    for n in range(1, DELIVERIES + 1):
        headers, request_id, trace_id = traced_headers(f"batch{n}")
        answer = server.post("/api/v1/events", json=batch, headers=headers)
        body = answer.json() if answer.status_code == 200 else {}
        ctx.note(f"batch delivery {n}: HTTP {answer.status_code} {body or answer.text[:200]}")
        want = (BATCH, 0) if n == 1 else (0, BATCH)
        ctx.check(
            f"batch delivery {n}: 200, accepted {want[0]}, duplicates {want[1]}",
            answer.status_code == 200 and (body.get("accepted"), body.get("duplicates")) == want,
            f"accepted {body.get('accepted')}, duplicates {body.get('duplicates')}, rejected {body.get('rejected')}",
        )
        check_answer_ids(ctx, f"batch delivery {n}", answer, request_id, trace_id)
        check_logged(ctx, server, f"batch delivery {n}", request_id, trace_id, status=200)
    deltas = ctx.record_deltas(before, server.metrics(), _SERIES)
    counted = {o: delta(deltas, "faultlens_ingest_events_total", outcome=o) for o in ("accepted", "duplicate")}
    ctx.check(
        "batch: faultlens_ingest_events_total counts the re-sends as duplicates",
        counted == {"accepted": float(BATCH), "duplicate": float(BATCH * (DELIVERIES - 1))},
        f"{counted}",
    )
    found = stored(server, ids)
    missing = [i for i, ok in found.items() if not ok]
    listed = ids_of_source(server, SOURCE)
    twice = sorted(i for i, n in Counter(listed).items() if n > 1)
    ctx.check("batch: every id stored (by id)", not missing, f"missing {missing}")
    ctx.check(
        f"batch: stored once after {DELIVERIES} deliveries (count by ids)",
        sorted(listed) == sorted(ids) and not twice,
        f"{len(listed)} events listed for {SOURCE} ({len(ids)} ids sent), twice: {twice}",
    )
    ctx.lost += len(missing)


def _otlp_export(ctx: DrillContext, server: Server) -> None:
    trace_id = secrets.token_hex(16)
    span_request_id = f"drill-checkout-{secrets.token_hex(4)}"
    export, event_id = build_export(trace_id, span_request_id)
    ctx.add_trace_id(trace_id)
    deliveries: list[tuple[str, str, bytes]] = [
        *(("protobuf", "application/x-protobuf", export.SerializeToString()) for _ in range(DELIVERIES)),
        ("OTLP JSON", "application/json", as_otlp_json(export)),
    ]
    before = server.metrics()
    for n, (encoding, media, body) in enumerate(deliveries, start=1):
        headers, request_id, sender_trace = traced_headers(f"otlp{n}")
        answer = server.post("/v1/traces", content=body, headers={**headers, "content-type": media})
        partial = ""
        if answer.status_code == 200 and encoding == "protobuf":
            result = ExportTraceServiceResponse.FromString(answer.content)
            partial = str(result.partial_success.rejected_spans or "")
        elif answer.status_code == 200:
            partial = str(answer.json().get("partialSuccess", {}).get("rejectedSpans", "") or "")
        ctx.note(
            f"OTLP export delivery {n} ({encoding}): HTTP {answer.status_code} {answer.text[:200] if partial else ''}"
        )
        ctx.check(
            f"OTLP export delivery {n} ({encoding}): 200 with nothing rejected",
            answer.status_code == 200 and not partial,
            f"HTTP {answer.status_code}, rejected_spans {partial or 0}",
        )
        check_answer_ids(ctx, f"OTLP export delivery {n}", answer, request_id, sender_trace)
        check_logged(ctx, server, f"OTLP export delivery {n}", request_id, sender_trace, status=200)
    deltas = ctx.record_deltas(before, server.metrics(), _SERIES)
    items = {o: delta(deltas, "faultlens_otlp_items_total", signal="spans", outcome=o) for o in ("event", "evidence")}
    # Each delivery's outcome span is counted as an event (stored or a duplicate of one); an evidence span already
    # stored is counted in none (docs/otel.md "Counted").
    ctx.check(
        "OTLP: faultlens_otlp_items_total counts every delivery's outcome, the evidence once",
        items == {"event": float(len(deliveries)), "evidence": 1.0},
        f"{items}",
    )
    counted = {o: delta(deltas, "faultlens_ingest_events_total", outcome=o) for o in ("accepted", "duplicate")}
    ctx.check(
        "OTLP: the re-delivered outcome counted as ingest duplicates",
        counted == {"accepted": 1.0, "duplicate": float(len(deliveries) - 1)},
        f"{counted}",
    )
    view = server.get(f"/api/v1/traces/{trace_id}")
    trace = view.json() if view.status_code == 200 else {}
    ctx.check(
        f"OTLP: trace {trace_id} holds one outcome event and one evidence span",
        view.status_code == 200 and trace.get("event_count") == 1 and trace.get("span_count") == 1,
        f"HTTP {view.status_code}, events {trace.get('event_count')}, spans {trace.get('span_count')}",
    )
    pivot = server.get(f"/api/v1/requests/{span_request_id}")
    by_request = pivot.json() if pivot.status_code == 200 else {}
    ctx.check(
        f"OTLP: request id {span_request_id} (the span's x-request-id) finds the one event",
        pivot.status_code == 200 and by_request.get("event_count") == 1,
        f"HTTP {pivot.status_code}, events {by_request.get('event_count')}",
    )
    found = stored(server, [event_id])
    listed = ids_of_source(server, OTLP_SERVICE)
    ctx.check(
        "OTLP: the outcome event stored once (count by ids)",
        found[event_id] and listed == [event_id],
        f"{listed}",
    )
    ctx.lost += 0 if found[event_id] else 1


def run(ctx: DrillContext) -> None:
    server = ctx.start_server()
    ctx.note(f"the same batch of {BATCH} events, {DELIVERIES} times")
    _event_batch(ctx, server)
    ctx.note(f"the same OTLP trace export, {DELIVERIES} times as protobuf and once more as OTLP JSON")
    _otlp_export(ctx, server)


DRILL = Drill(
    name="duplicates",
    title="Duplicate delivery",
    shows=(
        "The same event batch and the same OTLP trace export delivered three times (and the export once more as "
        "OTLP JSON) are stored once: answers and faultlens_ingest_events_total count the re-sends as duplicates, "
        "the API finds each id once, and every delivery is found by its request and trace ids in the JSON logs."
    ),
    run=run,
)
