"""OTLP ResourceSpans -> raw outcome events (SERVER, CONSUMER and root spans) and evidence span rows.

A SERVER or CONSUMER span, or a span without a parent, is one outcome; a failed CLIENT, INTERNAL or PRODUCER span
under it is the trace's evidence; a successful one is dropped. The mapping is documented in docs/otel.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from faultlens.classify.redact import redact
from faultlens.ingest import FIELD_LIMITS, truncate
from faultlens.otlp.values import (
    UNKNOWN_SERVICE,
    OtlpConfig,
    Scalar,
    attribute_map,
    first_text,
    nanos_to_ms,
    short_id,
    to_text,
)

_KIND_NAMES = {
    Span.SPAN_KIND_UNSPECIFIED: "unspecified",
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
_STATUS_NAMES = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}
# The outcome's item type by span kind; any other root span (a script, a cron run, a worker loop) is a job.
_ITEM_TYPES = {Span.SPAN_KIND_SERVER: "request", Span.SPAN_KIND_CONSUMER: "message"}
_ROOT_ITEM_TYPE = "job"
# Current and older HTTP semantic conventions.
HTTP_STATUS_ATTRS = ("http.response.status_code", "http.status_code")
HTTP_METHOD_ATTRS = ("http.request.method", "http.method")
CORRELATION_ATTRS = ("correlation_id", "correlation.id")
REQUEST_ID_ATTR = "http.request.header.x-request-id"
BAGGAGE_ATTR = "http.request.header.baggage"
_CORRELATION_SOURCES = (*CORRELATION_ATTRS, BAGGAGE_ATTR)
# Words in a status message or exception that say the caller went away (or cancelled): the event is then
# `cancelled` and the shipped rules decide its class (client_abort unless the text says otherwise).
_ABORT_MARKERS = ("http.disconnect", "clientdisconnect", "client disconnected", "cancelled", "canceled")
_CLIENT_CLOSED = 499
_GRPC_CANCELLED = 1


@dataclass
class ResourceContext:
    """What every span or log record of one resource shares, read once per resource."""

    attrs: dict[str, AnyValue]
    source: str
    release: str | None
    environment: str | None
    picked: dict[str, Scalar]  # the resource's allow-listed attributes (a span's own win over them)
    correlation_id: str | None

    @classmethod
    def of(cls, attrs: dict[str, AnyValue], config: OtlpConfig) -> ResourceContext:
        source = to_text(attrs.get("service.name")) or UNKNOWN_SERVICE
        environment = first_text(("deployment.environment.name", "deployment.environment"), attrs)
        release = to_text(attrs.get("service.version"))
        return cls(attrs, source, release, environment, config.pick(attrs), correlation_of(attrs))

    def attributes(self, attrs: Mapping[str, AnyValue], config: OtlpConfig) -> dict[str, Scalar]:
        """A span's or record's allow-listed attributes: its own, then the resource's."""
        own = config.pick(attrs)
        return {**self.picked, **own} if self.picked else own

    def correlation(self, attrs: Mapping[str, AnyValue]) -> str | None:
        return correlation_of(attrs) or self.correlation_id

    def shared_fields(self, attrs: Mapping[str, AnyValue], config: OtlpConfig) -> dict[str, Any]:
        """The event fields a span and a log record take alike from their own attributes and the resource."""
        return {
            "correlation_id": self.correlation(attrs),
            "request_id": short_id(to_text(attrs.get(REQUEST_ID_ATTR)), "request_id"),
            "release": self.release,
            "environment": self.environment,
            "attributes": self.attributes(attrs, config) or None,
        }


@dataclass
class SpanBatch:
    """One export request's spans, mapped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why each refused span was refused
    dropped: int = 0  # successful CLIENT/INTERNAL/PRODUCER spans: nothing to keep, not an error


def http_status_of(attrs: Mapping[str, AnyValue]) -> int | None:
    for name in HTTP_STATUS_ATTRS:
        value = attrs.get(name)
        if value is None:
            continue
        kind = value.WhichOneof("value")
        number: Any = value.int_value if kind == "int_value" else value.string_value if kind == "string_value" else None
        try:
            code = int(number)
        except (TypeError, ValueError):
            continue
        if 100 <= code <= 599:
            return code
    return None


def correlation_of(*maps: Mapping[str, AnyValue]) -> str | None:
    if not any(name in attrs for attrs in maps for name in _CORRELATION_SOURCES):
        return None
    found = first_text(CORRELATION_ATTRS, *maps)
    if found is None:
        # W3C baggage captured as a request header: "correlation_id=abc,other=1;prop".
        for entry in (to_text(maps[0].get(BAGGAGE_ATTR)) or "").split(","):
            name, _, value = entry.split(";", 1)[0].partition("=")
            if name.strip() in CORRELATION_ATTRS and value.strip():
                found = value.strip()
                break
    return short_id(found, "correlation_id")


def exception_text(attrs: Mapping[str, AnyValue]) -> str | None:
    """`type: message` and the stack trace of exception.* attributes (a span's exception event, a log record)."""
    kind = to_text(attrs.get("exception.type"))
    message = to_text(attrs.get("exception.message"))
    stack = to_text(attrs.get("exception.stacktrace"))
    head = ": ".join(p for p in (kind, message) if p)
    text = "\n".join(p for p in (head, stack) if p)
    return text or None


def _last_exception(span: Span) -> dict[str, AnyValue] | None:
    for event in reversed(span.events):
        if event.name == "exception":
            return attribute_map(event.attributes)
    return None


def _aborted(
    span: Span, attrs: Mapping[str, AnyValue], exception: Mapping[str, AnyValue] | None, code: int | None
) -> bool:
    if code == _CLIENT_CLOSED:
        return True
    grpc = attrs.get("rpc.grpc.status_code")
    if grpc is not None and grpc.WhichOneof("value") == "int_value" and grpc.int_value == _GRPC_CANCELLED:
        return True
    texts = [span.status.message]
    if exception is not None:
        texts += [to_text(exception.get("exception.type")) or "", to_text(exception.get("exception.message")) or ""]
    lowered = " ".join(texts).lower()
    return any(marker in lowered for marker in _ABORT_MARKERS)


def outcome(
    span: Span, attrs: Mapping[str, AnyValue], exception: Mapping[str, AnyValue] | None
) -> tuple[str, int | None]:
    """The span's faultlens status and HTTP status (DECISIONS: the HTTP status when there is one, else the
    span status; a caller that went away is `cancelled` with 499 on HTTP spans)."""
    code = http_status_of(attrs)
    if _aborted(span, attrs, exception, code):
        is_http = code is not None or any(name in attrs for name in HTTP_METHOD_ATTRS)
        return "cancelled", _CLIENT_CLOSED if is_http else None
    if code is not None:
        return ("failure" if code >= 400 else "success"), code
    return ("failure" if span.status.code == Status.STATUS_CODE_ERROR else "success"), None


def _error_message(span: Span, exception: Mapping[str, AnyValue] | None) -> str | None:
    text = exception_text(exception) if exception is not None else None
    return text or span.status.message or None


def _duration_ms(span: Span) -> float | None:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    return (end - start) / 1_000_000 if start and end >= start else None


def span_event_id(trace_hex: str, span_hex: str) -> str:
    """The event id of a span's outcome: a re-delivered span (exporter retry) is the same event."""
    return f"otlp-{trace_hex}-{span_hex}"


def _event(span: Span, res: ResourceContext, config: OtlpConfig, trace_hex: str, span_hex: str) -> dict[str, Any]:
    attrs = attribute_map(span.attributes)
    exception = _last_exception(span)
    status, http_status = outcome(span, attrs, exception)
    start_ms, end_ms = nanos_to_ms(span.start_time_unix_nano), nanos_to_ms(span.end_time_unix_nano)
    raw: dict[str, Any] = {
        "id": span_event_id(trace_hex, span_hex),
        "source": res.source,
        "operation": to_text(attrs.get("http.route")) or span.name or None,
        "item_type": _ITEM_TYPES.get(span.kind, _ROOT_ITEM_TYPE),
        "status": status,
        "occurred_at": end_ms or start_ms,
        "started_at": start_ms,
        "duration_ms": _duration_ms(span),
        "http_status": http_status,
        "error_message": _error_message(span, exception) if status != "success" else None,
        "trace_id": trace_hex,
        "span_id": span_hex,
        **res.shared_fields(attrs, config),
    }
    return {k: v for k, v in raw.items() if v is not None}


def _evidence(
    span: Span, res: ResourceContext, config: OtlpConfig, trace_hex: str, span_hex: str
) -> dict[str, Any] | None:
    attrs = attribute_map(span.attributes)
    exception = _last_exception(span)
    status, http_status = outcome(span, attrs, exception)
    if status == "success":
        return None
    start_ms, end_ms = nanos_to_ms(span.start_time_unix_nano), nanos_to_ms(span.end_time_unix_nano)
    message = _error_message(span, exception)
    if message:
        message = truncate(redact(message), config.max_message_chars)
    return {
        "trace_id": trace_hex,
        "span_id": span_hex,
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": truncate(redact(span.name), 256) if span.name else "",
        "kind": _KIND_NAMES.get(span.kind, "unspecified"),
        "source": redact(res.source),
        # A span with only one of its times is a point in time (the rejected spans have neither).
        "started_at": start_ms or end_ms,
        "ended_at": end_ms or start_ms,
        "duration_ms": _duration_ms(span) or 0.0,
        "status": _STATUS_NAMES.get(span.status.code, "unset"),
        "http_status": http_status,
        "error_message": message or None,
        "attributes": config.stored_attributes(res.attributes(attrs, config)),
    }


_NO_TRACE = bytes(16)
_NO_SPAN = bytes(8)


def _ids(span: Span) -> tuple[str, str] | None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or len(span_id) != 8 or trace_id == _NO_TRACE or span_id == _NO_SPAN:
        return None
    return trace_id.hex(), span_id.hex()


def map_resource_spans(resource_spans: ResourceSpans, config: OtlpConfig, batch: SpanBatch) -> None:
    """Add one resource's spans to `batch`."""
    res = ResourceContext.of(attribute_map(resource_spans.resource.attributes), config)
    if len(res.source) > FIELD_LIMITS["source"]:
        count = sum(len(s.spans) for s in resource_spans.scope_spans)
        batch.rejected += [f"service.name is longer than {FIELD_LIMITS['source']} characters"] * count
        return
    for scope_spans in resource_spans.scope_spans:
        for span in scope_spans.spans:
            ids = _ids(span)
            if ids is None:
                batch.rejected.append("a span needs a 16-byte trace_id and an 8-byte span_id, not all zero")
                continue
            if not span.start_time_unix_nano and not span.end_time_unix_nano:
                batch.rejected.append(f"span {ids[1]} has neither a start nor an end time")
                continue
            is_outcome = span.kind in _ITEM_TYPES or not span.parent_span_id
            if is_outcome:
                batch.events.append(_event(span, res, config, *ids))
                continue
            row = _evidence(span, res, config, *ids)
            if row is None:
                batch.dropped += 1
            else:
                batch.evidence.append(row)


def map_spans(resource_spans: list[ResourceSpans] | Any, config: OtlpConfig) -> SpanBatch:
    batch = SpanBatch()
    for item in resource_spans:
        map_resource_spans(item, config, batch)
    return batch
