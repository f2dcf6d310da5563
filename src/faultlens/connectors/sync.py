"""Failed tasks -> faultlens events: one sync round, and the periodic round (auto retry, retention when enabled) as
the leased duty "task_sync", run by one process at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from faultlens import request_context
from faultlens.connectors import retention, retries, service
from faultlens.connectors.base import RetryRecord
from faultlens.connectors.deadline import redis_deadline
from faultlens.connectors.redis_errors import check_redis, redis_errors
from faultlens.connectors.task_events import ingest_events, retry_event, task_event
from faultlens.connectors.task_view import TaskView
from faultlens.errors import FaultlensError, RedisUnavailable
from faultlens.jobs.duty import Duty
from faultlens.store.known_events import existing_ids
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.connectors.sync")
# The job_id of the periodic sync's log lines (faultlens.logs); a step reading one store is "sync:<store>".
SYNC_JOB_ID = "sync:tasks"
# The lease (and loop) name of the periodic round.
TASK_SYNC = "task_sync"


@dataclass
class SyncResult:
    found: int = 0
    accepted: int = 0
    duplicates: int = 0
    retry_events: int = 0
    auto_retried: int = 0
    archived: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ingest_new(services: Services, events: list[dict[str, Any]], result: SyncResult) -> None:
    """Ingest those of `events` the database does not hold yet: a steady failed set costs one indexed read per
    round, not an ingest, and a process that takes the lease over re-sends nothing."""
    if not events:
        return
    with services.engine.connect() as conn:
        stored = existing_ids(conn, tenant=services.settings.default_tenant, ids=[e["id"] for e in events])
    fresh = [e for e in events if e["id"] not in stored]
    result.duplicates += len(events) - len(fresh)
    accepted, duplicates, rejected = ingest_events(services, fresh)
    result.accepted += accepted
    result.duplicates += duplicates
    result.rejected += len(rejected)


def collect_failed(services: Services) -> tuple[list[TaskView], list[str]]:
    """Every adapter's failed tasks, classified; an adapter whose read fails (Redis answering) is skipped
    and named in the errors, so one broken source does not stop the others. RedisUnavailable propagates.
    The caller opens the Redis deadline.
    """
    check_redis(services)
    policies = service.policies_of(services)
    views: list[TaskView] = []
    errors: list[str] = []
    for adapter in service.adapters_of(services):
        try:
            with (
                request_context.scope(job_id=f"sync:{adapter.kind}"),
                redis_errors(services, f"reading {adapter.kind} failed tasks"),
            ):
                tasks = adapter.list_failed()
        except RedisUnavailable:
            raise
        except FaultlensError as exc:
            errors.append(f"{adapter.kind}: {exc.message}")
            continue
        views.extend(service.classify(services, t, policies) for t in tasks)
    return views, errors


def collect_retries(services: Services) -> tuple[list[RetryRecord], list[str]]:
    """The retries every source records on its own; the caller opens the Redis deadline."""
    records: list[RetryRecord] = []
    errors: list[str] = []
    for adapter in service.adapters_of(services):
        try:
            with (
                request_context.scope(job_id=f"sync:{adapter.kind}"),
                redis_errors(services, f"reading {adapter.kind} retries"),
            ):
                records.extend(adapter.list_retries())
        except RedisUnavailable:
            raise
        except FaultlensError as exc:
            errors.append(f"{adapter.kind} retries: {exc.message}")
    return records, errors


@dataclass
class SourceRead:
    """What one sync reads from Redis (all of it inside one deadline)."""

    views: list[TaskView]
    retries: list[RetryRecord]
    errors: list[str]


def read_sources(services: Services) -> SourceRead:
    """Failed tasks and recorded retries of every source; the caller opens the Redis deadline."""
    views, errors = collect_failed(services)
    retries, retry_errors = collect_retries(services)
    return SourceRead(views, retries, errors + retry_errors)


def store_read(services: Services, read: SourceRead) -> SyncResult:
    """Ingest what read_sources found as events; idempotent by event id (no Redis work)."""
    result = SyncResult(found=len(read.views), errors=list(read.errors))
    now = now_ms()
    _ingest_new(services, [task_event(v, now=now) for v in read.views], result)
    before = result.accepted
    _ingest_new(services, [retry_event(r, now=now) for r in read.retries], result)
    result.retry_events = result.accepted - before
    return result


def sync_failed_tasks(services: Services) -> SyncResult:
    """Ingest every failed task (and every retry the sources record) as events; idempotent by event id.

    The Redis reads share one deadline (Settings.redis_timeout_s). Raises RedisUnavailable when Redis cannot
    be reached in time; an adapter whose read fails otherwise is reported in `errors` and the others still sync.
    """
    with redis_deadline(services.settings.redis_timeout_s):
        read = read_sources(services)
    return store_read(services, read)


def auto_retry(services: Services, views: list[TaskView]) -> int:
    """Requeue retryable tasks whose backoff has passed, only of the stores the policy file names (auto_retry)."""
    policies = service.policies_of(services)
    if not policies.auto_retry:
        return 0
    now = now_ms()
    done = 0
    for view in views:
        d = view.decision
        if not policies.auto_retries(view.task.kind) or not d.allowed or view.task.fail_ms is None:
            continue
        if now < view.task.fail_ms + int((d.delay_s or 0.0) * 1000):
            continue
        try:
            with request_context.scope(job_id=f"sync:{view.task.kind}"):
                retries.retry_task(services, view.task.key, trigger="auto")
            done += 1
        except RedisUnavailable:
            raise
        except FaultlensError as exc:  # raced with another retry or a delete: next round sees the truth
            log.info("auto retry of %s skipped: %s", view.task.key, exc.message)
    if done:
        log.info("auto retry requeued %d failed task(s)", done)
    return done


def run_round(services: Services) -> SyncResult:
    """One periodic round: read once (one deadline), sync, auto-retry and archive where the operator enabled them."""
    with redis_deadline(services.settings.redis_timeout_s):
        read = read_sources(services)
    result = store_read(services, read)
    result.auto_retried = auto_retry(services, read.views)
    if retention.enabled_stores(services.settings):
        result.archived = retention.archive_failed_tasks(services, views=read.views).archived
    return result


def start_sync(services: Services, *, interval_s: float | None = None) -> Callable[[], None]:
    """Start the periodic round (every Settings.task_sync_interval_s) as the duty "task_sync"; returns stop().

    Every process starts it; only the one holding the lease runs rounds (jobs/duty.py), the others take over when
    it stops or dies. An interval <= 0 disables it. A Redis outage is logged once and retried each round. Every
    Redis step of a round runs inside a deadline of Settings.redis_timeout_s, so stop() returns within a moment
    when idle and at most about one deadline later when a round is blocked on Redis.
    """
    interval = services.settings.task_sync_interval_s if interval_s is None else interval_s
    if interval <= 0:  # an interval of 0 turns the periodic sync off
        return lambda: None
    enabled = retention.enabled_stores(services.settings)
    log.info(
        "task sync every %gs (on the process holding the %s lease); retention (archive + delete) enabled for: %s",
        interval,
        TASK_SYNC,
        ", ".join(enabled) if enabled else "no store",
    )
    metrics = services.metrics
    down = False

    def round_() -> bool:
        nonlocal down
        try:
            # A round's own lines (and its ingest's) carry job_id "sync:tasks"; each store's steps "sync:<store>".
            with request_context.scope(job_id=SYNC_JOB_ID):
                result = run_round(services)
        except RedisUnavailable as exc:
            if not down:
                log.warning("task sync: %s; retrying every %.0fs", exc.message, interval)
            down = True
            return False
        if down:
            log.warning("Redis is reachable again; task sync resumed")
        down = False
        if result.errors:
            log.warning("task sync: %s", "; ".join(result.errors))
        return True

    duty = Duty(
        services.engine,
        TASK_SYNC,
        round_,
        interval_s=interval,
        lease_ttl_s=services.settings.lease_ttl_s,
        on_pass=lambda ok: metrics.loop_pass(TASK_SYNC, ok=ok),
        on_held=lambda held: metrics.duty_held(TASK_SYNC, held),
    )
    return duty.start()
