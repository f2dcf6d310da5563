"""Fingerprint routes: message templates ranked by events in a window, with rule coverage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep, WindowDep
from faultlens.triage.fingerprints import top_templates

router = APIRouter(prefix="/api/v1", tags=["fingerprints"])


@router.get(
    "/fingerprints",
    response_model=schemas.FingerprintList,
    summary="Templates by event count, with class/kind mix and rule coverage",
)
def fingerprints(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    unclassified: Annotated[bool, Query(description="Only templates no specific rule decides")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return top_templates(
            conn,
            tenant=principal.tenant,
            window=window,
            limit=limit,
            unclassified_only=unclassified,
            resolve=services.fingerprinters.for_tenant(principal.tenant).resolve,
        )
