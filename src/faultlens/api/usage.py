"""The API usage recorder: requests per tenant, minute and status class, with their latencies, kept in api_usage.

A pure ASGI middleware times every request and counts it in memory under the tenant of its API key (the
principal get_principal resolved, left in scope["state"]); a request that never got that far (a guard's refusal,
a missing key) belongs to no tenant and is not counted. A thread adds the counts to the table in one short
transaction every `api_usage_flush_interval_s` and once more at shutdown, so no request ever waits on the database.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.store import api_usage
from faultlens.store.api_usage import Usage, UsageKey
from faultlens.timeutil import now_ms

log = logging.getLogger("faultlens.api.usage")

# The key of scope["state"] get_principal writes the caller's tenant under.
TENANT_STATE_KEY = "faultlens_tenant"
# Distinct (tenant, minute, class) keys held while the database is away; past it new keys are dropped (and
# logged once per flush), so an outage costs bounded memory.
MAX_PENDING_KEYS = 50_000


def status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


class UsageRecorder:
    """Counts in memory; `flush` adds them to api_usage. Thread-safe: requests record, one thread flushes."""

    def __init__(self, engine: Engine, *, interval_s: float, clock: Any = now_ms) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[UsageKey, Usage] = {}
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, tenant: str, status: int, duration_ms: float) -> None:
        key = (tenant, api_usage.minute_of(self.clock()), status_class(status))
        with self._lock:
            usage = self._pending.get(key)
            if usage is None:
                if len(self._pending) >= MAX_PENDING_KEYS:
                    self._dropped += 1
                    return
                usage = self._pending[key] = Usage()
            usage.add(duration_ms)

    def flush(self) -> int:
        """Write what was counted since the last flush; the requests written. On failure the counts are kept for
        the next flush (within MAX_PENDING_KEYS)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning("api usage: %d requests not counted while the database was unavailable", dropped)
            if not batch:
                return 0
            try:
                with self.engine.begin() as conn:
                    api_usage.add_usage(conn, batch)
            except Exception:
                log.exception("api usage could not be written; kept for the next flush")
                self._put_back(batch)
                return 0
            return sum(u.requests for u in batch.values())

    def _put_back(self, batch: dict[UsageKey, Usage]) -> None:
        with self._lock:
            for key, usage in batch.items():
                mine = self._pending.get(key)
                if mine is not None:
                    mine.merge(usage)
                elif len(self._pending) < MAX_PENDING_KEYS:
                    self._pending[key] = usage
                else:
                    self._dropped += usage.requests

    def start(self) -> None:
        if self._thread is not None or self.interval_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="faultlens-api-usage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def stop(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 30)
            self._thread = None
        self.flush()


class UsageMiddleware:
    """Times each HTTP request to the end of its response and hands it to the recorder under its tenant."""

    def __init__(self, app: ASGIApp, *, recorder: UsageRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # An exception that escaped is answered 500 by the server error handler outside.
            tenant = state.get(TENANT_STATE_KEY)
            if isinstance(tenant, str):
                self.recorder.record(tenant, status, (time.perf_counter() - started) * 1000)
