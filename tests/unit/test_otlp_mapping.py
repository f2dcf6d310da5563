"""The OTLP span and log mapping, pure: outcome status, ids, attributes, evidence and drops."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from faultlens.otlp.decode import decode_traces
from faultlens.otlp.logs import map_logs
from faultlens.otlp.spans import map_spans
from faultlens.otlp.values import OtlpConfig
from faultlens.settings import Settings

CONFIG = OtlpConfig.from_settings(Settings(otlp_attributes="http.method,db.system,tags,weird"))
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
NOW_NS = 1_780_000_000_000 * 1_000_000


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[kv("", v).value for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(
    *, kind: int = Span.SPAN_KIND_SERVER, parent: bool = False, code: int = 0, message: str = "", **attrs: Any
) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=b"\x00\x00\x00\x00\x00\x00\x00\x07",
        parent_span_id=b"\x00\x00\x00\x00\x00\x00\x00\x01" if parent else b"",
        name="handle",
        kind=kind,
        start_time_unix_nano=NOW_NS - 1_500_000,
        end_time_unix_nano=NOW_NS,
        attributes=[kv(k.replace("_", "."), v) for k, v in attrs.items()],
        status=Status(code=code, message=message),
    )


def mapped(*spans: Span, resource: list[KeyValue] | None = None) -> Any:
    res = Resource(attributes=resource or [kv("service.name", "api")])
    return map_spans([ResourceSpans(resource=res, scope_spans=[ScopeSpans(spans=list(spans))])], CONFIG)


@pytest.mark.parametrize(
    ("attrs", "code", "message", "status", "http_status"),
    [
        ({"http.response.status_code": 503}, 0, "", "failure", 503),
        ({"http.status_code": 404}, 1, "", "failure", 404),
        ({"http.response.status_code": "502"}, 0, "", "failure", 502),
        ({"http.response.status_code": 200}, 2, "oops", "success", 200),
        ({"http.response.status_code": 499}, 0, "", "cancelled", 499),
        ({"http.request.method": "GET"}, 2, "http.disconnect before the body was sent", "cancelled", 499),
        ({"http.status_code": 200}, 2, "ClientDisconnect", "cancelled", 499),
        ({}, 2, "context canceled", "cancelled", None),
        ({"rpc.grpc.status_code": 1}, 2, "", "cancelled", None),
        ({}, 2, "boom", "failure", None),
        ({}, 1, "", "success", None),
        ({}, 0, "", "success", None),
        ({"http.response.status_code": 9999}, 2, "", "failure", None),
    ],
)
def test_outcome_status(attrs: dict[str, Any], code: int, message: str, status: str, http_status: int | None) -> None:
    s = span(code=code, message=message)
    s.attributes.extend(kv(k, v) for k, v in attrs.items())
    [event] = mapped(s).events
    assert (event["status"], event.get("http_status")) == (status, http_status)


def test_event_fields_ids_and_allow_list() -> None:
    s = span(code=2, message="fallback")
    s.attributes.extend([kv("http.method", "POST"), kv("tags", ["a", "b"]), kv("weird", float("nan"))])
    s.events.add(name="exception", attributes=[kv("exception.type", "ValueError"), kv("exception.message", "bad")])
    resource = [
        kv("service.name", "api"),
        kv("service.version", "9"),
        kv("deployment.environment", "dev"),
        kv("db.system", "x"),
    ]
    [event] = mapped(s, resource=resource).events
    assert event["id"] == "otlp-0af7651916cd43dd8448eb211c80319c-0000000000000007"
    assert (event["source"], event["release"], event["environment"]) == ("api", "9", "dev")
    assert event["error_message"] == "ValueError: bad" and event["duration_ms"] == 1.5
    assert event["attributes"] == {"http.method": "POST", "db.system": "x", "tags": '["a","b"]', "weird": "nan"}
    assert event["occurred_at"] == NOW_NS // 1_000_000 and event["started_at"] == (NOW_NS - 1_500_000) // 1_000_000
    assert event["item_type"] == "request"


def test_kinds_roots_evidence_and_drops() -> None:
    batch = mapped(
        span(kind=Span.SPAN_KIND_CONSUMER, parent=True),
        span(kind=Span.SPAN_KIND_INTERNAL),  # a root
        span(kind=Span.SPAN_KIND_CLIENT, parent=True, code=2, message="refused"),
        span(kind=Span.SPAN_KIND_CLIENT, parent=True),
    )
    assert [e["item_type"] for e in batch.events] == ["message", "job"]
    assert [(r["kind"], r["status"], r["error_message"]) for r in batch.evidence] == [("client", "error", "refused")]
    assert batch.dropped == 1 and batch.rejected == []
    bad = span()
    bad.trace_id = b"\x00" * 16
    assert len(mapped(bad).rejected) == 1


def test_correlation_and_request_ids() -> None:
    s = span(**{"http.request.header.baggage": ["correlation_id=flow-1;p=1,x=2"]})
    s.attributes.append(kv("http.request.header.x-request-id", ["rid-1", "rid-2"]))
    [event] = mapped(s).events
    assert (event["correlation_id"], event["request_id"]) == ("flow-1", "rid-1")
    s = span(correlation_id="x" * 500)
    assert "correlation_id" not in mapped(s).events[0]


def test_logs_kept_by_severity_or_exception() -> None:
    records = [
        LogRecord(time_unix_nano=NOW_NS, severity_number=17, body=AnyValue(string_value="failed")),
        LogRecord(time_unix_nano=NOW_NS, severity_number=9, body=AnyValue(string_value="fine")),
        LogRecord(time_unix_nano=NOW_NS, severity_number=13, attributes=[kv("exception.type", "OSError")]),
        LogRecord(
            time_unix_nano=NOW_NS,
            severity_number=21,
            body=AnyValue(kvlist_value=KeyValueList(values=[kv("k", "v")])),
            trace_id=TRACE,
        ),
    ]
    res = ResourceLogs(
        resource=Resource(attributes=[kv("service.name", "w")]), scope_logs=[ScopeLogs(log_records=records)]
    )
    batch = map_logs([res], CONFIG)
    assert [e["error_message"] for e in batch.events] == ["failed", "OSError", '{"k":"v"}']
    assert batch.dropped == 1 and batch.events[2]["trace_id"] == TRACE.hex()
    assert len({e["id"] for e in batch.events}) == 3
    assert map_logs([res], CONFIG).events[0]["id"] == batch.events[0]["id"]  # the same record, the same id


def test_json_hex_ids_decode_to_bytes() -> None:
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0AF7651916CD43DD8448EB211C80319C",'
        b'"spanId":"0000000000000007","kind":"SPAN_KIND_SERVER","status":{"code":2},"extra":1}]}]}]}'
    )
    request = decode_traces(body, "application/json")
    decoded = request.resource_spans[0].scope_spans[0].spans[0]
    assert decoded.trace_id == TRACE and decoded.kind == Span.SPAN_KIND_SERVER and decoded.status.code == 2
