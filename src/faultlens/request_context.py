"""What the current request or background step is: the ids every log line, span and error body carries.

One context per request (set by the API's request middleware) or background step (set by the job runner and the
task syncs), kept in a contextvar so threads started with `contextvars.copy_context()` and `run_in_threadpool`
see it. trace_id and span_id come from the active span when tracing is on (a provider registered by the tracing
setup), else from the request's W3C `traceparent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from typing import Any

FIELDS = ("trace_id", "span_id", "correlation_id", "request_id", "tenant_id", "job_id", "error_code")


@dataclass(frozen=True, slots=True)
class Context:
    trace_id: str | None = None
    span_id: str | None = None
    correlation_id: str | None = None
    request_id: str | None = None
    tenant_id: str | None = None
    job_id: str | None = None
    error_code: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in FIELDS}


_EMPTY = Context()
_current: ContextVar[Context] = ContextVar("faultlens_request_context", default=_EMPTY)
# Set by the tracing setup when tracing is on: the active span's (trace_id, span_id) as hex, or None.
_span_ids: Callable[[], tuple[str, str] | None] | None = None


def set_span_ids_provider(provider: Callable[[], tuple[str, str] | None] | None) -> None:
    global _span_ids
    _span_ids = provider


def current() -> Context:
    """The current context, with the active span's ids when tracing is on."""
    ctx = _current.get()
    provider = _span_ids
    if provider is not None:
        ids = provider()
        if ids is not None and (ids[0], ids[1]) != (ctx.trace_id, ctx.span_id):
            return replace(ctx, trace_id=ids[0], span_id=ids[1])
    return ctx


def bind(**fields: Any) -> Token[Context]:
    """Add or replace fields of the current context; `reset(token)` restores the previous one."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown context fields: {sorted(unknown)}")
    return _current.set(replace(_current.get(), **fields))


def reset(token: Token[Context]) -> None:
    _current.reset(token)


@contextmanager
def scope(**fields: Any) -> Iterator[Context]:
    """`with scope(job_id=...):` a context for one block."""
    token = bind(**fields)
    try:
        yield _current.get()
    finally:
        reset(token)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace_id, parent span id) of a W3C traceparent header (version 00 layout), None when it is not one."""
    if not value:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
        return None
    trace_id, span_id = parts[1], parts[2]
    if len(trace_id) != 32 or len(span_id) != 16 or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    if not all(c in "0123456789abcdef" for c in trace_id + span_id):
        return None
    return trace_id, span_id
