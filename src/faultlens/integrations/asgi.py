"""ASGI middleware recording each HTTP request's outcome (route template, status, duration, exception, abort)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from faultlens.integrations.context import from_headers, reset_trace, set_trace
from faultlens.integrations.events import event, exception_text
from faultlens.integrations.routes import route_template
from faultlens.integrations.sender import Sender, default_sender

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("faultlens.integrations")

CLIENT_GONE_MESSAGE = "client disconnected before the response completed"
CLIENT_GONE_STATUS = 499  # nginx's "client closed request": the shipped rules classify it client_abort
_TRACE_HEADERS = frozenset({"traceparent", "baggage", "x-request-id", "x-correlation-id"})
# Exceptions servers and frameworks raise when the client left (matched by name: none of them is a dependency).
_CLIENT_GONE_ERRORS = frozenset({"ClientDisconnect", "ClientDisconnected", "BrokenPipeError", "ConnectionResetError"})


class _Request:
    """What one request's wrappers learn while the app runs."""

    __slots__ = ("client_gone", "complete", "started", "started_s", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.complete = False
        self.client_gone = False
        self.started_s = time.time()
        self.started = time.perf_counter()


class FaultlensMiddleware:
    """Wrap any ASGI app: `app = FaultlensMiddleware(app, source="shop")` or `app.add_middleware(...)`.

    HTTP requests only (websocket and lifespan pass through). Never blocks or breaks the app: events go to the
    Sender's bounded queue; any error of the middleware's own is swallowed and counted in `errors`.
    """

    def __init__(
        self,
        app: ASGIApp,
        sender: Sender | None = None,
        *,
        source: str | None = None,
        ignore_paths: Iterable[str] = (),
        record_success: bool = True,
        release: str | None = None,
        environment: str | None = None,
    ) -> None:
        self.app = app
        # None: FAULTLENS_RELEASE / FAULTLENS_ENVIRONMENT, read per event (integrations/events.py).
        self.release = release
        self.environment = environment
        self.sender = sender if sender is not None else default_sender()
        self.source = source or os.environ.get("FAULTLENS_SOURCE") or os.environ.get("OTEL_SERVICE_NAME") or "asgi"
        self.ignore_paths = frozenset(ignore_paths)
        self.record_success = record_success
        self.errors = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or self.sender is None or scope.get("path") in self.ignore_paths:
            await self.app(scope, receive, send)
            return
        try:
            entry = dict(scope)
            root_app = scope.get("app", self.app)
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope.get("headers") or ()
                if name.decode("latin-1").lower() in _TRACE_HEADERS
            }
            trace = from_headers(headers)
            token = set_trace(trace)
            state = _Request()
        except Exception:
            self.errors += 1
            await self.app(scope, receive, send)
            return

        async def receive_wrapper() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect" and not state.complete:
                state.client_gone = True
            return message

        async def send_wrapper(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                status = message.get("status")
                state.status = status if isinstance(status, int) else None
            try:
                await send(message)
            except OSError:
                if not state.complete:
                    state.client_gone = True
                raise
            if (
                kind == "http.response.body" and not message.get("more_body", False)
            ) or kind == "http.response.pathsend":
                state.complete = True

        failure: BaseException | None = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            # ValueError: the app ran in another context (a thread), nothing of ours to restore
            with contextlib.suppress(ValueError):
                reset_trace(token)
            try:
                self._record(scope, entry, root_app, state, trace, failure)
            except Exception:
                self.errors += 1
                log.debug("faultlens middleware could not record a request", exc_info=True)

    def _record(
        self,
        scope: Scope,
        entry: dict[str, Any],
        root_app: Any,
        state: _Request,
        trace: Any,
        failure: BaseException | None,
    ) -> None:
        assert self.sender is not None
        duration_ms = (time.perf_counter() - state.started) * 1000.0
        if failure is not None and type(failure).__name__ in _CLIENT_GONE_ERRORS:
            state.client_gone = True
        http_status = state.status
        error_message: str | None = None
        error_code: str | None = None
        if state.client_gone and not state.complete:
            status, http_status = "cancelled", CLIENT_GONE_STATUS
            error_message = CLIENT_GONE_MESSAGE
            if failure is not None:
                error_message += f" ({type(failure).__name__})"
        elif failure is not None and type(failure).__name__ == "CancelledError":
            # The server cancelled the request (shutdown, timeout): not a fault of the app's code.
            status, error_message = "cancelled", "request cancelled before the response completed"
        elif failure is not None:
            status = "failure"
            # An exception after the response started keeps the status the client saw (usually 200) as failed.
            http_status = http_status if http_status is not None and state.complete else 500
            error_message = exception_text(failure)
            error_code = f"{type(failure).__module__}.{type(failure).__qualname__}".removeprefix("builtins.")
        elif http_status is None:
            status, http_status = "failure", 500
            error_message = "the ASGI app returned without starting a response"
        else:
            status = "success" if http_status < 400 else "failure"
        if status == "success" and not self.record_success:
            return
        method = str(scope.get("method") or entry.get("method") or "HTTP")
        operation = f"{method} {route_template(scope, entry, root_app)}"
        self.sender.submit(
            event(
                source=self.source,
                operation=operation,
                status=status,
                http_status=http_status,
                started_s=state.started_s,
                ended_s=state.started_s + duration_ms / 1000.0,
                duration_ms=duration_ms,
                error_message=error_message,
                error_code=error_code,
                trace=trace,
                release=self.release,
                environment=self.environment,
            )
        )
