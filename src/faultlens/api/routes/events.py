"""Event routes: batch ingest, filtered listing, one event with its related events."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from faultlens.api import schemas
from faultlens.api.deps import Ingester, Reader, ServicesDep, WindowDep
from faultlens.errors import PayloadTooLarge
from faultlens.ingest import parse_body
from faultlens.jobs.backfill import confirmed_version
from faultlens.store import events as event_store

router = APIRouter(prefix="/api/v1", tags=["events"])

FailureClassParam = Literal["service_failure", "client_failure", "client_abort", "none"]
StatusParam = Literal["success", "failure", "retry", "dead_letter", "cancelled"]


async def read_body_limited(request: Request, limit: int) -> bytes:
    """Read the body, refusing it as soon as it passes `limit` bytes (no full buffering of huge uploads)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}", details={"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", details={"limit_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events",
    response_model=schemas.IngestResult,
    openapi_extra=schemas.INGEST_BODY,
    summary="Ingest a batch of events (JSON array, {events: [...]}, or NDJSON)",
)
async def ingest_events(request: Request, principal: Ingester, services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
    body = await read_body_limited(request, settings.max_body_bytes)
    raw = parse_body(
        body,
        request.headers.get("content-type"),
        max_events=settings.max_batch_events,
        max_bytes=settings.max_body_bytes,
    )
    started = time.perf_counter()
    result = await run_in_threadpool(services.pipeline.ingest, raw, tenant=principal.tenant)
    services.after_ingest(result, time.perf_counter() - started)
    return result.as_dict()


@router.get(
    "/events", response_model=schemas.EventPage, summary="Events, newest first, with filters and cursor pagination"
)
def list_events(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    source: str | None = None,
    operation: str | None = None,
    status: StatusParam | None = None,
    failure_class: FailureClassParam | None = None,
    failure_kind: str | None = None,
    category: str | None = None,
    is_actionable: bool | None = None,
    trace_id: str | None = None,
    correlation_id: str | None = None,
    fingerprint_id: str | None = None,
    item_type: Literal["request", "task", "job", "message"] | None = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    failures_only: Annotated[bool, Query(description="only events whose failure_class is not none")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    flt = event_store.EventFilter(
        start_ms=window.start_ms,
        end_ms=window.end_ms,
        source=source,
        operation=operation,
        status=status,
        failure_class=failure_class,
        failure_kind=failure_kind,
        category=category,
        is_actionable=is_actionable,
        trace_id=trace_id,
        correlation_id=correlation_id,
        fingerprint_id=fingerprint_id,
        item_type=item_type,
        q=q,
        failures_only=failures_only,
    )
    with services.engine.connect() as conn:
        items, next_cursor = event_store.list_events(conn, tenant=principal.tenant, flt=flt, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/events/{event_id:path}",
    response_model=schemas.EventDetail,
    responses=schemas.error_responses(404),
    summary="One event with its derived fields and related events",
)
def get_event(event_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    with services.engine.connect() as conn:
        event = event_store.get_event(conn, tenant=principal.tenant, event_id=event_id)
        event["related"] = event_store.list_related(conn, tenant=principal.tenant, event=event)
        event["fingerprint"] = event_store.find_fingerprint(
            conn, tenant=principal.tenant, fingerprint_id=event["fingerprint_id"]
        )
        # rule_version: the pack that decided when the row was last written; this: the newest backfill since.
        event["confirmed_by_version"] = confirmed_version(conn, tenant=principal.tenant, event_id=event["id"])
    return event
