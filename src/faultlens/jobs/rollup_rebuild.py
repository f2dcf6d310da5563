"""Rollup rebuild: recompute the rollups table from events when it cannot be trusted (e.g. after migration 0003)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, select, text

from faultlens.jobs.queue import Job, JobKind, Step, enqueue, find_active
from faultlens.jobs.state import ROLLUPS_REBUILD_NEEDED, find_state, put_state, swap_state, write_lock
from faultlens.store import rollups
from faultlens.store.tables import events
from faultlens.store.tables import rollups as rollups_table

if TYPE_CHECKING:
    from faultlens.services import Services

NEEDED = "true"
QUEUED = "queued"
DONE = "false"

_COLUMNS = [
    events.c[name]
    for name in ("pk", "tenant", "occurred_at", "attempt", "source", "operation", "item_type", "status",
                 "failure_class", "failure_kind", "category", "is_actionable", "error_code")
]


def ensure_rollup_rebuild(engine: Engine) -> Job | None:
    """Enqueue the rebuild once when service_state asks for it; a database without events needs none."""
    with engine.connect() as conn:
        if find_state(conn, ROLLUPS_REBUILD_NEEDED) != NEEDED:
            return None
    with engine.begin() as conn:
        write_lock(conn)
        if find_state(conn, ROLLUPS_REBUILD_NEEDED) != NEEDED:
            return None  # another process got here first
        if conn.execute(select(events.c.pk).limit(1)).first() is None:
            conn.execute(delete(rollups_table))
            put_state(conn, ROLLUPS_REBUILD_NEEDED, DONE)
            return None
        put_state(conn, ROLLUPS_REBUILD_NEEDED, QUEUED)
        active = find_active(conn, JobKind.ROLLUP_REBUILD)
        if active is not None and "max_pk" not in active.params:
            return active  # not started yet: it will see everything this request is about
        return enqueue(conn, JobKind.ROLLUP_REBUILD)


class RollupRebuildHandler:
    """Delete every rollup, then fold in events up to the max pk seen at that moment, in pk batches.

    The delete and the reading of max(pk) happen in one transaction that no ingest can interleave with
    (SQLite: the write lock; PostgreSQL: a SHARE lock on events, which waits for in-flight inserts and
    holds new ones back until commit). Afterwards ingest adds exactly the events with pk > max_pk and
    this job exactly those with pk <= max_pk, so the final counts equal a full scan.
    """

    kind = JobKind.ROLLUP_REBUILD

    def blocked(self, job: Job, services: Services) -> str | None:
        return None

    def prepare(self, conn: Connection, job: Job, services: Services) -> dict[str, Any]:
        if "max_pk" in job.params:
            return {}
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE events IN SHARE MODE"))
        conn.execute(delete(rollups_table))
        max_pk = int(conn.execute(select(func.max(events.c.pk))).scalar() or 0)
        total = int(conn.execute(select(func.count()).select_from(events).where(events.c.pk <= max_pk)).scalar() or 0)
        return {"params": {**job.params, "max_pk": max_pk}, "total": total, "checkpoint": 0, "done": 0}

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        rows = [dict(r) for r in conn.execute(
            select(*_COLUMNS)
            .where(events.c.pk > job.checkpoint, events.c.pk <= int(job.params["max_pk"]))
            .order_by(events.c.pk)
            .limit(batch_size)
        ).mappings()]
        if not rows:
            return Step(finished=True)
        rollups.apply(conn, rows, +1)
        return Step(examined=len(rows), checkpoint=int(rows[-1]["pk"]))

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        # Only a queued request is cleared: a new request made meanwhile ("true") gets its own rebuild.
        swap_state(conn, ROLLUPS_REBUILD_NEEDED, QUEUED, DONE)
