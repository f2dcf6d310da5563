"""Rules routes: the active packs, a preview of a candidate pack, and activating one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from faultlens.api.deps import Admin, Reader, ServicesDep, WindowDep
from faultlens.api.routes.events import read_body_limited
from faultlens.jobs import activation
from faultlens.jobs.queue import JobKind, find_active, job_to_api
from faultlens.jobs.state import ACTIVE_RULE_VERSION, find_state
from faultlens.triage.preview import preview as preview_moves

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])


@router.get("", summary="The active rule packs, their rule counts and the backfill in progress")
def get_rules(principal: Reader, services: ServicesDep) -> dict[str, Any]:
    classifier = services.pipeline.classifier
    with services.engine.connect() as conn:
        recorded = find_state(conn, ACTIVE_RULE_VERSION)
        activated = activation.find_activated(conn)
        job = find_active(conn, JobKind.BACKFILL)
    packs = list(classifier.packs)
    user_origin = "activated" if activated is not None and packs and packs[0].id == activated.pack.id else "rules_file"
    return {
        "active_version": classifier.version,
        "recorded_version": recorded,
        "packs": [
            {
                "id": p.id,
                "description": p.description,
                "rules": len(p.rules),
                "origin": "default" if i == len(packs) - 1 else user_origin,
            }
            for i, p in enumerate(packs)
        ],
        "backfill": job_to_api(job) if job is not None else None,
    }


@router.post("/preview", summary="What a candidate pack would reclassify in the window; writes nothing")
async def preview(request: Request, principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    body = await read_body_limited(request, services.settings.max_body_bytes)
    pack, _ = activation.parse_pack_body(body)
    candidate = activation.candidate_classifier(pack)

    def run() -> dict[str, Any]:
        with services.engine.connect() as conn:
            return preview_moves(conn, tenant=principal.tenant, window=window, candidate=candidate)

    return await run_in_threadpool(run)


@router.post("/activate", summary="Validate a candidate pack, make it live and backfill history (admin)")
async def activate(request: Request, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    body = await read_body_limited(request, services.settings.max_body_bytes)
    pack, data = activation.parse_pack_body(body)
    result = await run_in_threadpool(activation.activate, services, pack, data)
    return {
        "previous_version": result.previous_version,
        "active_version": result.active_version,
        "changed": result.changed,
        "backfill": job_to_api(result.job) if result.job is not None else None,
    }
