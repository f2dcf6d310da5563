"""Event partition upkeep and raw-event retention: the leased duty "event_partitions".

Each pass, on the one process holding the lease:
- PostgreSQL: gives yesterday, today and the next AHEAD_DAYS days their partitions, and moves the rows of any day
  still kept that sit in the default partition into that day's own (store/partitions.ensure_day); then, with a
  retention, detaches the day partitions wholly older than it, forgets their ids in event_ids in batches and drops
  them, and deletes the default partition's rows older than it in batches.
- SQLite: deletes events older than the retention in batches.
Rollups outlive raw events ("rollups equal a raw scan" holds inside the retention window), except minute rollups:
they are deleted in batches once older than FINE_ROLLUP_RETENTION_HOURS, on either database.
While an events table filled before partitioning waits for its conversion (jobs/partition_events.py), a
PostgreSQL pass does nothing but queue that job again if it is no longer queued (it failed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from faultlens.jobs.duty import Duty
from faultlens.jobs.queue import JobKind, enqueue, find_active
from faultlens.store import event_retention, partitions, rollup_retention
from faultlens.store.db import LOCK_TIMEOUT_OPTION
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs.event_partitions")

NAME = "event_partitions"
AHEAD_DAYS = 3
BATCH = 5_000  # rows per retention transaction: each holds its locks (SQLite: the write lock) only briefly
# Attaching, detaching and dropping a partition wait for the queries reading it, and every query behind them waits
# too: a pass gives up soon (the next one tries again) rather than stall ingest for the whole lock timeout.
DDL_LOCK_TIMEOUT_MS = 2_000


@dataclass
class PassReport:
    created: list[int] = field(default_factory=list)  # days given a partition
    moved: int = 0  # rows moved out of the default partition
    dropped: list[int] = field(default_factory=list)  # days whose partition was dropped
    deleted: int = 0  # rows deleted one by one (default partition, SQLite)
    fine_rollups_deleted: int = 0  # minute rollup rows past their retention
    batches: int = 0  # retention transactions


def maintain(
    engine: Engine,
    *,
    retention_days: float,
    now: int | None = None,
    batch: int = BATCH,
    pause_s: float = 0.0,
    fine_rollup_retention_hours: float = 48.0,
) -> PassReport:
    """One pass (see the module doc); `now` (epoch ms) for tests. Safe to repeat and to resume after a crash."""
    now = now_ms() if now is None else now
    cutoff = None if retention_days <= 0 else now - int(retention_days * partitions.DAY_MS)
    report = PassReport()
    _delete_fine_rollups(
        engine, report, cutoff=now - int(fine_rollup_retention_hours * 3_600_000), batch=batch, pause_s=pause_s
    )
    engine = engine.execution_options(**{LOCK_TIMEOUT_OPTION: DDL_LOCK_TIMEOUT_MS})
    if engine.dialect.name != "postgresql":
        if cutoff is not None:
            _delete_in_batches(engine, report, cutoff=cutoff, batch=batch, pause_s=pause_s, sqlite=True)
        return report
    with engine.begin() as conn:
        if not partitions.is_partitioned(conn):
            # A failed conversion leaves a working, unpartitioned table: it is tried again, once per pass at most.
            if find_active(conn, JobKind.PARTITION_EVENTS) is None:
                enqueue(conn, JobKind.PARTITION_EVENTS)
                log.warning("events are not partitioned and no conversion is queued: queued one")
            return report
    with engine.connect() as conn:
        have = set(partitions.list_day_partitions(conn))
        today = partitions.day_of(now)
        first_kept = None if cutoff is None else partitions.day_of(cutoff)
        wanted = set(range(today - 1, today + AHEAD_DAYS + 1))
        wanted |= {d for d in partitions.days_in_default(conn, since_day=first_kept) if d <= today + AHEAD_DAYS}
    for day in sorted(wanted - have):
        with engine.begin() as conn:
            report.moved += partitions.ensure_day(conn, day)
        report.created.append(day)
    if first_kept is None or cutoff is None:
        return report
    for day in sorted(d for d in have if d < first_kept):
        with engine.begin() as conn:
            partitions.detach_day(conn, day)  # from here on no query reads the day; a crash leaves it detached
    with engine.connect() as conn:
        detached = partitions.list_detached_days(conn)
    for day in detached:
        after = 0
        while True:
            with engine.begin() as conn:
                last = event_retention.forget_ids_of_day(conn, day, after_pk=after, limit=batch)
            report.batches += 1
            if last is None:
                break
            after = last
            _pause(pause_s)
        with engine.begin() as conn:
            partitions.drop_day(conn, day)
        report.dropped.append(day)
    _delete_in_batches(engine, report, cutoff=cutoff, batch=batch, pause_s=pause_s, sqlite=False)
    if report.dropped or report.deleted:
        log.info("retention: dropped %d day partitions, deleted %d rows", len(report.dropped), report.deleted)
    return report


def _delete_fine_rollups(engine: Engine, report: PassReport, *, cutoff: int, batch: int, pause_s: float) -> None:
    while True:
        with engine.begin() as conn:
            gone = rollup_retention.delete_fine_before(conn, cutoff_ms=cutoff, limit=batch)
        report.fine_rollups_deleted += gone
        if gone < batch:
            return
        _pause(pause_s)


def _delete_in_batches(
    engine: Engine, report: PassReport, *, cutoff: int, batch: int, pause_s: float, sqlite: bool
) -> None:
    while True:
        with engine.begin() as conn:
            if sqlite:
                gone = event_retention.delete_events_before(conn, cutoff_ms=cutoff, limit=batch)
            else:
                gone = event_retention.delete_default_before(conn, cutoff_ms=cutoff, limit=batch)
        report.deleted += gone
        report.batches += 1
        if gone < batch:
            return
        _pause(pause_s)


def _pause(seconds: float) -> None:
    # SQLite has one writer: a pause between batches lets waiting ingest take the lock.
    time.sleep(seconds)


def start_event_partitions(services: Services) -> Callable[[], None]:
    """Start the duty on this process (it works only while holding the lease); returns its stop function."""
    settings = services.settings
    metrics = services.metrics
    if settings.event_partition_interval_s <= 0:
        return lambda: None
    pause = 0.02 if services.engine.dialect.name == "sqlite" else 0.0

    def work() -> None:
        maintain(
            services.engine,
            retention_days=settings.event_retention_days,
            pause_s=pause,
            fine_rollup_retention_hours=settings.fine_rollup_retention_hours,
        )

    duty = Duty(
        services.engine,
        NAME,
        work,
        interval_s=settings.event_partition_interval_s,
        lease_ttl_s=settings.lease_ttl_s,
        on_pass=lambda ok: metrics.loop_pass(NAME, ok=ok),
        on_held=lambda held: metrics.duty_held(NAME, held),
    )
    return duty.start()
