"""Task routes: failed tasks from Redis (filters, cursor pages), retry, sync and the task SLO hints."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query

from faultlens.api.deps import Admin, Reader, ServicesDep, WindowDep
from faultlens.connectors import hints, service, sync
from faultlens.errors import InvalidRequest

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

CategoryParam = Literal["service_timeout", "authorization", "resource_exhausted", "data_error", "system_error"]
KindParam = Literal["native", "rq", "celery"]


def _encode_cursor(view: service.TaskView) -> str:
    raw = orjson.dumps([view.task.fail_ms or 0, view.task.key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        fail_ms, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(fail_ms, int) or not isinstance(key, str):
            raise ValueError("cursor shape")
        return fail_ms, key
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("cursor is not one this server issued", details={"param": "cursor"}) from exc


def _matches(
    view: service.TaskView, *, source: str | None, task_type: str | None, client_id: str | None, category: str | None
) -> bool:
    t = view.task
    return (
        (source is None or source in (t.kind, t.source))
        and (task_type is None or task_type == t.task_type)
        and (client_id is None or client_id == t.client_id)
        and (category is None or category == view.category)
    )


@router.get("/failed", summary="Failed tasks of every Redis source, newest fail time first")
def list_failed(
    principal: Reader,
    services: ServicesDep,
    source: Annotated[
        str | None, Query(max_length=200, description="native|rq|celery or a source such as rq:default")
    ] = None,
    task_type: Annotated[str | None, Query(max_length=500)] = None,
    client_id: Annotated[str | None, Query(max_length=500)] = None,
    category: CategoryParam | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    service.ensure_tenant(services, principal.tenant)
    views = [
        v
        for v in service.list_failed_tasks(services)
        if _matches(v, source=source, task_type=task_type, client_id=client_id, category=category)
    ]
    total = len(views)
    if cursor:
        after = _decode_cursor(cursor)
        position = (-after[0], after[1])
        views = [v for v in views if (-(v.task.fail_ms or 0), v.task.key) > position]
    page = views[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(views) > limit else None
    return {"total": total, "items": [v.as_dict() for v in page], "next_cursor": next_cursor}


@router.get("/hints", summary="Task SLO hints: retries past max, silent retry loops, spikes, categories, rate")
def task_hints(principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    policies = service.policies_of(services)
    with services.engine.connect() as conn:
        items = hints.task_hints(
            conn, tenant=principal.tenant, start_ms=window.start_ms, end_ms=window.end_ms, policies=policies
        )
    return {"window": window.label, "items": items}


@router.post("/sync", summary="Sync failed tasks into events now (the periodic job does it too)")
def sync_now(principal: Admin, services: ServicesDep) -> dict[str, Any]:
    service.ensure_tenant(services, principal.tenant)
    return sync.sync_failed_tasks(services).as_dict()


@router.post("/{task_id:path}/retry", summary="Requeue a failed task through its source (RQ, Celery, native)")
def retry(
    task_id: str,
    principal: Admin,
    services: ServicesDep,
    kind: KindParam | None = None,
) -> dict[str, Any]:
    service.ensure_tenant(services, principal.tenant)
    return service.retry_task(services, task_id, kind=kind)
