"""Stats routes: the failure summary and the error distribution by scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep, WindowDep
from faultlens.api.filters import ReleaseDep, SourceDep
from faultlens.model import Scope
from faultlens.triage import stats

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get(
    "/errors", response_model=schemas.ErrorDistribution, summary="Failure counts by failure_kind, for one scope"
)
def errors(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    source: SourceDep,
    releases: ReleaseDep,
    scope: Scope = Scope.SERVICE,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return stats.error_distribution(
            conn,
            tenant=principal.tenant,
            window=window,
            scope=scope,
            source=source.source,
            release=releases.release,
            environment=releases.environment,
        )


@router.get(
    "/summary", response_model=schemas.Summary, summary="Totals by failure class and the actionable failure rate"
)
def summary(
    principal: Reader, services: ServicesDep, window: WindowDep, source: SourceDep, releases: ReleaseDep
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return stats.summary(
            conn,
            tenant=principal.tenant,
            window=window,
            source=source.source,
            release=releases.release,
            environment=releases.environment,
        )
