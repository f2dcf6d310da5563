"""A webhook sink a drill controls: an HTTP server on a loopback port in a thread that records every call.

Modes, switchable while it runs: accept (200), fail (500), throttle (429 with Retry-After), hang (answer nothing
for a while), and down (the port is closed, so connections are refused; `up()` serves again on the same port).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from faultlens.drills.waits import poll_until

_STATUS = {"accept": 200, "fail": 500, "throttle": 429, "hang": 200}


@dataclass(frozen=True)
class Call:
    """One call as it arrived: wall time in ms, method, path, query, headers (lower-cased names), JSON body (the
    raw text when not JSON), and the status answered (0 for a call held in hang mode)."""

    at_ms: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def notification_ids(self) -> list[str]:
        value = self.headers.get("x-faultlens-notification-ids", "")
        return [part.strip() for part in value.split(",") if part.strip()]


class Sink:
    """Start with start() (or as a context manager); `url` is its base URL, stable across down()/up()."""

    def __init__(self) -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._mode = "accept"
        self._retry_after = "1"
        self._hang_s = 0.0
        self._release = threading.Event()  # ends every hanging answer at once (mode change, down)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT", "GET"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        """accept, fail, throttle or hang; "down" while the port is closed."""
        with self._lock:
            return "down" if self._server is None else self._mode

    # --- modes ---------------------------------------------------------------------------------------------------
    def accept(self) -> None:
        self._set("accept")

    def fail(self) -> None:
        """Answer 500 to every call."""
        self._set("fail")

    def throttle(self, retry_after: float | str) -> None:
        """Answer 429 with `Retry-After: <retry_after>` (whole seconds, or an HTTP date as a string)."""
        self._retry_after = str(int(retry_after)) if isinstance(retry_after, float) else str(retry_after)
        self._set("throttle")

    def hang(self, seconds: float) -> None:
        """Read the request, then answer nothing for `seconds` (recorded with status 0: never accepted)."""
        self._hang_s = seconds
        self._set("hang")

    def down(self) -> None:
        """Close the port: connections are refused until up()."""
        self._stop_server()

    def up(self) -> None:
        """Listen again on the same port (the mode is unchanged)."""
        if self._server is None:
            self._start_server()

    def start(self) -> Sink:
        self.up()
        return self

    def stop(self) -> None:
        self._stop_server()

    def _set(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
        # A hang in progress ends when the mode changes; a new hang starts with a fresh event.
        self._release.set()
        self._release = threading.Event()

    # --- what arrived --------------------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def accepted(self) -> list[Call]:
        return [c for c in self.calls if c.accepted]

    def notification_ids(self) -> list[str]:
        """Notification ids of the calls answered 2xx, one entry per call that carried it (duplicates show)."""
        return [nid for c in self.accepted() for nid in c.notification_ids]

    def wait_for(self, count: int, timeout_s: float = 10.0, *, accepted: bool = False) -> list[Call]:
        """Poll until at least `count` calls arrived (only 2xx-answered ones with `accepted`); WaitTimeout after."""

        def enough() -> list[Call] | None:
            got = self.accepted() if accepted else self.calls
            return got if len(got) >= count else None

        kind = "accepted calls" if accepted else "calls"
        return poll_until(enough, timeout_s=timeout_s, what=f"sink receiving {count} {kind}", every_s=0.01)

    # --- server --------------------------------------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            mode, retry_after, hang_s, release = self._mode, self._retry_after, self._hang_s, self._release
        status = _STATUS[mode]
        call = Call(
            at_ms=time.time_ns() // 1_000_000,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            status=0 if mode == "hang" else status,
        )
        with self._lock:
            self._calls.append(call)
        if mode == "hang":
            deadline = time.monotonic() + hang_s
            while time.monotonic() < deadline and not release.is_set():
                await asyncio.sleep(0.02)
        headers = {"Retry-After": retry_after} if mode == "throttle" else {}
        return JSONResponse({"status": status}, status_code=status, headers=headers)

    def _start_server(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()

        def started() -> bool:
            if not thread.is_alive():
                raise RuntimeError("the sink stopped while starting")
            return bool(server.started)

        poll_until(started, timeout_s=30, what="the sink starting", every_s=0.01)
        self._server, self._thread, self._sock = server, thread, sock

    def _stop_server(self) -> None:
        if self._server is None:
            return
        self._release.set()
        self._release = threading.Event()
        self._server.should_exit = True
        assert self._thread is not None and self._sock is not None
        self._thread.join(timeout=30)
        self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
