"""Backfill: reclassify stored events with the active rules, batch by batch, keeping rollups exact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, update

from faultlens.jobs.queue import ACTIVE_STATES, Job, JobKind, JobState, Step, enqueue, find_active
from faultlens.jobs.state import ACTIVE_RULE_VERSION, find_state, put_state
from faultlens.store import rollups
from faultlens.store.tables import events, jobs
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

DERIVED = ("failure_kind", "failure_class", "is_actionable", "category", "retryable", "rule_name", "rule_version")
_BOOLS = ("is_actionable", "retryable")
_ROLLED_UP = ("failure_class", "failure_kind", "category", "is_actionable")  # derived fields in the rollup key
# What rollups key on, what the classifier reads, and the derived fields being replaced.
_COLUMNS = [
    events.c[name] for name in dict.fromkeys(("pk", *rollups.ROW_FIELDS, "http_status", "error_message", *DERIVED))
]
_IN_CHUNK = 1000  # pks per UPDATE: far below every driver's bound-parameter limit


def _derived(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(bool(row[n]) if n in _BOOLS else row[n] for n in DERIVED)


def reclassify_batch(conn: Connection, services: Services, *, after_pk: int, until_pk: int, limit: int) -> Step:
    """Reclassify events with after_pk < pk <= until_pk (at most `limit`), in the caller's transaction.

    Only rows whose derived fields change are written, and the rollups move by exactly those rows (old
    values out, new ones in, in one sorted upsert so concurrent ingest cannot deadlock against it).
    """
    rows = [
        dict(r)
        for r in conn.execute(
            select(*_COLUMNS).where(events.c.pk > after_pk, events.c.pk <= until_pk).order_by(events.c.pk).limit(limit)
        ).mappings()
    ]
    if not rows:
        return Step(finished=True)
    new_rows: list[dict[str, Any]] = []
    moved_old: list[dict[str, Any]] = []
    moved_new: list[dict[str, Any]] = []
    for row in rows:
        new = dict(row)
        services.pipeline.classify_row(new)
        if _derived(new) != _derived(row):
            new_rows.append(new)
            if any(new[n] != row[n] for n in _ROLLED_UP):
                moved_old.append(row)
                moved_new.append(new)
    if new_rows:
        # Changed rows mostly share their new derived values (a whole batch of successes is restamped
        # alike), so one UPDATE per distinct value set beats one per row.
        by_values: dict[tuple[Any, ...], list[int]] = {}
        for r in new_rows:
            by_values.setdefault(_derived(r), []).append(int(r["pk"]))
        for values, pks in by_values.items():
            for start in range(0, len(pks), _IN_CHUNK):
                conn.execute(
                    update(events)
                    .where(events.c.pk.in_(pks[start : start + _IN_CHUNK]))
                    .values(dict(zip(DERIVED, values, strict=True)))
                )
        counts, attempts = rollups.deltas(moved_old, -1)
        new_counts, new_attempts = rollups.deltas(moved_new, +1)
        counts.update(new_counts)  # Counter.update adds, keeping negative and zero results
        attempts.update(new_attempts)
        rollups.apply_deltas(conn, counts, attempts)
    return Step(examined=len(rows), changed=len(new_rows), checkpoint=int(rows[-1]["pk"]))


class BackfillHandler:
    kind = JobKind.BACKFILL

    def blocked(self, job: Job, services: Services) -> str | None:
        version = services.pipeline.classifier.version
        if job.rule_version != version:
            return f"the job is for rule version {job.rule_version}; this process classifies with {version}"
        return None

    def prepare(self, conn: Connection, job: Job, services: Services) -> dict[str, Any]:
        if "until_pk" in job.params:
            return {}
        # Rows after this were ingested once the new rules were live (the job is claimed at least a poll
        # interval after activation), so the backfill has a fixed end and a meaningful total.
        until = int(conn.execute(select(func.max(events.c.pk))).scalar() or 0)
        total = int(conn.execute(select(func.count()).select_from(events).where(events.c.pk <= until)).scalar() or 0)
        return {"params": {**job.params, "until_pk": until}, "total": total}

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        until = int(job.params["until_pk"])
        step = reclassify_batch(conn, services, after_pk=job.checkpoint, until_pk=until, limit=batch_size)
        if step.finished and not job.params.get("tail_checked"):
            # An ingest batch classified just before the swap may have committed after until_pk was read:
            # the rows that arrived meanwhile are looked at once more (most are already current: no writes).
            latest = int(conn.execute(select(func.max(events.c.pk))).scalar() or 0)
            extra = int(
                conn.execute(
                    select(func.count()).select_from(events).where(events.c.pk > until, events.c.pk <= latest)
                ).scalar()
                or 0
            )
            return Step(
                checkpoint=job.checkpoint,
                params={"until_pk": max(until, latest), "tail_checked": True},
                more_total=extra,
            )
        return step

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        return None


def request_backfill(conn: Connection, version: str, *, force: bool = False) -> Job | None:
    """Record `version` as the one history is (being) classified with; enqueue a backfill when it changed.

    Call inside a transaction that holds `state.write_lock`. Returns the backfill job for `version`
    (new or already queued), or None when history needs none. Backfills queued for another version are
    superseded: they would stamp rows with rules no longer active.
    """
    stored = find_state(conn, ACTIVE_RULE_VERSION)
    active = find_active(conn, JobKind.BACKFILL)
    if stored == version and not force:
        return active if active is not None and active.rule_version == version else None
    if stored != version:
        put_state(conn, ACTIVE_RULE_VERSION, version)
    conn.execute(
        update(jobs)
        .where(jobs.c.kind == JobKind.BACKFILL.value, jobs.c.state.in_(ACTIVE_STATES))
        .values(
            state=JobState.FAILED.value, finished_at=now_ms(), error=f"superseded: rule version {version} was activated"
        )
    )
    if conn.execute(select(events.c.pk).limit(1)).first() is None:
        return None  # nothing stored yet: every event will be classified by `version` at ingest
    return enqueue(conn, JobKind.BACKFILL, rule_version=version, params={"previous_version": stored})
