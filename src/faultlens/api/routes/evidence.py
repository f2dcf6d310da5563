"""Release evidence routes: replay runs and reports (/api/v1/releases/replays) and readiness evaluations with their
immutable evidence records (/api/v1/releases/readiness). Always the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api.deps import Admin, Principal, Reader, ServicesDep
from faultlens.api.schemas import error_responses
from faultlens.api.schemas import evidence as s
from faultlens.releases import readiness, replay
from faultlens.releases.readiness import RunbookFor
from faultlens.services import Services
from faultlens.triage import slo

router = APIRouter(prefix="/api/v1/releases", tags=["releases"])

ReleaseQuery = Annotated[str | None, Query(min_length=1, max_length=128, description="only this release")]
EnvironmentQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
LimitQuery = Annotated[int, Query(ge=1, le=200)]


def _who(principal: Principal) -> str:
    return principal.key_id or "anonymous"


def run_replay(body: s.ReplayBody, principal: Principal, services: Services) -> dict[str, Any]:
    """The replay service call, shared with the document-004 contract path."""
    return replay.run_replay(
        services.engine,
        services.classifier_for(principal.tenant),
        services.settings,
        tenant=principal.tenant,
        release=body.release,
        environment=body.environment,
        target=body.target,
        suite=body.suite,
        requested_by=_who(principal),
    )


def _runbooks(services: Services) -> RunbookFor:
    """Where each alert's notifications point people: the alert routing in force (alerting sits beside releases,
    so its facts are handed over here)."""
    routing = services.alerting.routing() if services.alerting is not None else None
    if routing is None:
        return lambda _name, _level: None
    return lambda name, level: routing.route({"alertname": name, "level": level}).runbook_url or None


def evaluate(body: s.ReadinessBody, principal: Principal, services: Services) -> dict[str, Any]:
    """The readiness service call, shared with the document-004 contract path."""
    return readiness.evaluate_readiness(
        services.engine,
        services.settings,
        slo=slo.load_config(services.settings.slo_file),
        rule_version=services.classifier_for(principal.tenant).version,
        runbook_for=_runbooks(services),
        tenant=principal.tenant,
        release=body.release,
        environment=body.environment,
        source=body.source,
        window=body.window,
        since=body.since,
        until=body.until,
        replay_report_id=body.replay_report_id,
        requested_by=_who(principal),
    )


@router.post(
    "/replays",
    response_model=s.ReplayReport,
    responses=error_responses(400, 403),
    summary="Run a replay suite against an allow-listed target; the stored, classified report",
)
def replay_run(body: s.ReplayBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return run_replay(body, principal, services)


@router.get("/replays", response_model=s.ReplayList, summary="Replay reports, newest first")
def replay_list(
    principal: Reader,
    services: ServicesDep,
    release: ReleaseQuery = None,
    environment: EnvironmentQuery = None,
    limit: LimitQuery = 50,
) -> dict[str, Any]:
    reports = replay.list_reports(
        services.engine, tenant=principal.tenant, release=release, environment=environment, limit=limit
    )
    return {"reports": reports}


@router.get(
    "/replays/{report_id}", response_model=s.ReplayReport, responses=error_responses(404), summary="One replay report"
)
def replay_detail(report_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return replay.get_report(services.engine, tenant=principal.tenant, report_id=report_id)


@router.post(
    "/readiness",
    response_model=s.ReadinessRecord,
    responses=error_responses(400, 404),
    summary="Evaluate a release's readiness (seven checks and the replay); the stored evidence record",
)
def readiness_evaluate(body: s.ReadinessBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return evaluate(body, principal, services)


@router.get("/readiness", response_model=s.ReadinessList, summary="Readiness evidence records, newest first")
def readiness_list(
    principal: Reader,
    services: ServicesDep,
    release: ReleaseQuery = None,
    environment: EnvironmentQuery = None,
    limit: LimitQuery = 50,
) -> dict[str, Any]:
    found = readiness.list_evidence(
        services.engine, tenant=principal.tenant, release=release, environment=environment, limit=limit
    )
    return {"evaluations": found}


@router.get(
    "/readiness/{evidence_id}",
    response_model=s.ReadinessRecord,
    responses=error_responses(404),
    summary="One readiness evidence record",
)
def readiness_detail(evidence_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return readiness.get_evidence(services.engine, tenant=principal.tenant, evidence_id=evidence_id)
