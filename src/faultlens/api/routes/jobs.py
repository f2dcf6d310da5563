"""Jobs routes: background jobs (backfill, rollup rebuild) with their progress, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api.deps import Reader, ServicesDep
from faultlens.jobs.queue import JobKind, JobState, get_job, job_to_api, list_jobs

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", summary="Background jobs, newest first")
def jobs_list(
    principal: Reader,
    services: ServicesDep,
    kind: JobKind | None = None,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        found = list_jobs(
            conn, kind=kind.value if kind else None, states=(state.value,) if state else None, limit=limit
        )
    return {"items": [job_to_api(j) for j in found]}


@router.get("/{job_id}", summary="One background job and its progress")
def job_detail(job_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return job_to_api(get_job(conn, job_id))
