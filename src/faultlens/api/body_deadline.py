"""The request-body deadline: a sender slower than Settings.request_body_timeout_s gets a 408, not a worker."""

from __future__ import annotations

import asyncio
import logging
import uuid

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.errors import RequestBodyTimeout

log = logging.getLogger("faultlens.api")


class BodyDeadline:
    """ASGI middleware: the whole body must arrive within `timeout_s` of the request's start.

    When it does not, the application sees the client as gone (it stops reading), whatever it would answer is
    dropped, and the caller gets 408 `request_body_read_timeout` in the one error body; the connection closes.
    Only reads of the body are bounded: once the last chunk arrived, waits for a disconnect are left alone.
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float, counter: Counter | None = None) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.timeout_s <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False
        timed_out = False
        response_started = False

        async def bounded_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done or timed_out:
                return {"type": "http.disconnect"} if timed_out else await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out and not response_started:
                return  # the 408 below answers instead
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            if not timed_out or response_started:
                raise
            log.debug("request abandoned after its body deadline", exc_info=True)
        if timed_out and not response_started:
            await self._answer_408(scope, send)

    async def _answer_408(self, scope: Scope, send: Send) -> None:
        if self.counter is not None:
            self.counter.inc()
        rid = _request_id(scope)
        found = scope.get("state")
        state: dict[str, object] = found if isinstance(found, dict) else {}
        body = orjson.dumps(
            {
                "error": {
                    "code": RequestBodyTimeout.code,
                    "message": f"the request body did not arrive within {self.timeout_s:g} s",
                    "details": {"timeout_s": self.timeout_s},
                },
                "request_id": rid,
                # As api/errors.error_body (api/context.RequestIds set them; it also adds their headers).
                "correlation_id": state.get("correlation_id"),
                "trace_id": state.get("trace_id"),
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", rid.encode()),
        ]
        await send({"type": "http.response.start", "status": RequestBodyTimeout.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    state = scope.get("state") or {}
    rid = state.get("request_id") if isinstance(state, dict) else None
    if isinstance(rid, str) and rid:
        return rid
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            incoming = bytes(value).decode("latin-1")
            if 0 < len(incoming) <= 128 and incoming.isprintable():
                return incoming
    return uuid.uuid4().hex
