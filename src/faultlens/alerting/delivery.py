"""One pass of the alert sender: claim due outbox batches, POST each to its receiver, record what became of it.

Nothing is lost: a batch leaves the outbox only when its receiver answered 2xx, or dead-lettered after its last
try (visible, countable, re-sendable). Retries wait with exponential backoff and full jitter, or exactly as long
as the receiver's Retry-After asks (capped). The batch id goes out as Idempotency-Key, so a batch sent again after
a crash or a lost answer is recognisable as the same one. Calls run outside any database transaction; each
result is recorded in a short one. Receiver URLs and header values may carry tokens: logs and stored errors name
the receiver only.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from faultlens.alert_model import Notification, Receiver
from faultlens.alerting import payloads
from faultlens.alerting.routing import Routing
from faultlens.metrics import Metrics
from faultlens.settings import Settings
from faultlens.store import notifications as outbox
from faultlens.store.notifications import Batch
from faultlens.timeutil import now_ms as wall_ms

log = logging.getLogger("faultlens.alerting.delivery")


class _OriginOnly(logging.Filter):
    """httpx logs each request's full URL at INFO; a receiver's path or query may hold its token, so only the
    scheme, host and port of any URL in httpx's log lines are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(_origin(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _origin(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}/..."


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _OriginOnly) for f in _httpx_log.filters):
    _httpx_log.addFilter(_OriginOnly())

# Rows claimed per pass; what is left waits for the next pass (the sender is woken again when work remains).
CLAIM_LIMIT = 1000
# The counted type of a receiver no longer in the routing file: its real type is unknown, and the metric's label
# is a closed set. Its rows still die and are listed by the outbox queries under the receiver's name.
UNKNOWN_RECEIVER_TYPE = "webhook"
NOT_CONFIGURED = "receiver not configured"
NOT_SERVING = "receiver does not serve this tenant"
_RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class DeliveryReport:
    """What one pass did: HTTP calls made, and notifications delivered, scheduled for a retry, dead-lettered."""

    sent: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0


@dataclass(frozen=True)
class _Outcome:
    status: int | None
    error: str | None  # None: delivered
    retry_after_ms: int | None = None
    unreachable: bool = False  # no answer at all: the receiver's other batches wait for the next pass


def backoff_ms(attempts: int, settings: Settings, rng: random.Random | None = None) -> int:
    """Full jitter: uniform in [0, min(max, base * 2**(attempts-1))] for the `attempts`-th failed try."""
    ceiling = min(
        settings.alert_delivery_backoff_max_s,
        settings.alert_delivery_backoff_base_s * 2 ** max(0, attempts - 1),
    )
    return int((rng or random).uniform(0, ceiling) * 1000)


def retry_after_ms(value: str | None, *, now: int) -> int | None:
    """Milliseconds a Retry-After header asks to wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; a date without a zone is taken as such
        return None
    # Rounded up: honouring it means never sending before that instant.
    return max(0, math.ceil(when.timestamp() * 1000) - now)


def group_labels(routing: Routing, rows: Sequence[Notification]) -> dict[str, str]:
    """The labels the batch was grouped by: those of the route's group_by that all its alerts share."""
    labels = [dict(row.payload.get("labels") or {}) for row in rows]
    if not labels:
        return {}
    common = {k: v for k, v in labels[0].items() if all(other.get(k) == v for other in labels[1:])}
    group_by = routing.route(labels[0]).group_by
    return {k: str(common[k]) for k in group_by if k in common}


def deliver_once(
    engine: Engine,
    routing: Routing,
    settings: Settings,
    metrics: Metrics,
    *,
    now_ms: Callable[[], int] = wall_ms,
    client: httpx.Client | None = None,
) -> DeliveryReport:
    """Send every due batch once and record each result; returns what this pass did."""
    with engine.begin() as conn:
        batches = outbox.claim_due(conn, now=now_ms(), limit=CLAIM_LIMIT)
    report = DeliveryReport()
    if batches:
        own = client is None
        # Each send sets its own deadline (_send); the client's default is the setting's, should a call forget.
        timeout = httpx.Timeout(settings.alert_delivery_timeout_s, connect=min(3.0, settings.alert_delivery_timeout_s))
        http = client if client is not None else httpx.Client(follow_redirects=False, timeout=timeout)
        unreachable: set[str] = set()
        try:
            for batch in batches:
                if batch.receiver in unreachable:
                    continue
                report = _deliver(engine, routing, settings, metrics, http, batch, now_ms, report, unreachable)
        finally:
            if own:
                http.close()
    with engine.connect() as conn:
        metrics.alert_pending.set(outbox.count_pending(conn))
    return report


def _deliver(
    engine: Engine,
    routing: Routing,
    settings: Settings,
    metrics: Metrics,
    http: httpx.Client,
    batch: Batch,
    now_ms: Callable[[], int],
    report: DeliveryReport,
    unreachable: set[str],
) -> DeliveryReport:
    receiver = routing.receivers.get(batch.receiver)
    sent = report.sent
    if receiver is None:
        # Removed from the routing file: kept and retried, so putting it back delivers what it missed.
        outcome = _Outcome(status=None, error=NOT_CONFIGURED)
    elif not receiver.serves(batch.tenant):
        outcome = _Outcome(status=None, error=NOT_SERVING)
    else:
        outcome = _send(http, receiver, batch, routing, settings, now_ms())
        sent += 1
        if outcome.unreachable:
            unreachable.add(batch.receiver)
    kind = receiver.type if receiver is not None else UNKNOWN_RECEIVER_TYPE
    now = now_ms()
    count = len(batch.rows)
    if outcome.error is None:
        with engine.begin() as conn:
            outbox.mark_delivered(conn, batch_id=batch.id, now=now, status=outcome.status or 200)
        metrics.alert_deliveries.labels(kind, "delivered").inc()
        for row in batch.rows:
            metrics.alert_lag_seconds.labels(kind).observe(max(0, now - row.created_at) / 1000)
        return DeliveryReport(sent, report.delivered + count, report.retrying, report.dead)
    attempts = batch.attempts + 1
    max_attempts = (receiver.max_attempts if receiver is not None else None) or settings.alert_delivery_max_attempts
    if attempts >= max_attempts:
        with engine.begin() as conn:
            outbox.mark_dead(conn, batch_id=batch.id, now=now, status=outcome.status, error=outcome.error)
        if receiver is not None:
            metrics.alert_deliveries.labels(kind, "failed").inc()
        metrics.alert_dead.labels(kind).inc(count)
        log.error(
            "alert receiver %s: %d notification(s) dead-lettered after %d tries (%s)",
            batch.receiver,
            count,
            attempts,
            outcome.error,
        )
        return DeliveryReport(sent, report.delivered, report.retrying, report.dead + count)
    if outcome.retry_after_ms is not None:
        wait = min(outcome.retry_after_ms, int(settings.alert_retry_after_max_s * 1000))
    else:
        wait = backoff_ms(attempts, settings)
    with engine.begin() as conn:
        outbox.mark_retry(conn, batch_id=batch.id, due_at=now + wait, status=outcome.status, error=outcome.error)
    if receiver is not None:
        metrics.alert_deliveries.labels(kind, "retrying").inc()
    log.warning(
        "alert receiver %s: %s; %d notification(s) tried again in %.1f s (try %d of %d)",
        batch.receiver,
        outcome.error,
        count,
        wait / 1000,
        attempts,
        max_attempts,
    )
    return DeliveryReport(sent, report.delivered, report.retrying + count, report.dead)


def _send(
    http: httpx.Client, receiver: Receiver, batch: Batch, routing: Routing, settings: Settings, now: int
) -> _Outcome:
    rows = batch.notifications
    try:
        url, body = payloads.render(
            receiver,
            rows,
            group_key=batch.group_key,
            group_labels=group_labels(routing, rows),
            external_url=settings.external_url,
            now_ms=now,
        )
    except Exception:
        # A body that cannot be built now will not be built on the next try either: it dies after max tries.
        log.exception("alert receiver %s: the notification body could not be built", receiver.name)
        return _Outcome(status=None, error="body could not be built")
    total_s = min(receiver.timeout_s, settings.alert_delivery_timeout_s)
    headers = {
        **_plain(receiver.headers),
        "Content-Type": "application/json",
        "Idempotency-Key": batch.id,
        "X-Faultlens-Notification-Ids": ",".join(row.id for row in rows),
    }
    try:
        # The body of the answer is never read: status and headers say everything, and a receiver cannot hold
        # the sender by trickling it.
        with http.stream(
            "POST",
            url,
            json=body,
            headers=headers,
            timeout=httpx.Timeout(total_s, connect=min(3.0, total_s)),
            follow_redirects=False,
        ) as response:
            status = response.status_code
            retry_after = response.headers.get("retry-after")
    except httpx.HTTPError as exc:
        # The exception's text may quote the URL; its type says what happened.
        return _Outcome(status=None, error=f"{type(exc).__name__}", unreachable=True)
    if 200 <= status < 300:
        return _Outcome(status=status, error=None)
    wait = retry_after_ms(retry_after, now=now) if status in _RETRY_AFTER_STATUSES else None
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += " (redirects are not followed)"
    return _Outcome(status=status, error=error, retry_after_ms=wait)


def _plain(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in headers.items()}
