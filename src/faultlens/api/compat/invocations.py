"""The invocations contract: the exact paths and camelCase names existing dashboards call, over native services."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faultlens.api.deps import Reader, ServicesDep, WindowDep
from faultlens.api.filters import CursorPageDep, SourceDep
from faultlens.model import Scope
from faultlens.triage import events as event_reads
from faultlens.triage import stats

router = APIRouter(prefix="/api", tags=["compat: invocations"])

_CAMEL = {"failure_kind": "failureKind", "failure_class": "failureClass", "is_actionable": "isActionable"}


@router.get("/invocations", summary="Events as invocations, with failureKind / failureClass / isActionable")
def invocations(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    source: SourceDep,
    page: CursorPageDep,
) -> dict[str, Any]:
    flt = event_reads.EventFilter(start_ms=window.start_ms, end_ms=window.end_ms, source=source.source)
    with services.engine.connect() as conn:
        items, next_cursor = event_reads.list_events(
            conn, tenant=principal.tenant, flt=flt, limit=page.limit, cursor=page.cursor
        )
    for item in items:
        for native, camel in _CAMEL.items():
            item[camel] = item[native]
    return {"items": items, "next_cursor": next_cursor}


@router.get("/stats/errors", summary="Error distribution by scope (default service)")
def stats_errors(
    principal: Reader, services: ServicesDep, window: WindowDep, scope: Scope = Scope.SERVICE
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return stats.error_distribution(conn, tenant=principal.tenant, window=window, scope=scope)


@router.get("/stats/failures/summary", summary="Failure summary with camelCase names")
def failures_summary(principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    with services.engine.connect() as conn:
        s = stats.summary(conn, tenant=principal.tenant, window=window)
    return {
        "window": s["window"],
        "total": s["total"],
        "successCount": s["success_count"],
        "failureCount": s["failure_count"],
        "serviceFailureCount": s["service_failure_count"],
        "clientFailureCount": s["client_failure_count"],
        "clientAbortCount": s["client_abort_count"],
        "actionableFailureCount": s["actionable_failure_count"],
        "actionableFailureRate": s["actionable_failure_rate"],
    }
