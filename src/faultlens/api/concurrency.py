"""Request admission: the per-replica request cap (past Settings.max_concurrent_requests, 503 server_busy at once)
and the ingest bound (at most Settings.ingest_concurrency batches stored at once, a short queue, then 503)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.api.errors import error_response, request_id_of
from faultlens.api.guard import Envelope, ErrorBody

log = logging.getLogger("faultlens.api")

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


class IngestSlots:
    """At most `limit` holders at once and at most `queue` waiting, first come first served, each for at most
    `wait_s`. One event loop runs every request of the app, so plain counters are exact."""

    def __init__(self, *, limit: int, queue: int, wait_s: float) -> None:
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> bool:
        """Take a slot (True), or give up (False) at once when the queue is full or after waiting wait_s."""
        if self.in_flight < self.limit and not self.waiters:
            self.in_flight += 1
            return True
        if len(self.waiters) >= self.queue:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return True  # handed the slot just as the wait ran out: keep it
            self._forget(waiter)
            return False
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the slot, but the request is gone: hand it on
            else:
                self._forget(waiter)
            raise
        return True

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)

    def release(self) -> None:
        """Hand the slot to the longest waiter, or free it."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1


class IngestLimit:
    """Pure ASGI middleware: at most `slots.limit` ingest batches (POST to `paths`) are processed at once.

    Storing a batch is CPU work (validation, classification, fingerprints) under the GIL plus a write transaction;
    run side by side, batches starve the reads of CPU and, on SQLite, queue on the one writer lock while holding
    threads and connections. A batch takes its slot once its whole body has arrived (a slow sender holds none),
    keeps it until its answer has been sent, and waits for it in a short queue (`slots.queue` batches, each at most
    `slots.wait_s`); past that it answers 503 `server_busy` with Retry-After in the one error body (or the path's
    contract body), and nothing of it is stored. Reads never wait here.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        slots: IngestSlots,
        paths: frozenset[str],
        retry_after_s: int,
        counter: Counter | None = None,
        error_bodies: Mapping[str, ErrorBody] | None = None,
    ) -> None:
        self.app = app
        self.slots = slots
        self.paths = paths
        self.retry_after_s = retry_after_s
        self.counter = counter
        self.error_bodies = dict(error_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.slots.limit <= 0
            or scope.get("method") != "POST"
            or scope.get("path") not in self.paths
        ):
            await self.app(scope, receive, send)
            return
        held = False
        refused = False
        response_started = False

        async def admitted_receive() -> Message:
            nonlocal held, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if held or message["type"] != "http.request" or message.get("more_body", False):
                return message
            # The whole body is here: the batch's expensive part starts now, so it waits for a slot now.
            if await self.slots.acquire():
                held = True
                return message
            refused = True
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused and not response_started:
                return  # the 503 below answers instead
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, admitted_receive, guarded_send)
        except Exception:
            if not refused or response_started:
                raise
            log.debug("ingest batch refused while waiting for a slot", exc_info=True)
        finally:
            if held:
                self.slots.release()
        if refused and not response_started:
            if self.counter is not None:
                self.counter.inc()
            await self.refuse(scope)(scope, receive, send)

    def refuse(self, scope: Scope) -> Response:
        request = Request(scope)
        slots = self.slots
        message = (
            f"this server is storing {slots.limit} ingest batch(es) with {len(slots.waiters)} waiting; "
            f"retry after {self.retry_after_s} s"
        )
        details: dict[str, Any] = {
            "ingest_concurrency": slots.limit,
            "ingest_queue": slots.queue,
            "retry_after_s": self.retry_after_s,
        }
        headers = {"Retry-After": str(self.retry_after_s)}
        path = scope.get("path", "")
        for prefix, body in self.error_bodies.items():
            if path.startswith(prefix):
                return body(request, 503, SERVER_BUSY, message, details, headers=headers)
        return error_response(request, 503, SERVER_BUSY, message, details, headers=headers)
