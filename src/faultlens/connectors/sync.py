"""Failed tasks -> faultlens events: one sync round, and the periodic thread that also runs retention."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from faultlens.connectors import service
from faultlens.connectors.base import RetryRecord
from faultlens.errors import FaultlensError, RedisUnavailable
from faultlens.services import Services
from faultlens.timeutil import now_ms

log = logging.getLogger("faultlens.connectors.sync")

# Event ids already stored, per database and tenant: a steady failed set costs no ingest per round.
# Losing this cache (restart) only costs re-sending ids the database then ignores.
_SEEN_MAX = 200_000
_seen: dict[tuple[str, str], OrderedDict[str, None]] = {}
_seen_lock = threading.Lock()


@dataclass
class SyncResult:
    found: int = 0
    accepted: int = 0
    duplicates: int = 0
    retry_events: int = 0
    auto_retried: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget_synced() -> None:
    """Drop the in-process memory of synced event ids (tests; the database stays the authority)."""
    with _seen_lock:
        _seen.clear()


def _seen_for(services: Services) -> OrderedDict[str, None]:
    key = (services.settings.database_url, services.settings.default_tenant)
    with _seen_lock:
        return _seen.setdefault(key, OrderedDict())


def _remember(seen: OrderedDict[str, None], ids: list[str]) -> None:
    with _seen_lock:
        for event_id in ids:
            seen[event_id] = None
        while len(seen) > _SEEN_MAX:
            seen.popitem(last=False)


def _unseen(services: Services, events: list[dict[str, Any]], result: SyncResult) -> None:
    seen = _seen_for(services)
    fresh = [e for e in events if e["id"] not in seen]
    result.duplicates += len(events) - len(fresh)
    accepted, duplicates, rejected = service.ingest_events(services, fresh)
    result.accepted += accepted
    result.duplicates += duplicates
    result.rejected += len(rejected)
    bad = {fresh[r["index"]]["id"] for r in rejected}
    _remember(seen, [e["id"] for e in fresh if e["id"] not in bad])


def collect_failed(services: Services) -> tuple[list[service.TaskView], list[str]]:
    """Every adapter's failed tasks, classified; an adapter whose read fails (Redis answering) is skipped
    and named in the errors, so one broken source does not stop the others. RedisUnavailable propagates.
    """
    service.check_redis(services)
    policies = service.policies_of(services)
    views: list[service.TaskView] = []
    errors: list[str] = []
    for adapter in service.adapters_of(services):
        try:
            with service.redis_errors(services, f"reading {adapter.kind} failed tasks"):
                tasks = adapter.list_failed()
        except RedisUnavailable:
            raise
        except FaultlensError as exc:
            errors.append(f"{adapter.kind}: {exc.message}")
            continue
        views.extend(service.classify(services, t, policies) for t in tasks)
    return views, errors


def sync_failed_tasks(services: Services, *, views: list[service.TaskView] | None = None) -> SyncResult:
    """Ingest every failed task (and every retry the sources record) as events; idempotent by event id.

    Raises RedisUnavailable when Redis cannot be reached; an adapter whose read fails otherwise is
    reported in `errors` and the others still sync.
    """
    result = SyncResult()
    now = now_ms()
    if views is None:
        views, result.errors = collect_failed(services)
    result.found = len(views)
    _unseen(services, [service.task_event(v, now=now) for v in views], result)

    retries: list[dict[str, Any]] = []
    for adapter in service.adapters_of(services):
        try:
            with service.redis_errors(services, f"reading {adapter.kind} retries"):
                records: list[RetryRecord] = adapter.list_retries()
        except RedisUnavailable:
            raise
        except FaultlensError as exc:
            result.errors.append(f"{adapter.kind} retries: {exc.message}")
            continue
        retries.extend(service.retry_event(r, now=now) for r in records)
    before = result.accepted
    _unseen(services, retries, result)
    result.retry_events = result.accepted - before
    return result


def auto_retry(services: Services, views: list[service.TaskView]) -> int:
    """Requeue retryable tasks whose backoff has passed (policy file: auto_retry: true)."""
    if not service.policies_of(services).auto_retry:
        return 0
    now = now_ms()
    done = 0
    for view in views:
        d = view.decision
        if not d.retryable or view.task.fail_ms is None:
            continue
        if now < view.task.fail_ms + int((d.delay_s or 0.0) * 1000):
            continue
        try:
            service.retry_task(services, view.task.key)
            done += 1
        except RedisUnavailable:
            raise
        except FaultlensError as exc:  # raced with another retry or a delete: next round sees the truth
            log.info("auto retry of %s skipped: %s", view.task.key, exc.message)
    return done


def run_round(services: Services) -> SyncResult:
    """One periodic round: list once, sync, auto-retry, archive what is past retention."""
    from faultlens.connectors import retention

    views, errors = collect_failed(services)
    result = sync_failed_tasks(services, views=views)
    result.errors[:0] = errors
    result.auto_retried = auto_retry(services, views)
    archived = retention.archive_failed_tasks(services, views=views)
    if archived.archived:
        log.info("archived %d failed task(s) past retention", archived.archived)
    return result


def start_sync(services: Services, *, interval_s: float | None = None) -> Callable[[], None]:
    """Start the periodic sync thread (every Settings.task_sync_interval_s); returns stop().

    An interval <= 0 disables it. A Redis outage is logged once and retried each round; stop() returns
    within a moment when idle,
    and at most one Redis timeout later when a round is blocked on Redis.
    """
    interval = services.settings.task_sync_interval_s if interval_s is None else interval_s
    if interval <= 0:  # an interval of 0 turns the periodic sync off
        return lambda: None
    stopping = threading.Event()

    def loop() -> None:
        down = False
        while not stopping.is_set():
            try:
                result = run_round(services)
                if down:
                    log.warning("Redis is reachable again; task sync resumed")
                down = False
                if result.errors:
                    log.warning("task sync: %s", "; ".join(result.errors))
            except RedisUnavailable as exc:
                if not down:
                    log.warning("task sync: %s; retrying every %.0fs", exc.message, interval)
                down = True
            except Exception:
                log.exception("task sync round failed; retrying next round")
            stopping.wait(interval)

    thread = threading.Thread(target=loop, name="faultlens-task-sync", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=services.settings.redis_timeout_s + 1.0)

    return stop
