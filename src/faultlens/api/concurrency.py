"""The per-replica request cap: past Settings.max_concurrent_requests, a request answers 503 server_busy at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from faultlens.api.errors import error_response, request_id_of
from faultlens.api.guard import Envelope, ErrorBody

SERVER_BUSY = "server_busy"
# Probes and scrapes are never refused: a busy replica must still look alive and be seen busy on /metrics.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ConcurrencyLimit:
    """Pure ASGI middleware: admits at most `limit` HTTP requests at once (0: no limit).

    One more is answered 503 `server_busy` with `Retry-After` before its body is read, instead of waiting in an
    unbounded queue for a worker thread or a database connection; the load balancer or client retries elsewhere
    or later. A request holds its place until its answer has been sent (a streamed answer: until its last chunk).
    One event loop runs every request of the app, so a plain counter is exact.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        retry_after_s: int,
        counter: Counter | None = None,
        envelopes: Mapping[str, Envelope] | None = None,
        error_bodies: Mapping[str, ErrorBody] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.counter = counter
        self.envelopes = dict(envelopes or {})
        self.error_bodies = dict(error_bodies or {})
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            if self.counter is not None:
                self.counter.inc()
            await self.refuse(scope)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def refuse(self, scope: Scope) -> Response:
        """The 503 in the path's contract: the one error body, or the OTLP / codebase-embedder shape."""
        request = Request(scope)
        message = f"this server is handling {self.limit} requests already; retry after {self.retry_after_s} s"
        details: dict[str, Any] = {"max_concurrent_requests": self.limit, "retry_after_s": self.retry_after_s}
        headers = {"Retry-After": str(self.retry_after_s)}
        path = scope.get("path", "")
        for prefix, body in self.error_bodies.items():
            if path.startswith(prefix):
                return body(request, 503, SERVER_BUSY, message, details, headers=headers)
        for prefix, envelope in self.envelopes.items():
            if path.startswith(prefix):
                headers["X-Request-ID"] = request_id_of(request)
                return envelope(503, message, None, status=503, headers=headers)
        return error_response(request, 503, SERVER_BUSY, message, details, headers=headers)
