"""Conversion of a filled PostgreSQL events table into day partitions: a resumable job, never a start-up step.

Migration 0010 queues it when events already has rows. The job builds the partitioned table beside the old one
(store/partitions.py STAGED_TABLE) and copies rows in pk order from its checkpoint, with their ids into
event_ids, while ingest goes on writing to the old table. It copies only up to a "safe" pk: one read while
ingest was held back (event_batches.hold_back_ingest waits for every in-flight insert), so no insert that drew
a smaller pk can still commit behind the copy. When the copy has caught up, the tail is copied under that same
lock and the names are swapped in the same short transaction. A stopped or killed runner resumes at the
checkpoint; every batch commits its rows with its checkpoint.

Backfills rewrite events in place, so the runner does not start one while this job is active (jobs/runner.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from faultlens.jobs.queue import Job, JobKind, Step
from faultlens.store import event_batches, partitions
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

AHEAD_DAYS = 3  # as the leased duty (jobs/event_partitions.py): the coming days have partitions before they come


def _first_kept_day(services: Services) -> int | None:
    """Days before this one get no partition (their rows go to the default partition, which retention empties)."""
    days = services.settings.event_retention_days
    if days <= 0:
        return None
    return partitions.day_of(now_ms() - int(days * partitions.DAY_MS))


def copy_range(conn: Connection, services: Services, *, after_pk: int, until_pk: int) -> int:
    """Copy the events with after_pk < pk <= until_pk into the staged table (giving their days partitions first)
    and their ids into event_ids; returns how many rows were copied."""
    first_kept = _first_kept_day(services)
    for day in partitions.days_in_pk_range(conn, after_pk=after_pk, until_pk=until_pk):
        if first_kept is None or day >= first_kept:
            partitions.ensure_day(conn, day, parent=partitions.STAGED_TABLE)
    return partitions.copy_pk_range(conn, after_pk=after_pk, until_pk=until_pk)


class PartitionEventsHandler:
    kind = JobKind.PARTITION_EVENTS

    def blocked(self, job: Job, services: Services) -> str | None:
        if services.engine.dialect.name != "postgresql":
            return "events are partitioned on PostgreSQL only"
        return None

    def prepare(self, conn: Connection, job: Job, services: Services) -> dict[str, Any]:
        if "safe_pk" in job.params:
            return {}
        if not partitions.is_partitioned(conn):
            # A staged table of an earlier, failed attempt holds an unknown part of the rows: start over.
            partitions.drop_staged(conn)
            partitions.build_partitioned(conn)
            today = partitions.day_of(now_ms())
            for day in range(today - 1, today + AHEAD_DAYS + 1):
                partitions.ensure_day(conn, day, parent=partitions.STAGED_TABLE)
        return {
            "params": {**job.params, "safe_pk": 0},
            "total": partitions.estimated_events(conn),  # an estimate: counting would scan it inside this claim
            "checkpoint": 0,
            "done": 0,
        }

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        if partitions.is_partitioned(conn):
            return Step(finished=True)  # already swapped (a runner that died after committing the swap)
        after = job.checkpoint
        safe = int(job.params["safe_pk"])
        if after >= safe:
            # Caught up with the last safe pk: hold ingest back until this batch commits and read a new one.
            event_batches.hold_back_ingest(conn)
            top = event_batches.max_event_pk(conn)
            if top - after > batch_size:
                return Step(checkpoint=after, params={"safe_pk": top})
            # The tail is short: copy it and swap, still holding ingest back.
            copied = copy_range(conn, services, after_pk=after, until_pk=top)
            partitions.swap_in(conn)
            return Step(examined=copied, checkpoint=top, finished=True)
        last = partitions.pk_after(conn, after_pk=after, until_pk=safe, limit=batch_size)
        until = safe if last is None else last
        copied = copy_range(conn, services, after_pk=after, until_pk=until)
        return Step(examined=copied, checkpoint=until)

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        return None
