"""An alert receiver for the benchmarks: a loopback HTTP server that answers 200 and records when each call arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """One call: when it arrived (monotonic seconds of this process, and wall time in ms) and its JSON body."""

    arrived: float
    arrived_wall_ms: int
    path: str
    body: Any


class Receiver:
    """Use as a context manager; `url` is its base URL. Every POST is answered 200 and kept in `calls`."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # The arrival is taken before the body is read: the call has reached the receiver.
                arrived, wall_ms = time.monotonic(), time.time_ns() // 1_000_000
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                receiver._record(Call(arrived, wall_ms, self.path, body))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return list(self._calls)

    def wait_for(self, match: Callable[[Call], bool], *, timeout_s: float) -> Call | None:
        """The first call (in arrival order) that `match` accepts, waiting up to `timeout_s`; None after that."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for call in self._calls[seen:]:
                    if match(call):
                        return call
                seen = len(self._calls)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
