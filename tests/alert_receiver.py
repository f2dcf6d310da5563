"""The alert receiver tests deliver to: the drills' webhook sink (faultlens.drills.sink), a real HTTP server on a
loopback port that records every call and can misbehave (accept, fail, throttle, hang, down/up), under the names
the alerting tests read."""

from __future__ import annotations

from faultlens.drills.sink import Call, Sink

Received = Call


class AlertReceiver(Sink):
    """Use as a context manager; `url` is its base URL (stable across down/up)."""

    @property
    def received(self) -> list[Call]:
        """Every call so far, whatever it was answered."""
        return self.calls

    def idempotency_keys(self) -> set[str]:
        """Distinct keys of the calls answered 2xx."""
        return {c.idempotency_key for c in self.accepted() if c.idempotency_key is not None}
