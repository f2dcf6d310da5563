"""The jobs table: job records, and the queue's reads and writes (enqueue, claim, heartbeat, progress, end)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from faultlens.errors import JobNotFound
from faultlens.store.tables import jobs
from faultlens.timeutil import now_ms


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


ACTIVE_STATES = (JobState.PENDING.value, JobState.RUNNING.value)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: str
    rule_version: str | None
    done: int
    total: int
    checkpoint: int
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    heartbeat_at: int | None = None
    owner: str | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # The tenant whose events the job touches; None for a job over every tenant (a global rule change, rollups).
    tenant: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            state=row["state"],
            rule_version=row["rule_version"],
            done=int(row["done"] or 0),
            total=int(row["total"] or 0),
            checkpoint=int(row["checkpoint"] or 0),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            owner=row["owner"],
            error=row["error"],
            params=orjson.loads(row["params"]) if row["params"] else {},
            tenant=row["tenant"],
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def ratio(self) -> float:
        if self.state == JobState.DONE:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0


def create_job(
    conn: Connection,
    *,
    kind: str,
    rule_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    tenant: str | None = None,
) -> Job:
    """A new pending job."""
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": kind,
        "tenant": tenant,
        "state": JobState.PENDING.value,
        "rule_version": rule_version,
        "params": orjson.dumps(dict(params or {})).decode(),
        "done": 0,
        "total": 0,
        "checkpoint": 0,
        "created_at": now_ms(),
    }
    conn.execute(jobs.insert().values(**values))
    return Job.from_row(
        {**values, "started_at": None, "finished_at": None, "heartbeat_at": None, "owner": None, "error": None}
    )


def _visible(tenant: str) -> ColumnElement[bool]:
    # A tenant sees its own jobs and the global ones (which touch its events too), never another tenant's.
    return or_(jobs.c.tenant == tenant, jobs.c.tenant.is_(None))


def find_job(conn: Connection, job_id: str, *, visible_to: str | None = None) -> Job | None:
    stmt = select(jobs).where(jobs.c.id == job_id)
    if visible_to is not None:
        stmt = stmt.where(_visible(visible_to))
    row = conn.execute(stmt).mappings().first()
    return None if row is None else Job.from_row(row)


def get_job(conn: Connection, job_id: str, *, visible_to: str | None = None) -> Job:
    job = find_job(conn, job_id, visible_to=visible_to)
    if job is None:
        raise JobNotFound(f"no job with id {job_id!r}", details={"id": job_id})
    return job


def list_jobs(
    conn: Connection,
    *,
    kind: str | None = None,
    states: tuple[str, ...] | None = None,
    limit: int = 100,
    visible_to: str | None = None,
    only_tenant: str | None = None,
    global_only: bool = False,
) -> list[Job]:
    """Newest first: every job, or those `visible_to` a tenant (its own and the global ones), or only one
    tenant's (`only_tenant`), or only the global ones."""
    stmt = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
    if kind is not None:
        stmt = stmt.where(jobs.c.kind == kind)
    if states is not None:
        stmt = stmt.where(jobs.c.state.in_(states))
    if visible_to is not None:
        stmt = stmt.where(_visible(visible_to))
    if only_tenant is not None:
        stmt = stmt.where(jobs.c.tenant == only_tenant)
    if global_only:
        stmt = stmt.where(jobs.c.tenant.is_(None))
    return [Job.from_row(r) for r in conn.execute(stmt).mappings()]


def find_active(
    conn: Connection,
    kind: str,
    *,
    visible_to: str | None = None,
    only_tenant: str | None = None,
    global_only: bool = False,
) -> Job | None:
    """The newest pending or running job of a kind (filtered as list_jobs)."""
    found = list_jobs(
        conn,
        kind=kind,
        states=ACTIVE_STATES,
        limit=1,
        visible_to=visible_to,
        only_tenant=only_tenant,
        global_only=global_only,
    )
    return found[0] if found else None


def list_oldest_active(conn: Connection, *, kinds: Sequence[str], limit: int = 100) -> list[Job]:
    """Pending and running jobs of these kinds, oldest first: the runner's candidates."""
    rows = conn.execute(
        select(jobs)
        .where(jobs.c.state.in_(ACTIVE_STATES), jobs.c.kind.in_(list(kinds)))
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(limit)
    ).mappings()
    return [Job.from_row(r) for r in rows]


def list_running(conn: Connection, *, kinds: Sequence[str], other_than: str) -> list[Job]:
    """Jobs of these kinds marked running, except `other_than` (their owners may be alive or not)."""
    rows = conn.execute(
        select(jobs).where(
            jobs.c.kind.in_(list(kinds)), jobs.c.state == JobState.RUNNING.value, jobs.c.id != other_than
        )
    ).mappings()
    return [Job.from_row(r) for r in rows]


def take_job(conn: Connection, job: Job, *, owner: str, now: int) -> bool:
    """Compare-and-set: mark `job` running for `owner` if its row still holds what `job` read; True when taken."""
    same_owner = jobs.c.owner.is_(None) if job.owner is None else jobs.c.owner == job.owner
    beat = jobs.c.heartbeat_at
    same_beat = beat.is_(None) if job.heartbeat_at is None else beat == job.heartbeat_at
    won = conn.execute(
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.state == job.state, same_owner, same_beat)
        .values(
            state=JobState.RUNNING.value,
            owner=owner,
            heartbeat_at=now,
            error=None,
            started_at=func.coalesce(jobs.c.started_at, now),
        )
    ).rowcount
    return bool(won == 1)


def beat_job(conn: Connection, job_id: str, *, owner: str, now: int) -> bool:
    """Renew the heartbeat of a job `owner` runs; False when the job is no longer its own (or no longer running).

    On PostgreSQL the row stays locked until the transaction ends."""
    done = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.state == JobState.RUNNING.value)
        .values(heartbeat_at=now)
    ).rowcount
    return bool(done == 1)


def update_job(conn: Connection, job_id: str, values: Mapping[str, Any]) -> None:
    """Set columns of a job (`params` as a mapping; it is stored as JSON)."""
    values = dict(values)
    if "params" in values:
        values["params"] = orjson.dumps(values["params"]).decode()
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def release_job(conn: Connection, job_id: str, *, owner: str) -> None:
    """Hand a job `owner` runs back to the queue (pending, no owner)."""
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.owner == owner, jobs.c.state == JobState.RUNNING.value)
        .values(state=JobState.PENDING.value, owner=None)
    )


def fail_job(conn: Connection, job_id: str, *, owner: str | None, message: str) -> None:
    """Mark a pending or running job failed (only if `owner` still has it, when given)."""
    where = [jobs.c.id == job_id, jobs.c.state.in_(ACTIVE_STATES)]
    if owner is not None:
        where.append(jobs.c.owner == owner)
    conn.execute(
        update(jobs).where(*where).values(state=JobState.FAILED.value, error=message[:2000], finished_at=now_ms())
    )


def fail_active_jobs(conn: Connection, *, kind: str, message: str, tenant: str | None = None) -> None:
    """Mark every pending or running job of a kind failed (only one tenant's when `tenant` is given)."""
    where = [jobs.c.kind == kind, jobs.c.state.in_(ACTIVE_STATES)]
    if tenant is not None:
        where.append(jobs.c.tenant == tenant)
    conn.execute(update(jobs).where(*where).values(state=JobState.FAILED.value, finished_at=now_ms(), error=message))


def count_active_by_kind(conn: Connection) -> dict[tuple[str, str], int]:
    """(kind, state) -> jobs, for pending and running jobs."""
    rows = conn.execute(
        select(jobs.c.kind, jobs.c.state, func.count())
        .where(jobs.c.state.in_(ACTIVE_STATES))
        .group_by(jobs.c.kind, jobs.c.state)
    )
    return {(kind, state): int(n) for kind, state, n in rows}


def find_newest(conn: Connection, kind: str) -> Job | None:
    """The newest job of a kind, whatever its state."""
    found = list_jobs(conn, kind=kind, limit=1)
    return found[0] if found else None


def count_finished(conn: Connection, *, visible_to: str, start: int, end: int) -> dict[str, int]:
    """state -> jobs visible to a tenant that finished (done or failed) in [start, end)."""
    rows = conn.execute(
        select(jobs.c.state, func.count())
        .where(
            _visible(visible_to),
            jobs.c.state.in_((JobState.DONE.value, JobState.FAILED.value)),
            jobs.c.finished_at >= start,
            jobs.c.finished_at < end,
        )
        .group_by(jobs.c.state)
    )
    return {str(state): int(n) for state, n in rows}


def find_oldest_pending_created_at(conn: Connection, *, visible_to: str) -> int | None:
    """When the oldest pending job visible to a tenant was created; None when none is pending."""
    found = conn.execute(
        select(func.min(jobs.c.created_at)).where(_visible(visible_to), jobs.c.state == JobState.PENDING.value)
    ).scalar()
    return None if found is None else int(found)
