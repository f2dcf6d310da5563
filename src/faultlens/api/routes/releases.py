"""GET /api/v1/releases: the releases a tenant's events carried in a window, their counts and deploy markers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api.deps import Reader, ServicesDep, WindowDep
from faultlens.api.schemas.release_list import ReleaseList
from faultlens.triage import releases
from faultlens.triage.overview import describe_window

router = APIRouter(prefix="/api/v1", tags=["releases"])

_ENVIRONMENT = Annotated[str | None, Query(min_length=1, max_length=64, description="only this environment")]
_SOURCE = Annotated[str | None, Query(min_length=1, max_length=128, description="only this source")]


@router.get(
    "/releases",
    response_model=ReleaseList,
    summary="Releases seen in the window (default 24h), newest first, with counts and deploy markers",
)
def list_releases(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    environment: _ENVIRONMENT = None,
    source: _SOURCE = None,
) -> dict[str, Any]:
    tenant = principal.tenant
    with services.engine.connect() as conn:
        found = releases.list_releases(conn, tenant=tenant, window=window, environment=environment, source=source)
        markers = releases.deploy_markers(conn, tenant=tenant, window=window, environment=environment, source=source)
    return {
        "window": describe_window(window),
        "filters": {"environment": environment, "source": source},
        "releases": found,
        "markers": markers,
    }
