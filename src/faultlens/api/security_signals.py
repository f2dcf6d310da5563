"""The security signal recorder: refused keys and scopes, and ids of another tenant asked for, kept in security_signals.

The refusal points (api/deps.py, the event route) count in memory under the tenant concerned; a thread adds the
counts to the table every `api_usage_flush_interval_s` and once more at shutdown, as the usage recorder does, so a
refusal never waits on a write. The P0 security alerts (alerting/security.py) read the table.
"""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy import Connection

from faultlens.api.buffered_counts import BufferedCounts
from faultlens.store import keys
from faultlens.store import security_signals as signal_store
from faultlens.store.api_usage import minute_of
from faultlens.store.security_signals import SignalKey

log = logging.getLogger("faultlens.api.security_signals")

# The closed set of kinds. Each is counted under the tenant it concerns: revoked_key under the key's tenant,
# unknown_key (a key no tenant has) under Settings.default_tenant, the operator's; scope_refused and cross_tenant
# under the caller's tenant.
SIGNAL_KINDS: tuple[str, ...] = ("revoked_key", "unknown_key", "scope_refused", "cross_tenant")
# The attribute of app.state the recorder lives under (api/app.py).
STATE_KEY = "security_signals"
# Distinct (tenant, minute, kind) keys held while the database is away; past it new keys are dropped (and logged
# once per flush), so a flood of refusals during an outage costs bounded memory.
MAX_PENDING_KEYS = 50_000


class SignalRecorder(BufferedCounts[SignalKey, int]):
    """Counts in memory; `flush` adds them to security_signals (api/buffered_counts.py)."""

    label = "security signals"
    unit = "signals"
    thread_name = "faultlens-security-signals"
    max_pending_keys = MAX_PENDING_KEYS

    def record(self, tenant: str, kind: str) -> None:
        if kind not in SIGNAL_KINDS:
            raise ValueError(f"unknown security signal kind {kind!r}")
        self._count((tenant, minute_of(self.clock()), kind), lambda n: (n or 0) + 1)

    def write(self, conn: Connection, batch: dict[SignalKey, int]) -> None:
        signal_store.add_signals(conn, batch)

    def merge(self, into: int | None, value: int) -> int:
        return (into or 0) + value

    def size(self, value: int) -> int:
        return value


def record_signal(request: Request, tenant: str, kind: str) -> None:
    """Count one signal on the app's recorder (an app built without one counts nothing)."""
    recorder: SignalRecorder | None = getattr(request.app.state, STATE_KEY, None)
    if recorder is not None:
        recorder.record(tenant, kind)


def record_refused_key(request: Request, conn: Connection, *, secret: str, default_tenant: str) -> None:
    """A presented key find_key refused: revoked_key under its tenant, or unknown_key under the default tenant.
    A failure here is logged; the caller's 401 does not depend on it."""
    try:
        found = keys.find_key_any(conn, secret=secret)
    except Exception:
        log.exception("refused key check failed")
        return
    if found is None:
        record_signal(request, default_tenant, "unknown_key")
        return
    key, revoked_at = found
    if revoked_at is not None:
        # The key id is no secret and tells the operator which holder to find; the secret is never logged.
        log.warning("revoked API key %s of tenant %s presented", key.id, key.tenant)
        record_signal(request, key.tenant, "revoked_key")


def record_cross_tenant(request: Request, conn: Connection, *, tenant: str, event_id: str, default_tenant: str) -> None:
    """After `tenant` was answered 404 for `event_id`: count cross_tenant when another tenant holds that id.

    Runs on every such 404, found elsewhere or not, so both take the same path; the caller's answer does not
    depend on it, and a failure here is logged, never answered.
    """
    try:
        found = signal_store.event_in_other_tenant(
            conn, tenant=tenant, event_id=event_id, default_tenant=default_tenant
        )
    except Exception:
        log.exception("cross-tenant check failed")
        return
    if found:
        record_signal(request, tenant, "cross_tenant")
