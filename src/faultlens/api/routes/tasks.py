"""Task routes: failed tasks from Redis (filters, cursor pages), retry, sync and the task SLO hints.

Redis work runs on the task routes' own bounded threads within one total deadline (connectors.deadline), so a
hung Redis answers 503 redis_unavailable in time and never holds the threads other routes share.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query

from faultlens.api import schemas
from faultlens.api.deps import Admin, Reader, ServicesDep, WindowDep
from faultlens.api.filters import TaskCategoryParam, TaskKindParam
from faultlens.connectors import hints, retries, service, sync
from faultlens.connectors.deadline import run_redis
from faultlens.connectors.task_view import TaskView
from faultlens.cursors import decode_keyed, encode_cursor

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


def _encode_cursor(view: TaskView) -> str:
    return encode_cursor(view.task.fail_ms or 0, text=view.task.key)


def _matches(
    view: TaskView, *, source: str | None, task_type: str | None, client_id: str | None, category: str | None
) -> bool:
    t = view.task
    return (
        (source is None or source in (t.kind, t.source))
        and (task_type is None or task_type == t.task_type)
        and (client_id is None or client_id == t.client_id)
        and (category is None or category == view.category)
    )


@router.get(
    "/failed", response_model=schemas.TaskPage, summary="Failed tasks of every Redis source, newest fail time first"
)
async def list_failed(
    principal: Reader,
    services: ServicesDep,
    source: Annotated[
        str | None, Query(max_length=200, description="native|rq|celery or a source such as rq:default")
    ] = None,
    task_type: Annotated[str | None, Query(max_length=500)] = None,
    client_id: Annotated[str | None, Query(max_length=500)] = None,
    category: TaskCategoryParam | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    service.ensure_tenant(services, principal.tenant)
    after = decode_keyed(cursor) if cursor else None

    def page() -> dict[str, Any]:
        # Filtering and shaping stay on the worker thread, inside the deadline, off the event loop.
        views = [
            v
            for v in service.list_failed_tasks(services)
            if _matches(v, source=source, task_type=task_type, client_id=client_id, category=category)
        ]
        total = len(views)
        if after is not None:
            position = (-after[0], after[1])
            views = [v for v in views if (-(v.task.fail_ms or 0), v.task.key) > position]
        shown = views[:limit]
        next_cursor = _encode_cursor(shown[-1]) if len(views) > limit else None
        return {"total": total, "items": [v.as_dict() for v in shown], "next_cursor": next_cursor}

    return await run_redis(services.settings, page)


@router.get(
    "/hints",
    response_model=schemas.TaskHints,
    summary="Task SLO hints: retries past max, silent retry loops, spikes, categories, rate",
)
def task_hints(principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    policies = service.policies_of(services)
    with services.engine.connect() as conn:
        items = hints.task_hints(
            conn, tenant=principal.tenant, start_ms=window.start_ms, end_ms=window.end_ms, policies=policies
        )
    return {"window": window.label, "items": items}


@router.post(
    "/sync",
    response_model=schemas.SyncResult,
    summary="Sync failed tasks into events now (the periodic job does it too)",
)
async def sync_now(principal: Admin, services: ServicesDep) -> dict[str, Any]:
    service.ensure_tenant(services, principal.tenant)
    read = await run_redis(services.settings, sync.read_sources, services)
    result = await anyio.to_thread.run_sync(sync.store_read, services, read)
    return result.as_dict()


@router.post(
    "/{task_id:path}/retry",
    response_model=schemas.Retried,
    responses=schemas.error_responses(404, 409),
    summary="Requeue a failed task through its source (RQ, Celery, native)",
)
async def retry(
    task_id: str,
    principal: Admin,
    services: ServicesDep,
    kind: TaskKindParam | None = None,
) -> dict[str, Any]:
    """A 503 after the deadline does not undo a requeue Redis already applied: list again before retrying."""
    service.ensure_tenant(services, principal.tenant)
    view, at = await run_redis(services.settings, lambda: retries.requeue_task(services, task_id, kind=kind))
    return await anyio.to_thread.run_sync(lambda: retries.record_retry(services, view, at))
