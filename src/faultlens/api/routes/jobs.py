"""Jobs routes: the caller's tenant's background jobs and the global ones (backfill, rollup rebuild), newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep
from faultlens.jobs.queue import JobKind, JobState, get_job, job_to_api, list_jobs

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=schemas.JobList, summary="Background jobs, newest first")
def jobs_list(
    principal: Reader,
    services: ServicesDep,
    kind: JobKind | None = None,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        found = list_jobs(
            conn,
            kind=kind.value if kind else None,
            states=(state.value,) if state else None,
            limit=limit,
            visible_to=principal.tenant,
        )
    return {"items": [job_to_api(j) for j in found]}


@router.get(
    "/{job_id}",
    response_model=schemas.Job,
    responses=schemas.error_responses(404),
    summary="One background job and its progress",
)
def job_detail(job_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return job_to_api(get_job(conn, job_id, visible_to=principal.tenant))
