"""The job queue: job kinds, enqueueing, the handler protocol and the API's job shape (rows: store/jobs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from faultlens.store.jobs import ACTIVE_STATES, Job, JobState, create_job, find_active, find_job, get_job, list_jobs
from faultlens.timeutil import ms_to_rfc3339

if TYPE_CHECKING:
    from faultlens.services import Services

# The job record and its lookups live with the table (store/jobs.py); the queue offers them with the job kinds.
__all__ = [
    "ACTIVE_STATES",
    "Handler",
    "Job",
    "JobKind",
    "JobState",
    "Step",
    "enqueue",
    "find_active",
    "find_job",
    "get_job",
    "job_to_api",
    "list_jobs",
]


class JobKind(StrEnum):
    BACKFILL = "backfill"
    ROLLUP_REBUILD = "rollup_rebuild"
    PARTITION_EVENTS = "partition_events"  # PostgreSQL: an events table filled before migration 0010, partitioned


def enqueue(
    conn: Connection,
    kind: JobKind,
    *,
    rule_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    tenant: str | None = None,
) -> Job:
    return create_job(conn, kind=kind.value, rule_version=rule_version, params=params, tenant=tenant)


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
