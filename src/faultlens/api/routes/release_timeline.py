"""GET /api/v1/releases/timeline: one release's gate records for the Releases page, always the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api.deps import Reader, ServicesDep
from faultlens.api.schemas import error_responses
from faultlens.api.schemas.release_timeline import ReleaseTimeline
from faultlens.triage.release_timeline import release_timeline

router = APIRouter(prefix="/api/v1/releases", tags=["releases"])


@router.get(
    "/timeline",
    response_model=ReleaseTimeline,
    responses=error_responses(404),
    summary="One release's canary verdicts, rollouts, rollbacks, replays and readiness reports, newest first",
)
def timeline(
    principal: Reader,
    services: ServicesDep,
    release: Annotated[str, Query(min_length=1, max_length=128, description="the release, as events carry it")],
    environment: Annotated[str | None, Query(min_length=1, max_length=64, description="only this environment")] = None,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return release_timeline(conn, tenant=principal.tenant, release=release, environment=environment)
