"""Event routes: batch ingest, filtered listing, one event with its related events."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from faultlens.api import schemas
from faultlens.api.bodies import JSON_MEDIA_TYPES, read_body_limited
from faultlens.api.deps import Ingester, Reader, ServicesDep, WindowDep
from faultlens.api.filters import CursorPageDep, EventFiltersDep
from faultlens.api.security_signals import record_cross_tenant
from faultlens.errors import EventNotFound
from faultlens.ingest import NDJSON_MEDIA_TYPES, parse_body
from faultlens.triage import events as event_reads

router = APIRouter(prefix="/api/v1", tags=["events"])

# The media types the event routes parse; anything else is refused with 415 before the body is read.
INGEST_MEDIA_TYPES = JSON_MEDIA_TYPES + NDJSON_MEDIA_TYPES


@router.post(
    "/events",
    response_model=schemas.IngestResult,
    openapi_extra=schemas.INGEST_BODY,
    summary="Ingest a batch of events (JSON array, {events: [...]}, or NDJSON)",
)
async def ingest_events(request: Request, principal: Ingester, services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
    body = await read_body_limited(request, settings.max_body_bytes, media_types=INGEST_MEDIA_TYPES)
    raw = parse_body(
        body,
        request.headers.get("content-type"),
        max_events=settings.max_batch_events,
        max_bytes=settings.max_body_bytes,
    )
    started = time.perf_counter()
    result = await run_in_threadpool(services.pipeline.ingest, raw, tenant=principal.tenant)
    # Off the event loop too: a due save of a tenant's templates can take a while (it exports every template).
    await run_in_threadpool(services.after_ingest, result, time.perf_counter() - started)
    return result.as_dict()


@router.get(
    "/events", response_model=schemas.EventPage, summary="Events, newest first, with filters and cursor pagination"
)
def list_events(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    filters: EventFiltersDep,
    page: CursorPageDep,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        items, next_cursor = event_reads.list_events(
            conn, tenant=principal.tenant, flt=filters.event_filter(window), limit=page.limit, cursor=page.cursor
        )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/events/{event_id:path}",
    response_model=schemas.EventDetail,
    responses=schemas.error_responses(404),
    summary="One event with its derived fields and related events",
)
def get_event(event_id: str, principal: Reader, services: ServicesDep, request: Request) -> dict[str, Any]:
    with services.engine.connect() as conn:
        try:
            return event_reads.event_detail(conn, tenant=principal.tenant, event_id=event_id)
        except EventNotFound:
            # Another tenant's id is a security signal; the caller gets the same 404 either way.
            tenant, default = principal.tenant, services.settings.default_tenant
            record_cross_tenant(request, conn, tenant=tenant, event_id=event_id, default_tenant=default)
            raise
