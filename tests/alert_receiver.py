"""A real alert receiver for tests: an HTTP server on a loopback port that records every call and can misbehave.

Modes, switchable while it runs: accept (200), fail (500), throttle (429 with Retry-After), hang (answer nothing
for a while), and down (the server is stopped, so connections are refused; `up()` serves again on the same port).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    """One call as it arrived: path, query, headers (lower-cased names), JSON body, wall time in ms, and the status
    answered (0 for a call held in hang mode: its caller is taken to have given up)."""

    path: str
    query: str
    headers: dict[str, str]
    body: Any
    at_ms: int
    answered: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def notification_ids(self) -> list[str]:
        value = self.headers.get("x-faultlens-notification-ids", "")
        return [part.strip() for part in value.split(",") if part.strip()]


class AlertReceiver:
    """Use as a context manager; `url` is its base URL (stable across down/up)."""

    def __init__(self) -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._mode = "accept"
        self._retry_after = "1"
        self._hang_s = 0.0
        self._release = threading.Event()  # ends every hanging answer at once (mode change, stop)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- modes -----------------------------------------------------------------------------------------------
    def accept(self) -> None:
        self._set("accept")

    def fail(self) -> None:
        self._set("fail")

    def throttle(self, retry_after: int | str) -> None:
        """429 with `Retry-After: <retry_after>` (seconds, or an HTTP date as a string)."""
        self._retry_after = str(retry_after)
        self._set("throttle")

    def hang(self, seconds: float) -> None:
        """Read the request, then answer nothing for `seconds` (recorded as answered 0: never accepted)."""
        self._hang_s = seconds
        self._set("hang")

    def down(self) -> None:
        """Stop listening: connections to the port are refused until `up()`."""
        self._stop_server()

    def up(self) -> None:
        """Listen again on the same port (mode unchanged)."""
        if self._server is None:
            self._start_server()

    def _set(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
        # A hang in progress ends when the mode changes; a new hang starts with a fresh event.
        self._release.set()
        self._release = threading.Event()

    # --- what arrived ----------------------------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.answered < 300]

    def idempotency_keys(self) -> set[str]:
        """Distinct keys of the calls answered 2xx."""
        return {r.idempotency_key for r in self.accepted() if r.idempotency_key is not None}

    def notification_ids(self) -> list[str]:
        """Notification ids of the calls answered 2xx, one entry per call that carried it (duplicates show)."""
        return [nid for r in self.accepted() for nid in r.notification_ids]

    def wait_for(self, count: int, *, timeout_s: float = 10.0) -> list[Received]:
        """Poll until at least `count` calls have arrived (any answer); fails after the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.received
            if len(got) >= count:
                return got
            assert time.monotonic() < deadline, f"receiver got {len(got)} calls, expected {count}"
            time.sleep(0.01)

    # --- server ----------------------------------------------------------------------------------------------
    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            mode, retry_after, hang_s, release = self._mode, self._retry_after, self._hang_s, self._release
        status = {"accept": 200, "fail": 500, "throttle": 429, "hang": 200}[mode]
        record = Received(
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            at_ms=time.time_ns() // 1_000_000,
            answered=0 if mode == "hang" else status,
        )
        with self._lock:
            self._received.append(record)
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
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the receiver stopped while starting"
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)
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

    def __enter__(self) -> AlertReceiver:
        self._start_server()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_server()
