"""The ids of every request: request id, correlation id and W3C trace context, bound for its logs and echoed back.

Pure ASGI middleware, just inside the access log: it reads `X-Request-ID`, `X-Correlation-ID` and `traceparent`,
keeps them in the scope's state (the error body reads them there) and in `request_context` (every log line of the
request carries them), puts them on the server span when tracing is on, and answers them in the response headers.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens import request_context
from faultlens.api.guard import request_id_for

if TYPE_CHECKING:
    from faultlens.tracing import Tracing

MAX_CORRELATION_ID = 128
# What deps.py records once the caller's key is known.
_TENANT_STATE = "faultlens_tenant"
_REQUEST_ID_HEADER_ATTR = "http.request.header.x-request-id"


def correlation_id_for(headers: Headers) -> str:
    """The caller's X-Correlation-ID when it is 1-128 visible ASCII characters, else a fresh one.

    A request that comes without one starts a chain: the answer names the new id, for the caller to pass on.
    """
    incoming = headers.get("x-correlation-id", "")
    if 0 < len(incoming) <= MAX_CORRELATION_ID and all("!" <= c <= "~" for c in incoming):
        return incoming
    return uuid.uuid4().hex


def _traceparent_of(parent: tuple[str, str], raw: str) -> str:
    """The caller's traceparent rebuilt from its parsed parts (never echoed as sent); flags kept when valid."""
    flags = raw.strip().lower().split("-")[3][:2]
    if len(flags) != 2 or any(c not in "0123456789abcdef" for c in flags):
        flags = "00"
    return f"00-{parent[0]}-{parent[1]}-{flags}"


class RequestIds:
    """Binds a request's ids for its duration and echoes them (X-Request-ID, X-Correlation-ID, traceparent)."""

    def __init__(self, app: ASGIApp, *, tracing: Tracing | None = None) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.tracing is not None and scope.get("path") in self.tracing.untraced_paths:
            with self.tracing.untraced():
                await self._call(scope, receive, send)
            return
        await self._call(scope, receive, send)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        request_id = request_id_for(headers)
        correlation_id = correlation_id_for(headers)
        raw_parent = headers.get("traceparent")
        parent = request_context.parse_traceparent(raw_parent)
        span = self.tracing.server_span() if self.tracing is not None else None
        fields: dict[str, Any] = {"request_id": request_id, "correlation_id": correlation_id}
        if self.tracing is not None and span is not None:
            # request_id also under the header's semantic-convention name, which OTLP receivers (faultlens') read.
            span.set_attributes(
                {"correlation_id": correlation_id, "request_id": request_id, _REQUEST_ID_HEADER_ATTR: [request_id]}
            )
            # Log lines take trace_id and span_id from the active span (tracing's provider) when they are written.
            trace_id: str | None = self.tracing.trace_id_of(span)
            answer_parent: str | None = self.tracing.traceparent(span)
        elif parent is not None:
            # Not traced here: the caller's trace goes on, and the answer names the caller's span as given.
            trace_id, answer_parent = parent[0], _traceparent_of(parent, raw_parent or "")
            fields.update(trace_id=parent[0], span_id=parent[1])
        else:
            trace_id = answer_parent = None
        state = scope.setdefault("state", {})
        state.update(request_id=request_id, correlation_id=correlation_id, trace_id=trace_id)

        async def send_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                out["X-Correlation-ID"] = correlation_id
                if answer_parent is not None:
                    out["traceparent"] = answer_parent
                tenant = state.get(_TENANT_STATE)
                if span is not None and isinstance(tenant, str):
                    span.set_attribute("tenant_id", tenant)
            await send(message)

        token = request_context.bind(**fields)
        try:
            await self.app(scope, receive, send_ids)
        finally:
            request_context.reset(token)
