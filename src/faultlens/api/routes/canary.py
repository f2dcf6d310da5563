"""Canary analysis routes (/api/v1/releases/canary/): analyse a canary against its baseline, the same answered for
Argo Rollouts' Web metric provider, and the stored analyses. Always the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api.deps import Admin, Principal, Reader, ServicesDep
from faultlens.api.schemas import error_responses
from faultlens.api.schemas import releases as s
from faultlens.releases import analysis
from faultlens.services import Services

router = APIRouter(prefix="/api/v1/releases/canary", tags=["releases"])


def _arms(body: s.CanaryBody, principal: Principal, services: Services) -> dict[str, Any]:
    """The service call's keyword arguments shared by both analysis routes."""
    window = analysis.resolve_window(services.settings, window=body.window, since=body.since, until=body.until)
    return {
        "tenant": principal.tenant,
        "baseline": body.baseline,
        "canary": body.canary,
        "environment": body.environment,
        "source": body.source,
        "since": window.since,
        "until": window.until,
        "settings": services.settings,
        "requested_by": principal.key_id or "anonymous",
    }


@router.post(
    "/analyze",
    response_model=s.Analysis,
    summary="Judge a canary release against its baseline over a window; the stored analysis",
)
def analyze(body: s.CanaryBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return analysis.analyze(services.engine, **_arms(body, principal, services))


@router.post(
    "/argo",
    response_model=s.ArgoGate,
    summary="The same analysis for Argo Rollouts' Web metric provider: passed / failed / inconclusive flags",
)
def argo(body: s.CanaryBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return analysis.argo_gate(services.engine, **_arms(body, principal, services))


@router.get("/analyses", response_model=s.AnalysisList, summary="Stored canary analyses, newest first")
def analyses_list(
    principal: Reader,
    services: ServicesDep,
    canary: Annotated[str | None, Query(min_length=1, max_length=128, description="only this canary release")] = None,
    rollout_id: Annotated[str | None, Query(min_length=1, max_length=36)] = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    items = analysis.list_analyses(
        services.engine,
        tenant=principal.tenant,
        canary=canary,
        rollout_id=rollout_id,
        environment=environment,
        limit=limit,
    )
    return {"items": items}


@router.get(
    "/analyses/{analysis_id}",
    response_model=s.Analysis,
    responses=error_responses(404),
    summary="One stored canary analysis",
)
def analysis_detail(analysis_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return analysis.get_analysis(services.engine, tenant=principal.tenant, analysis_id=analysis_id)
