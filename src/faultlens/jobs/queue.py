"""The jobs table as a queue: job records, enqueueing, lookup and the API's job shape."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import Connection, or_, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.errors import JobNotFound
from faultlens.store.tables import jobs
from faultlens.timeutil import ms_to_rfc3339, now_ms

if TYPE_CHECKING:
    from faultlens.services import Services


class JobKind(StrEnum):
    BACKFILL = "backfill"
    ROLLUP_REBUILD = "rollup_rebuild"


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


def enqueue(
    conn: Connection,
    kind: JobKind,
    *,
    rule_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    tenant: str | None = None,
) -> Job:
    now = now_ms()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": kind.value,
        "tenant": tenant,
        "state": JobState.PENDING.value,
        "rule_version": rule_version,
        "params": orjson.dumps(dict(params or {})).decode(),
        "done": 0,
        "total": 0,
        "checkpoint": 0,
        "created_at": now,
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
    kind: JobKind,
    *,
    visible_to: str | None = None,
    only_tenant: str | None = None,
    global_only: bool = False,
) -> Job | None:
    """The newest pending or running job of a kind (filtered as list_jobs)."""
    found = list_jobs(
        conn,
        kind=kind.value,
        states=ACTIVE_STATES,
        limit=1,
        visible_to=visible_to,
        only_tenant=only_tenant,
        global_only=global_only,
    )
    return found[0] if found else None


def job_to_api(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        # "global": the job covers every tenant and is shown to all of them as read-only context.
        "scope": "global" if job.tenant is None else "tenant",
        "tenant": job.tenant,
        "rule_version": job.rule_version,
        "progress": {"done": job.done, "total": max(job.total, job.done), "changed": int(job.params.get("changed", 0))},
        "created_at": ms_to_rfc3339(job.created_at),
        "started_at": ms_to_rfc3339(job.started_at),
        "finished_at": ms_to_rfc3339(job.finished_at),
        "error": job.error,
    }


@dataclass(frozen=True)
class Step:
    """What one batch did: rows examined and changed, the new checkpoint, or that the job is finished."""

    examined: int = 0
    changed: int = 0
    checkpoint: int = 0
    finished: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # merged into the job's params
    more_total: int = 0  # rows discovered beyond the planned total


class Handler(Protocol):
    """One job kind. Every method runs inside the runner's transaction except `blocked`."""

    kind: JobKind

    def blocked(self, job: Job, services: Services) -> str | None:
        """Why this process must not work the job now (it stays pending), or None."""

    def prepare(self, conn: Connection, job: Job, services: Services) -> dict[str, Any]:
        """On the first claim: column values to set (params, total). Empty on a resume."""

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        """Process the next batch after `job.checkpoint`."""

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        """Side effects of completion, committed with the job's `done` state."""
