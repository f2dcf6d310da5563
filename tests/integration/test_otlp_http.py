"""The OTLP/HTTP receiver's contract over HTTP: OTLP JSON, gzip, partial success, evidence caps, and every
refusal as a google.rpc.Status in the request's encoding (never a 500), on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2, status_pb2
from httpx import Response
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store import traces as trace_store
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.integration.test_deadlines import _hold_write_lock
from tests.live_server import LiveServer

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"


class Api:
    def __init__(self, services: Services, client: TestClient) -> None:
        self.services = services
        self.client = client
        with services.engine.begin() as conn:
            self.ingest = {"x-api-key": keys.create_key(conn, tenant="acme", scopes=["ingest"])[1]}
            self.read = {"x-api-key": keys.create_key(conn, tenant="acme", scopes=["read"])[1]}

    def post(self, path: str, body: bytes, headers: dict[str, str], **extra: str) -> Response:
        return self.client.post(path, content=body, headers={**self.ingest, **headers, **extra})

    def events(self) -> dict[str, dict[str, Any]]:
        r = self.client.get("/api/v1/events", params={"limit": 500, "window": "7d"}, headers=self.read)
        assert r.status_code == 200, r.text
        return {e["id"]: e for e in r.json()["items"]}


def _make(db_url: str, **settings: Any) -> Iterator[Api]:
    services = make_services(db_url, start_jobs=False, **settings)
    with TestClient(create_app(services)) as client:
        yield Api(services, client)
    services.engine.dispose()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from _make(db_url, otlp_max_evidence_per_trace=3, max_body_bytes=64 * 1024)


def _nanos(ms: int) -> str:
    return str(ms * 1_000_000)


def json_span(span_id: str, *, parent: str = "", kind: int = 2, **fields: Any) -> dict[str, Any]:
    end = now_ms() - 1_000
    span = {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": "GET /cart",
        "kind": kind,
        "startTimeUnixNano": _nanos(end - 250),
        "endTimeUnixNano": _nanos(end),
        "attributes": [],
        "status": {},
        "someFutureField": {"ignored": True},
    }
    span.update(fields)
    return span


def json_traces(*spans: dict[str, Any], service: str = "cart") -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "x"}, "spans": list(spans)}]}]}
    return orjson.dumps(doc)


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def pb_traces(*spans: Span, service: str = "cart") -> bytes:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=list(spans))])]
    )
    data: bytes = request.SerializeToString()
    return data


def pb_span(
    span_id: int, *, parent: int = 0, kind: int = Span.SPAN_KIND_CLIENT, error: str = "", start_ms: int = 0
) -> Span:
    start = start_ms or now_ms() - 5_000
    return Span(
        trace_id=bytes.fromhex(TRACE),
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=f"call {span_id}",
        kind=kind,
        start_time_unix_nano=start * 1_000_000,
        end_time_unix_nano=(start + 10) * 1_000_000,
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET, message=error),
    )


def status_problem(r: Response, status: int, reason: str, *, protobuf: bool) -> str | None:
    """None when `r` is a google.rpc.Status with `status` and the ErrorInfo reason `reason`, else what is wrong."""
    if r.status_code != status:
        return f"answered {r.status_code}, not {status}: {r.content[:200]!r}"
    media = r.headers.get("content-type", "")
    if protobuf:
        if media != "application/x-protobuf":
            return f"content type {media}"
        body = status_pb2.Status.FromString(r.content)
        info = error_details_pb2.ErrorInfo()
        if len(body.details) != 1 or not body.details[0].Unpack(info):
            return f"no ErrorInfo detail: {body}"
        found, message, rid = info.reason, body.message, info.metadata["request_id"]
    else:
        if not media.startswith("application/json"):
            return f"content type {media}"
        doc = r.json()
        if set(doc) - {"code", "message", "details"} or not isinstance(doc.get("code"), int):
            return f"not a Status: {doc}"
        detail = doc["details"][0]
        if detail["@type"] != "type.googleapis.com/google.rpc.ErrorInfo":
            return f"detail is not an ErrorInfo: {detail}"
        found, message, rid = detail["reason"], doc["message"], detail["metadata"]["request_id"]
    if found != reason or not message:
        return f"reason {found!r} (not {reason!r}), message {message!r}"
    if rid != r.headers.get("x-request-id"):
        return f"request_id {rid!r} is not X-Request-ID"
    return None


def test_otlp_json_spans_and_logs_are_read(api: Api) -> None:
    server = json_span(
        "eee19b7ec3c1b174",
        attributes=[_attr("http.route", "/cart/{id}"), _attr("http.status_code", 503), _attr("http.method", "PUT")],
        status={"code": 2, "message": "upstream connect error or disconnect/reset before headers"},
    )
    child = json_span("eee19b7ec3c1b175", parent="eee19b7ec3c1b174", kind=3, status={"code": 2, "message": "boom"})
    r = api.post("/v1/traces", json_traces(server, child), JSON)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json" and r.json() == {}, r.text
    event = api.events()[f"otlp-{TRACE}-eee19b7ec3c1b174"]
    assert (event["operation"], event["http_status"], event["status"]) == ("/cart/{id}", 503, "failure")
    assert event["failure_class"] == "service_failure" and event["duration_ms"] == 250
    assert event["attributes"] == {"http.method": "PUT"}
    with api.services.engine.connect() as conn:
        assert trace_store.count_spans(conn, tenant="acme", trace_id=TRACE) == 1

    record = {
        "timeUnixNano": _nanos(now_ms() - 2_000),
        "severityNumber": 17,
        "body": {"stringValue": "order 12 failed: deadlock detected"},
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "attributes": [_attr("correlation.id", "flow-9")],
    }
    quiet = {**record, "severityNumber": 9, "body": {"stringValue": "all good"}}
    resource = {"attributes": [_attr("service.name", "cart"), _attr("deployment.environment", "staging")]}
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record, quiet]}]}]}
    r = api.post("/v1/logs", orjson.dumps(logs), JSON)
    assert r.status_code == 200 and r.json() == {}, r.text
    logged = [e for e in api.events().values() if e["id"].startswith("otlp-log-")]
    assert len(logged) == 1
    assert logged[0]["error_message"] == "order 12 failed: deadlock detected"
    assert (logged[0]["trace_id"], logged[0]["span_id"]) == (TRACE, "eee19b7ec3c1b174")
    assert (logged[0]["correlation_id"], logged[0]["environment"]) == ("flow-9", "staging")
    # The same record again (an exporter's retry): stored once.
    assert api.post("/v1/logs", orjson.dumps(logs), JSON).status_code == 200
    assert len([e for e in api.events() if e.startswith("otlp-log-")]) == 1


def test_gzip_bodies_in_both_encodings(api: Api) -> None:
    body = json_traces(json_span("0000000000000001", attributes=[_attr("http.response.status_code", 200)]))
    r = api.post("/v1/traces", gzip.compress(body), JSON, **{"content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    span = pb_span(2, kind=Span.SPAN_KIND_SERVER)
    r = api.post("/v1/traces", gzip.compress(pb_traces(span)), PROTOBUF, **{"content-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(r.content) == ExportTraceServiceResponse()
    assert {f"otlp-{TRACE}-0000000000000001", f"otlp-{TRACE}-0000000000000002"} <= set(api.events())


def test_partial_success_counts_rejected_spans_and_stores_the_rest(api: Api) -> None:
    good = pb_span(1, kind=Span.SPAN_KIND_SERVER)
    future = pb_span(2, kind=Span.SPAN_KIND_SERVER, start_ms=now_ms() + 5 * 86_400_000)  # beyond now + 1 day
    bad_id = pb_span(3, kind=Span.SPAN_KIND_SERVER)
    bad_id.span_id = b"\x01\x02"
    r = api.post("/v1/traces", pb_traces(good, future, bad_id), PROTOBUF)
    assert r.status_code == 200, r.content
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 2
    assert "invalid_timestamp" in answer.partial_success.error_message
    assert "8-byte span_id" in answer.partial_success.error_message
    assert list(api.events()) == [f"otlp-{TRACE}-0000000000000001"]
    # In JSON the same counts, as the proto3 JSON mapping writes them.
    r = api.post("/v1/traces", json_traces(json_span("00000000000000ff", spanId="abc")), JSON)
    assert r.status_code == 400  # an odd-length hex id does not decode: the whole body is refused
    late = json_span("00000000000000fe", endTimeUnixNano=_nanos(now_ms() + 3 * 86_400_000))
    r = api.post("/v1/traces", json_traces(late), JSON)
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedSpans"] == "1", r.text
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": 21, "traceId": "ab" * 40}]}]}]}
    r = api.post("/v1/logs", orjson.dumps(logs), JSON)
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedLogRecords"] == "1", r.text
    r = api.post("/v1/logs", orjson.dumps(logs), PROTOBUF)
    assert r.status_code == 400  # JSON sent as protobuf


def test_evidence_is_capped_per_trace(api: Api) -> None:
    root = pb_span(100, kind=Span.SPAN_KIND_SERVER, error="failed")
    calls = [pb_span(i, parent=100, error=f"call {i} failed") for i in range(1, 6)]
    fine = pb_span(50, parent=100)  # succeeded: not evidence
    r = api.post("/v1/traces", pb_traces(root, *calls, fine), PROTOBUF)
    assert r.status_code == 200 and ExportTraceServiceResponse.FromString(r.content) == ExportTraceServiceResponse()
    r = api.post("/v1/traces", pb_traces(pb_span(9, parent=100, error="later")), PROTOBUF)
    assert r.status_code == 200
    with api.services.engine.connect() as conn:
        spans, _ = trace_store.list_spans(conn, tenant="acme", trace_ids=[TRACE], limit=100)
    assert len(spans) == 3 and all(s["status"] == "error" for s in spans)
    assert len(api.events()) == 1  # evidence is never an outcome of its own


def test_refusals_are_statuses_in_the_request_encoding_never_500(db_url: str) -> None:
    for api in _make(db_url, max_body_bytes=2048):
        problems: list[str | None] = []
        checks: list[tuple[Response, int, str, bool]] = [
            (api.post("/v1/traces", b"\xff\xff\xff\xff garbage", PROTOBUF), 400, "invalid_body", True),
            (api.post("/v1/logs", b"\x0a\x05\x0a", PROTOBUF), 400, "invalid_body", True),
            (api.post("/v1/traces", b'{"resourceSpans": [', JSON), 400, "invalid_json", False),
            (api.post("/v1/traces", b'{"resourceSpans": {"no": "list"}}', JSON), 400, "invalid_body", False),
            (api.post("/v1/logs", b"[1, 2]", JSON), 400, "invalid_body", False),
            (api.post("/v1/traces", b"not gzip", PROTOBUF, **{"content-encoding": "gzip"}), 400, "invalid_body", True),
            (api.post("/v1/traces", b"x" * 4096, PROTOBUF), 413, "payload_too_large", True),
            (
                api.post("/v1/traces", gzip.compress(b"\x00" * 100_000), PROTOBUF, **{"content-encoding": "gzip"}),
                413,
                "payload_too_large",
                True,
            ),
            (
                api.post("/v1/traces", b"{}", JSON, **{"content-encoding": "br"}),
                415,
                "unsupported_content_encoding",
                False,
            ),
            (api.post("/v1/traces", b"{}", {"content-type": "text/plain"}), 415, "unsupported_media_type", False),
            (
                api.post("/v1/logs", b"{}", {"content-type": "application/x-ndjson"}),
                415,
                "unsupported_media_type",
                False,
            ),
            (api.client.post("/v1/traces", content=b"", headers=PROTOBUF), 401, "unauthorized", True),
            (api.client.post("/v1/logs", content=b"{}", headers={**JSON, **api.read}), 403, "forbidden", False),
            (api.client.get("/v1/traces", headers=api.ingest), 405, "method_not_allowed", False),
            (api.post("/v1/traces?verbose=1", b"{}", JSON), 400, "invalid_request", False),
            (api.post("/v1/metrics", b"", PROTOBUF), 404, "otlp_signal_not_received", True),
            (api.post("/v1/metrics", b"{}", JSON), 404, "otlp_signal_not_received", False),
            # One whitespace-valued byte is a truncated protobuf field, not an empty request.
            (api.post("/v1/traces", b"\x0a", PROTOBUF), 400, "invalid_body", True),
        ]
        for r, status, reason, protobuf in checks:
            problem = status_problem(r, status, reason, protobuf=protobuf)
            problems.append(f"{r.request.method} {r.request.url} {problem}" if problem else None)
        assert not [p for p in problems if p], "\n".join(p for p in problems if p)
        assert checks[13][0].headers["allow"] == "POST"
        # A refused type names what these paths read: OTLP's two encodings, not the native NDJSON types.
        assert "application/x-protobuf, application/json" in checks[9][0].json()["message"], checks[9][0].text
        assert "ndjson" not in checks[9][0].text
        assert api.events() == {}


def test_a_busy_store_answers_503_with_retry_after(db_url: str) -> None:
    for api in _make(db_url, database_lock_timeout_s=0.5, database_statement_timeout_s=1.0, sqlite_busy_timeout_s=0.5):
        holder, _word = _hold_write_lock(db_url)
        try:
            r = api.post("/v1/traces", pb_traces(pb_span(1, kind=Span.SPAN_KIND_SERVER)), PROTOBUF)
        finally:
            holder.close()  # type: ignore[attr-defined]
        assert status_problem(r, 503, "database_unavailable", protobuf=True) is None, r.content
        assert r.headers["retry-after"] == "5"
        r = api.post("/v1/traces", pb_traces(pb_span(1, kind=Span.SPAN_KIND_SERVER)), PROTOBUF)
        assert r.status_code == 200 and len(api.events()) == 1


def test_beyond_the_in_flight_cap_answers_429_at_once(sqlite_url: str) -> None:
    services = make_services(sqlite_url, start_jobs=False, otlp_max_inflight=1, request_body_timeout_s=20)
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant="acme", scopes=["ingest"])
    app = create_app(services)
    with LiveServer(app) as server:
        # One export holds the only place: its body never finishes arriving.
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = (
            f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {secret}\r\n"
            "Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n"
        )
        stalled.sendall(head.encode() + b"\x0a")
        deadline = time.monotonic() + 20
        while getattr(getattr(app.state, "otlp_in_flight", None), "count", 0) != 1:
            assert time.monotonic() < deadline, "the stalled export never reached the receiver"
            time.sleep(0.02)
        with httpx.Client(base_url=server.url, headers={"x-api-key": secret}, timeout=10) as client:
            started = time.monotonic()
            r = client.post("/v1/traces", content=pb_traces(), headers=PROTOBUF)
            assert status_problem(r, 429, "receiver_busy", protobuf=True) is None, r.content  # type: ignore[arg-type]
            assert r.headers["retry-after"] == "1" and time.monotonic() - started < 2
            stalled.close()
            deadline = time.monotonic() + 10
            while client.post("/v1/traces", content=pb_traces(), headers=PROTOBUF).status_code == 429:
                assert time.monotonic() < deadline, "the place was never given back"
                time.sleep(0.05)
    services.engine.dispose()


def test_logs_answer_in_protobuf_for_protobuf(api: Api) -> None:
    r = api.post("/v1/logs", b"", PROTOBUF)
    assert r.status_code == 200 and ExportLogsServiceResponse.FromString(r.content) == ExportLogsServiceResponse()
