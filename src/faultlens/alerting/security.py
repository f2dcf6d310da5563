"""The P0 security conditions: revoked keys in use, cross-tenant probing, a spike of refused keys and scopes.

They read security_signals (counted by api/security_signals.py on every replica). DECISIONS.md "Alerts": security
signals are P0, unauthorised-access risk, respond in 5 minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection

from faultlens.alert_model import Candidate, Level
from faultlens.store.security_signals import count_signals

if TYPE_CHECKING:
    from faultlens.alerting.routing import ConditionSettings

RECENT_MS = 15 * 60_000
BASELINE_MS = 24 * 3_600_000
# The spike compares the last 15 minutes with the 24 hours before them, as a rate per 15 minutes.
BASELINE_WINDOWS = BASELINE_MS / RECENT_MS
AUTH_FAILURE_KINDS = ("unknown_key", "scope_refused")


def _candidate(alertname: str, signal: str, summary: str, description: str, value: int, threshold: float) -> Candidate:
    labels = {"alertname": alertname, "level": Level.P0.value, "signal": signal}
    return Candidate(
        name=alertname,
        level=Level.P0.value,
        labels=labels,
        summary=summary,
        value=float(value),
        threshold=threshold,
        description=description,
    )


def security_candidates(conn: Connection, *, tenant: str, now: int, settings: ConditionSettings) -> list[Candidate]:
    """The tenant's P0 security candidates at `now` (epoch ms), in a fixed order; [] when all is quiet."""
    recent_start = now - RECENT_MS
    counts = count_signals(conn, tenant=tenant, starts=[recent_start, recent_start - BASELINE_MS], end=now)

    def recent(kind: str) -> int:
        return counts.get(kind, [0, 0])[0]

    def before(kind: str) -> int:
        n = counts.get(kind, [0, 0])
        return n[1] - n[0]

    min_events = settings.security_min_events
    out: list[Candidate] = []

    revoked = recent("revoked_key")
    if revoked >= 1:
        out.append(
            _candidate(
                "revoked_key_used",
                "revoked_key",
                f"A revoked API key was presented {revoked} time(s) in the last 15 minutes: find who still holds it "
                "(the warning log names the key id) and whether it leaked.",
                "Revoked keys are refused, but a client still sending one is either stale configuration or someone "
                "holding a key that was revoked for a reason. First: look up the key id in `faultlens keys list`, "
                "find the caller in the access log, and rotate any key issued alongside it.",
                revoked,
                1,
            )
        )

    cross = recent("cross_tenant")
    if cross >= min_events:
        out.append(
            _candidate(
                "cross_tenant_attempts",
                "cross_tenant",
                f"{cross} requests in the last 15 minutes asked for event ids that belong to another tenant: "
                "find the caller and check whether it is enumerating ids.",
                "Each was answered 404 exactly as a missing id, and nothing of the other tenant was returned. "
                "A client asking for ids of another tenant is probing or misconfigured (a key of the wrong tenant). "
                "First: find the client in the access log (this tenant's 404s on /api/v1/events/...) and which of "
                "the tenant's keys it uses; revoke that key if the pattern is enumeration.",
                cross,
                float(min_events),
            )
        )

    failures = sum(recent(k) for k in AUTH_FAILURE_KINDS)
    baseline_rate = sum(before(k) for k in AUTH_FAILURE_KINDS) / BASELINE_WINDOWS
    spike_threshold = max(float(min_events), settings.security_factor * baseline_rate)
    if failures >= spike_threshold:
        parts = ", ".join(f"{recent(k)} {k.replace('_', ' ')}" for k in AUTH_FAILURE_KINDS)
        out.append(
            _candidate(
                "auth_failure_spike",
                "auth_failure",
                f"{failures} refused keys and scopes in the last 15 minutes ({parts}) against "
                f"{baseline_rate:.1f} per 15 minutes over the day before: check for key guessing or a client "
                "deployed with a wrong or under-scoped key.",
                "Unknown keys are counted under the deployment's default tenant, scope refusals under the key's "
                "tenant. First: the access log's 401s and 403s show the callers; a single client after a release is "
                "a configuration slip, many addresses are guessing (rate-limit or block them at the proxy).",
                failures,
                spike_threshold,
            )
        )
    return out
