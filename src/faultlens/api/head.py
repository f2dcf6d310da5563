"""HEAD wherever GET is served (RFC 9110 9.3.2): the GET route answers, its headers go out, its body does not."""

from __future__ import annotations

from collections.abc import Collection

import orjson
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def with_head(methods: list[str]) -> list[str]:
    """An Allow list that names HEAD right after GET when GET is in it."""
    if "GET" not in methods or "HEAD" in methods:
        return methods
    at = methods.index("GET") + 1
    return [*methods[:at], "HEAD", *methods[at:]]


class HeadAsGet:
    """Pure ASGI middleware: a HEAD request on a path that only a GET route matches runs as GET, answering its
    status and headers (Content-Length included) with no body; a 405's Allow names HEAD beside GET.

    `contract_paths` keep their own documented method table (the codebase-embedder contract answers HEAD 405).
    """

    def __init__(self, app: ASGIApp, *, routes_of: ASGIApp, contract_paths: Collection[str] = ()) -> None:
        self.app = app
        self.routes_of = routes_of  # the FastAPI app, whose router's routes are read at request time
        self.contract_paths = frozenset(contract_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.contract_paths:
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "HEAD":
            if self._runs_as_get(scope):
                scope = {**scope, "method": "GET"}
            await self.app(scope, receive, _without_body(send))
            return
        await self.app(scope, receive, _allow_names_head(send))

    def _runs_as_get(self, scope: Scope) -> bool:
        routes = getattr(getattr(self.routes_of, "router", None), "routes", ())
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            return False  # a route answers HEAD itself (static files)
        as_get = {**scope, "method": "GET"}
        return any(route.matches(as_get)[0] is Match.FULL for route in routes)


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return send_headers_only


def _allow_names_head(send: Send) -> Send:
    """On a 405 answer: Allow (and the error body's details.allowed_methods) list HEAD beside GET."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def patched(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = MutableHeaders(scope=message)
            allow = [m.strip() for m in headers.get("allow", "").split(",") if m.strip()]
            if allow != with_head(allow):
                headers["Allow"] = ", ".join(with_head(allow))
                start = message  # held until the body is rewritten
                return
        if start is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _body_with_head(b"".join(chunks))
            MutableHeaders(scope=start)["Content-Length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await send(message)

    return patched


def _body_with_head(body: bytes) -> bytes:
    try:
        doc = orjson.loads(body)
        details = doc["error"]["details"]
        details["allowed_methods"] = with_head(list(details["allowed_methods"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body
    return orjson.dumps(doc)
