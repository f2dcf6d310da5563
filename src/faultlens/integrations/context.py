"""The trace context of the work in progress (a contextvar), read from and written to W3C / x-request-id headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from urllib.parse import unquote

# version-traceid-parentid-flags (W3C Trace Context); all-zero ids are invalid.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# Ids are stored up to 128 characters; a longer or control-character header value is not an id worth keeping.
_ID_CHARS = re.compile(r"[\x21-\x7e]{1,128}")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Who this work belongs to: its trace, its own span, its caller's span and the request/correlation ids."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    sampled: bool = True

    def as_event_fields(self) -> dict[str, str]:
        """The fields a faultlens event carries (absent ids left out)."""
        fields = {"trace_id": self.trace_id, "span_id": self.span_id}
        if self.request_id:
            fields["request_id"] = self.request_id
        if self.correlation_id:
            fields["correlation_id"] = self.correlation_id
        return fields

    def headers(self) -> dict[str, str]:
        """Headers (or task/job metadata) that carry this context to the next hop, this span as its parent."""
        out = {"traceparent": f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"}
        if self.request_id:
            out["x-request-id"] = self.request_id
        if self.correlation_id:
            out["x-correlation-id"] = self.correlation_id
        return out


_current: ContextVar[TraceContext | None] = ContextVar("faultlens_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the running request, task or job; None outside one."""
    return _current.get()


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def parse_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    """(trace_id, parent span id, sampled) from a W3C traceparent header; None when absent or malformed."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def clean_id(value: str | None) -> str | None:
    """A header value usable as an id (printable ASCII, at most 128 characters), else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _ID_CHARS.fullmatch(value) else None


def baggage_value(baggage: str | None, key: str) -> str | None:
    """One member of a W3C baggage header (`k1=v1;prop,k2=v2`), percent-decoded."""
    if not baggage:
        return None
    for member in baggage.split(",")[:64]:
        name, sep, rest = member.partition("=")
        if sep and name.strip() == key:
            return clean_id(unquote(rest.split(";", 1)[0]))
    return None


def from_headers(headers: Mapping[str, str]) -> TraceContext:
    """A new span of the caller's trace (or of a new trace) from lower-cased incoming headers."""
    parent = parse_traceparent(headers.get("traceparent"))
    correlation = clean_id(headers.get("x-correlation-id")) or baggage_value(headers.get("baggage"), "correlation_id")
    request_id = clean_id(headers.get("x-request-id"))
    if parent is None:
        return TraceContext(new_trace_id(), new_span_id(), None, request_id, correlation)
    trace_id, parent_span, sampled = parent
    return TraceContext(trace_id, new_span_id(), parent_span, request_id, correlation, sampled)


def child_of(parent: TraceContext | None) -> TraceContext:
    """A new span under `parent` (same trace and ids), or the root span of a new trace."""
    if parent is None:
        return TraceContext(new_trace_id(), new_span_id())
    return replace(parent, span_id=new_span_id(), parent_span_id=parent.span_id)


def set_trace(ctx: TraceContext | None) -> Token[TraceContext | None]:
    return _current.set(ctx)


def reset_trace(token: Token[TraceContext | None]) -> None:
    _current.reset(token)


@contextmanager
def trace_scope(ctx: TraceContext | None) -> Iterator[TraceContext | None]:
    """Make `ctx` the current trace context inside the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
