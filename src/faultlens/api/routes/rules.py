"""Rules routes: the caller's tenant's packs (over the global ones), previewing and activating a candidate pack."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from faultlens.api import schemas
from faultlens.api.bodies import JSON_MEDIA_TYPES, read_body_limited
from faultlens.api.deps import Principal, Reader, ServicesDep, WindowDep, get_principal, require, require_operator
from faultlens.jobs.queue import JobKind, find_active, job_to_api
from faultlens.rulepacks import activation
from faultlens.rulepacks.consistency import rule_versions
from faultlens.triage.preview import preview as preview_moves

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])

ScopeParam = Annotated[
    Literal["tenant", "global"],
    Query(
        description="tenant: the caller's tenant's own pack (admin), layered over the global ones; "
        "global: the pack under every tenant's (operator)"
    ),
]


@router.get(
    "", response_model=schemas.Rules, summary="The active rule packs, their rule counts and the backfill in progress"
)
def get_rules(principal: Reader, services: ServicesDep) -> dict[str, Any]:
    tenant = principal.tenant
    own = services.rulebook.find(tenant)
    global_packs = list(services.pipeline.classifier.packs)
    with services.engine.connect() as conn:
        recorded = activation.recorded_version_for(conn, services, tenant)
        activated = activation.find_activated(conn)
        job = find_active(conn, JobKind.BACKFILL, visible_to=tenant)
    user_origin = (
        "activated"
        if activated is not None and global_packs and global_packs[0].id == activated.pack.id
        else "rules_file"
    )

    def shown(pack: Any, origin: str, scope: str) -> dict[str, Any]:
        return {
            "id": pack.id,
            "description": pack.description,
            "rules": len(pack.rules),
            "origin": origin,
            "scope": scope,
        }

    # The global packs are context for a tenant: read-only unless the key has the operator scope.
    packs = [shown(own.packs[0], "activated", "tenant")] if own is not None else []
    packs += [
        shown(p, "default" if i == len(global_packs) - 1 else user_origin, "global") for i, p in enumerate(global_packs)
    ]
    return {
        "active_version": services.classifier_for(tenant).version,
        "recorded_version": recorded,
        "global_version": services.pipeline.classifier.version,
        "packs": packs,
        "backfill": job_to_api(job) if job is not None else None,
    }


@router.get(
    "/versions",
    response_model=schemas.RuleVersions,
    summary="Rule-pack versions, the active one, and whether every live replica and the caller's tenant run it",
)
def get_rule_versions(principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return rule_versions(services, tenant=principal.tenant)


@router.post(
    "/preview",
    response_model=schemas.Preview,
    openapi_extra=schemas.PACK_BODY,
    summary="What a candidate pack would reclassify in the window; writes nothing",
)
async def preview(
    request: Request, principal: Reader, services: ServicesDep, window: WindowDep, scope: ScopeParam = "tenant"
) -> dict[str, Any]:
    body = await read_body_limited(request, services.settings.max_body_bytes, media_types=JSON_MEDIA_TYPES)
    pack, _ = activation.parse_pack_body(body)
    # Layered exactly as activating it in `scope` would layer it for the caller's tenant.
    candidate = activation.candidate_for(services, pack, tenant=principal.tenant, scope=scope)

    def run() -> dict[str, Any]:
        with services.engine.connect() as conn:
            return preview_moves(conn, tenant=principal.tenant, window=window, candidate=candidate)

    return await run_in_threadpool(run)


@router.post(
    "/activate",
    response_model=schemas.Activation,
    responses=schemas.error_responses(409),
    openapi_extra=schemas.PACK_BODY,
    summary="Validate a candidate pack, make it live for the caller's tenant (admin) or every tenant "
    "(scope=global, operator) and backfill history",
)
async def activate(
    request: Request,
    principal: Annotated[Principal, Depends(get_principal)],
    services: ServicesDep,
    scope: ScopeParam = "tenant",
) -> dict[str, Any]:
    if scope == "global":
        require_operator(principal, request)
    else:
        require("admin")(principal, request)
    body = await read_body_limited(request, services.settings.max_body_bytes, media_types=JSON_MEDIA_TYPES)
    pack, data = activation.parse_pack_body(body)
    tenant = None if scope == "global" else principal.tenant
    result = await run_in_threadpool(lambda: activation.activate(services, pack, data, tenant=tenant))
    return {
        "scope": scope,
        "previous_version": result.previous_version,
        "active_version": result.active_version,
        "changed": result.changed,
        "backfill": job_to_api(result.job) if result.job is not None else None,
    }
