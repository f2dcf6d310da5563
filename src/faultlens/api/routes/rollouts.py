"""Rollouts and rollbacks (/api/v1/releases/rollouts, /api/v1/releases/rollbacks): start, analyse, promote, abort,
the deploy tool's status gate, confirming a rollback's recovery, and rollback drills' records and reports. Always the
caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from faultlens.api.deps import Admin, Principal, Reader, ServicesDep
from faultlens.api.schemas import error_responses
from faultlens.api.schemas import rollouts as s
from faultlens.releases import rollouts
from faultlens.timeutil import parse_rfc3339_ms

router = APIRouter(prefix="/api/v1/releases", tags=["releases"])

RolloutState = Literal["running", "rolled_back", "promoted", "aborted"]
Name = Annotated[str | None, Query(min_length=1, max_length=128)]


def _who(principal: Principal) -> str:
    return principal.key_id or "anonymous"


@router.post(
    "/rollouts",
    response_model=s.Rollout,
    status_code=201,
    responses=error_responses(409),
    summary="Start a rollout: its canary is analysed against the baseline every interval",
)
def rollout_start(body: s.RolloutBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
    return rollouts.start_rollout(
        services.engine,
        tenant=principal.tenant,
        release=body.release,
        baseline=body.baseline,
        environment=body.environment,
        source=body.source,
        ratio=body.ratio if body.ratio is not None else settings.release_canary_ratio,
        interval_min=body.interval_min if body.interval_min is not None else settings.release_canary_duration_min,
        max_failures=body.max_failures if body.max_failures is not None else settings.release_rollback_after_failures,
        created_by=_who(principal),
    )


@router.get("/rollouts", response_model=s.RolloutList, summary="Rollouts, newest first")
def rollout_list(
    principal: Reader,
    services: ServicesDep,
    release: Name = None,
    state: RolloutState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return rollouts.list_rollouts(services.engine, tenant=principal.tenant, release=release, state=state, limit=limit)


@router.get(
    "/rollouts/{rollout_id}",
    response_model=s.RolloutDetail,
    responses=error_responses(404),
    summary="One rollout with its analyses, rollbacks and whether its release is blocked",
)
def rollout_detail(rollout_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return rollouts.rollout_detail(services.engine, tenant=principal.tenant, rollout_id=rollout_id)


@router.get(
    "/rollouts/{rollout_id}/status",
    response_model=s.RolloutStatus,
    responses=error_responses(404),
    summary="The rollout's decision for a deploy tool's gate (Argo Rollouts: result.rollback == false)",
)
def rollout_status(rollout_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return rollouts.rollout_status(services.engine, tenant=principal.tenant, rollout_id=rollout_id)


@router.post(
    "/rollouts/{rollout_id}/analyze",
    response_model=s.AnalyzeOutcome,
    responses=error_responses(404, 409),
    summary="Analyse a running rollout over its last interval now, and decide",
)
def rollout_analyze(rollout_id: str, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return rollouts.analyze_rollout(
        services.engine, services.settings, tenant=principal.tenant, rollout_id=rollout_id, requested_by=_who(principal)
    )


@router.post(
    "/rollouts/{rollout_id}/promote",
    response_model=s.Rollout,
    responses=error_responses(404, 409),
    summary="Promote a running rollout (409 once decided)",
)
def rollout_promote(rollout_id: str, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return rollouts.promote(services.engine, tenant=principal.tenant, rollout_id=rollout_id, by=_who(principal))


@router.post(
    "/rollouts/{rollout_id}/abort",
    response_model=s.Rollout,
    responses=error_responses(404, 409),
    summary="Abort a running rollout (409 once decided)",
)
def rollout_abort(rollout_id: str, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return rollouts.abort(services.engine, tenant=principal.tenant, rollout_id=rollout_id, by=_who(principal))


@router.get("/rollbacks", response_model=s.RollbackList, summary="Rollbacks (drills included), newest first")
def rollback_list(
    principal: Reader,
    services: ServicesDep,
    release: Name = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    source: Name = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return rollouts.list_rollbacks(
        services.engine, tenant=principal.tenant, release=release, environment=environment, source=source, limit=limit
    )


@router.post(
    "/rollbacks/drills",
    response_model=s.Rollback,
    status_code=201,
    summary="Record a rollback drill's result and its report (readiness' rollback check reads it)",
)
def rollback_drill_record(body: s.DrillRecordBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return rollouts.record_drill(
        services.engine,
        tenant=principal.tenant,
        release=body.release,
        environment=body.environment,
        source=body.source,
        baseline=body.baseline,
        created_by=_who(principal),
        decided_at=parse_rfc3339_ms(body.decided_at),
        completed_at=None if body.completed_at is None else parse_rfc3339_ms(body.completed_at),
        recovered=body.recovered,
        detail="recorded by a rollback drill; its report: GET /api/v1/releases/rollbacks/{id}/report",
        deadline_minutes=services.settings.rollback_max_minutes,
        report=body.report.text,
    )


@router.get(
    "/rollbacks/{rollback_id}/report",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}}, **error_responses(404)},
    summary="The markdown report a rollback drill stored with its record (404 when it has none)",
)
def rollback_report(rollback_id: str, principal: Reader, services: ServicesDep) -> Response:
    text = rollouts.rollback_report(services.engine, tenant=principal.tenant, rollback_id=rollback_id)
    return Response(text, media_type="text/markdown; charset=utf-8")


@router.get(
    "/rollbacks/{rollback_id}", response_model=s.Rollback, responses=error_responses(404), summary="One rollback"
)
def rollback_detail(rollback_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return rollouts.get_rollback(services.engine, tenant=principal.tenant, rollback_id=rollback_id)


@router.post(
    "/rollbacks/{rollback_id}/complete",
    response_model=s.Rollback,
    responses=error_responses(404, 409),
    summary="Confirm that traffic is back on the baseline (recovered) or that rolling back did not help",
)
def rollback_complete(
    rollback_id: str, principal: Admin, services: ServicesDep, body: s.CompleteRollbackBody | None = None
) -> dict[str, Any]:
    body = body or s.CompleteRollbackBody()
    return rollouts.complete_rollback(
        services.engine,
        tenant=principal.tenant,
        rollback_id=rollback_id,
        recovered=body.recovered,
        detail=body.detail,
        by=_who(principal),
    )
