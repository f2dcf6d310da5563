"""faultlens' access log: one `faultlens.access` line per request, its path without the query string."""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens import request_context

log = logging.getLogger("faultlens.access")
# Characters a path keeps in the log; anything else (control characters, spaces, newlines) is percent-encoded,
# so a request cannot forge log lines.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_MAX_PATH = 1000


class AccessLog:
    """Pure ASGI middleware, outermost: client, method, path (no query string: its values may be secrets), status,
    duration in ms and request id, at INFO, so FAULTLENS_LOG_LEVEL governs it (uvicorn's own access log is off);
    method, path, status, duration_ms and the request's context are fields of its JSON line too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        request_id = "-"
        # The request's context as the app saw it when it answered (tenant, error code, ...): the app's middleware
        # and dependencies bind them inside, where this middleware's own context does not see them.
        context: dict[str, str | None] = {"error_code": "internal_error"}

        async def observe(message: Message) -> None:
            nonlocal status, request_id, context
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = Headers(raw=message.get("headers", [])).get("x-request-id", "-")
                context = request_context.current().as_dict()
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            client = scope.get("client")
            method = scope.get("method", "-")
            path = quote(scope.get("path", ""), safe=_PATH_SAFE)[:_MAX_PATH]
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            rid = quote(request_id, safe=_PATH_SAFE)[:128]
            fields = {k: v for k, v in context.items() if v is not None}
            # Set by the dependencies and error handlers (api/deps.py, api/errors.py) for lines like this one,
            # written outside the task that bound them (Starlette runs `@app.middleware` apps in a task of their own).
            state = scope.get("state") or {}
            for name, key in (("tenant_id", "faultlens_tenant"), ("error_code", "error_code")):
                if isinstance(state.get(key), str):
                    fields[name] = state[key]
            if rid != "-":
                fields["request_id"] = rid
            log.info(
                "%s %s %s %d %.1fms request_id=%s",
                client[0] if client else "-",
                method,
                path,
                status,
                duration_ms,
                rid,
                extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms, **fields},
            )
