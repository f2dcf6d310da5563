"""The API usage recorder: requests per tenant, minute and status class, with their latencies, kept in api_usage.

A pure ASGI middleware times every request and counts it in memory under the tenant of its API key (the
principal get_principal resolved, left in scope["state"]); a request that never got that far (a guard's refusal,
a missing key) belongs to no tenant and is not counted. A thread adds the counts to the table in one short
transaction every `api_usage_flush_interval_s` and once more at shutdown, so no request ever waits on the database.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.api.buffered_counts import BufferedCounts
from faultlens.store import api_usage
from faultlens.store.api_usage import Usage, UsageKey

log = logging.getLogger("faultlens.api.usage")

# The key of scope["state"] get_principal writes the caller's tenant under.
TENANT_STATE_KEY = "faultlens_tenant"
# Distinct (tenant, minute, class) keys held while the database is away; past it new keys are dropped (and
# logged once per flush), so an outage costs bounded memory.
MAX_PENDING_KEYS = 50_000


def status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


class UsageRecorder(BufferedCounts[UsageKey, Usage]):
    """Counts in memory; `flush` adds them to api_usage (api/buffered_counts.py)."""

    label = "api usage"
    unit = "requests"
    thread_name = "faultlens-api-usage"
    max_pending_keys = MAX_PENDING_KEYS

    def record(self, tenant: str, status: int, duration_ms: float) -> None:
        def add(usage: Usage | None) -> Usage:
            usage = usage or Usage()
            usage.add(duration_ms)
            return usage

        self._count((tenant, api_usage.minute_of(self.clock()), status_class(status)), add)

    def write(self, conn: Connection, batch: dict[UsageKey, Usage]) -> None:
        api_usage.add_usage(conn, batch)

    def merge(self, into: Usage | None, value: Usage) -> Usage:
        if into is None:
            return value
        into.merge(value)
        return into

    def size(self, value: Usage) -> int:
        return value.requests


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
