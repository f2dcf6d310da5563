"""faultlens' access log: one `faultlens.access` line per request, its path without the query string."""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("faultlens.access")
# Characters a path keeps in the log; anything else (control characters, spaces, newlines) is percent-encoded,
# so a request cannot forge log lines.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_MAX_PATH = 1000


class AccessLog:
    """Pure ASGI middleware, outermost: client, method, path (no query string: its values may be secrets), status,
    duration in ms and request id, at INFO, so FAULTLENS_LOG_LEVEL governs it (uvicorn's own access log is off)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        request_id = "-"

        async def observe(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = Headers(raw=message.get("headers", [])).get("x-request-id", "-")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            client = scope.get("client")
            log.info(
                "%s %s %s %d %.1fms request_id=%s",
                client[0] if client else "-",
                scope.get("method", "-"),
                quote(scope.get("path", ""), safe=_PATH_SAFE)[:_MAX_PATH],
                status,
                (time.perf_counter() - started) * 1000,
                quote(request_id, safe=_PATH_SAFE)[:128],
            )
