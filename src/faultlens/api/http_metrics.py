"""HTTP request metrics: requests by route template, method and status class, and their latency (pure ASGI).

The route is the template the router matched (`/api/v1/events/{event_id}`), read from the scope after the app
ran; a request no route matched counts under "<unmatched>". Never the raw path: ids in paths would make one
series per request.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.metric_dictionary import OTHER, load

UNMATCHED = "<unmatched>"
_METHODS = frozenset(load().labels["method"].values or ())


def route_template(scope: Scope) -> str:
    """The matched route's path template, or UNMATCHED (the router sets scope["route"] when a route matched)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class HttpMetrics:
    """Counts every answer under its route template, method and status class and observes its duration."""

    def __init__(self, app: ASGIApp, *, requests: Any, seconds: Any) -> None:
        self.app = app
        self.requests = requests
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            method = scope.get("method", "")
            method = method if method in _METHODS else OTHER  # a verb we do not serve: one series, not many
            route = route_template(scope)
            self.requests.labels(route, method, f"{min(max(status // 100, 1), 5)}xx").inc()
            self.seconds.labels(route, method).observe(time.perf_counter() - started)
