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

from sqlalchemy import Connection, text

from faultlens.jobs.queue import Job, JobKind, Step
from faultlens.store import event_batches, partitions
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

AHEAD_DAYS = 3  # as the leased duty (jobs/event_partitions.py): the coming days have partitions before they come


def _columns(conn: Connection) -> str:
    names = conn.execute(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum"
        ),
        {"t": partitions.STAGED_TABLE},
    ).scalars()
    return ", ".join(names)


def _first_kept_day(services: Services) -> int | None:
    """Days before this one get no partition (their rows go to the default partition, which retention empties)."""
    days = services.settings.event_retention_days
    if days <= 0:
        return None
    return partitions.day_of(now_ms() - int(days * partitions.DAY_MS))


def copy_range(conn: Connection, services: Services, *, after_pk: int, until_pk: int) -> int:
    """Copy the events with after_pk < pk <= until_pk into the staged table (giving their days partitions first)
    and their ids into event_ids; returns how many rows were copied."""
    bounds = "WHERE pk > :after AND pk <= :until"
    params = {"after": after_pk, "until": until_pk}
    found = conn.execute(text(f"SELECT DISTINCT occurred_at / {partitions.DAY_MS:d} FROM events {bounds}"), params)
    first_kept = _first_kept_day(services)
    for day in sorted(int(d) for d in found.scalars()):
        if first_kept is None or day >= first_kept:
            partitions.ensure_day(conn, day, parent=partitions.STAGED_TABLE)
    cols = _columns(conn)
    copied = conn.execute(
        text(f"INSERT INTO {partitions.STAGED_TABLE} ({cols}) SELECT {cols} FROM events {bounds}"), params
    ).rowcount
    conn.execute(
        text(f"INSERT INTO event_ids (tenant, id) SELECT tenant, id FROM events {bounds} ON CONFLICT DO NOTHING"),
        params,
    )
    return int(copied or 0)


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
            conn.execute(text(f"DROP TABLE IF EXISTS {partitions.STAGED_TABLE}"))
            partitions.build_partitioned(conn)
            today = partitions.day_of(now_ms())
            for day in range(today - 1, today + AHEAD_DAYS + 1):
                partitions.ensure_day(conn, day, parent=partitions.STAGED_TABLE)
        # The planner's row estimate: counting a large table would scan it inside this claim.
        estimate = conn.execute(
            text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass")
        )
        return {
            "params": {**job.params, "safe_pk": 0},
            "total": int(estimate.scalar() or 0),
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
        last = conn.execute(
            text(
                "SELECT max(pk) FROM (SELECT pk FROM events WHERE pk > :after AND pk <= :safe ORDER BY pk LIMIT :n) b"
            ),
            {"after": after, "safe": safe, "n": batch_size},
        ).scalar()
        until = safe if last is None else int(last)
        copied = copy_range(conn, services, after_pk=after, until_pk=until)
        return Step(examined=copied, checkpoint=until)

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        return None
