"""Rollup rebuild: recompute the rollups table from events when it cannot be trusted (e.g. after migration 0003)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from faultlens.jobs.queue import Job, JobKind, Step, enqueue, find_active
from faultlens.store import event_batches, releases_seen, rollup_reads, rollup_shapes, rollup_writes
from faultlens.store.rollup_resets import clear_rollups
from faultlens.store.state import ROLLUPS_REBUILD_NEEDED, find_state, save_state, swap_state, write_lock

if TYPE_CHECKING:
    from faultlens.services import Services

NEEDED = "true"
QUEUED = "queued"
DONE = "false"

_COLUMNS = ("pk", *rollup_shapes.ROW_FIELDS)
# The attribute rows alone (migration 0004 on a database with events): service_state values of that request;
# the release rows alone (migration 0012) and the group rows alone (migration 0016) use the same values under their
# own keys.
ATTRIBUTES_NEEDED, ATTRIBUTES_READY = "needed", "ready"


def ensure_rollup_rebuild(engine: Engine) -> Job | None:
    """Enqueue what service_state asks for: a full rebuild, attribute, release or group rows only, or nothing;
    returns the (first) job."""
    full = _ensure(engine, ROLLUPS_REBUILD_NEEDED, NEEDED, DONE, shapes=None)
    attributes = _ensure(
        engine,
        rollup_reads.ATTRIBUTE_ROLLUPS_STATE,
        ATTRIBUTES_NEEDED,
        ATTRIBUTES_READY,
        shapes=[rollup_shapes.ATTRIBUTE_SHAPE],
    )
    releases = _ensure(
        engine,
        rollup_reads.RELEASE_ROLLUPS_STATE,
        ATTRIBUTES_NEEDED,
        ATTRIBUTES_READY,
        shapes=[rollup_shapes.RELEASE_SHAPE],
    )
    groups = _ensure(
        engine,
        rollup_reads.GROUP_ROLLUPS_STATE,
        ATTRIBUTES_NEEDED,
        ATTRIBUTES_READY,
        shapes=[rollup_shapes.GROUP_SHAPE],
    )
    return full or attributes or releases or groups


def request_rollup_rebuild(engine: Engine) -> Job | None:
    """Ask for a full rebuild (an operator's request); returns the job, or None when there are no events."""
    with engine.begin() as conn:
        save_state(conn, ROLLUPS_REBUILD_NEEDED, NEEDED)
    return ensure_rollup_rebuild(engine)


def _ensure(engine: Engine, key: str, needed: str, done: str, *, shapes: list[int] | None) -> Job | None:
    """Turn state `key` from `needed` into a queued rebuild of `shapes` (all when None), once across processes;
    a database without events needs none and is `done` at once."""
    with engine.connect() as conn:
        if find_state(conn, key) != needed:
            return None
    with engine.begin() as conn:
        write_lock(conn)
        if find_state(conn, key) != needed:
            return None  # another process got here first
        if not event_batches.any_events(conn):
            clear_rollups(conn, shapes=shapes)
            save_state(conn, key, done)
            return None
        save_state(conn, key, QUEUED)
        if shapes is None:
            active = find_active(conn, JobKind.ROLLUP_REBUILD)
            if active is not None and "max_pk" not in active.params and "shapes" not in active.params:
                return active  # a full rebuild not started yet: it will see everything this request is about
        return enqueue(
            conn,
            JobKind.ROLLUP_REBUILD,
            params={"state": key, "done": done} | ({"shapes": shapes} if shapes is not None else {}),
        )


class RollupRebuildHandler:
    """Delete the rollups (of the job's shapes, or all), then fold in events up to the max pk seen at that
    moment, in pk batches.

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
        event_batches.hold_back_ingest(conn)
        clear_rollups(conn, shapes=job.params.get("shapes"))
        max_pk = event_batches.max_event_pk(conn)
        total = event_batches.count_events_between(conn, until_pk=max_pk)
        return {"params": {**job.params, "max_pk": max_pk}, "total": total, "checkpoint": 0, "done": 0}

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        rows = event_batches.list_events_after(
            conn, columns=_COLUMNS, after_pk=job.checkpoint, until_pk=int(job.params["max_pk"]), limit=batch_size
        )
        if not rows:
            return Step(finished=True)
        shapes = job.params.get("shapes") or rollup_shapes.ALL_SHAPES
        rollup_writes.apply(conn, rows, +1, shapes=shapes)
        if rollup_shapes.RELEASE_SHAPE in shapes:
            # The registry of releases comes with their rows (min/max folds: events seen twice change nothing).
            releases_seen.record(conn, rows)
        return Step(examined=len(rows), checkpoint=int(rows[-1]["pk"]))

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        # Only a queued request is cleared: a new request made meanwhile ("needed") gets its own rebuild.
        key = job.params.get("state", ROLLUPS_REBUILD_NEEDED)
        swap_state(conn, key, expected=QUEUED, value=job.params.get("done", DONE))
