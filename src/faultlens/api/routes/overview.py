"""Overview routes: the per-source overview, its export, trends, alerts and the paged failure list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from faultlens.api.deps import Reader, ServicesDep
from faultlens.services import Services
from faultlens.timeutil import now_ms
from faultlens.triage import export, overview, raw, slo, trends
from faultlens.triage.raw import FailureQuery

router = APIRouter(prefix="/api/v1", tags=["overview"])

_ATTR = Annotated[str | None, Query(max_length=1024, description="events whose attributes hold this value")]
WindowDays = Annotated[int, Query(description="1, 7, 14, 30 or 90")]
Level = Literal["info", "warn", "critical"]
FailureClassParam = Literal["service_failure", "client_failure", "client_abort"]


def attribute_filters(site_id: _ATTR = None, target_object: _ATTR = None, template_key: _ATTR = None) -> dict[str, str]:
    values = {"site_id": site_id, "target_object": target_object, "template_key": template_key}
    return {k: v for k, v in values.items() if v is not None}


Attrs = Annotated[dict[str, str], Depends(attribute_filters)]


def slo_config(services: Services) -> slo.SloConfig:
    return slo.load_config(services.settings.slo_file)


@router.get("/overview", summary="Per-source partitions over a 1/7/14/30/90-day window, with SLO hints")
def get_overview(
    principal: Reader,
    services: ServicesDep,
    attrs: Attrs,
    window_days: WindowDays = overview.DEFAULT_WINDOW_DAYS,
    source: str | None = None,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        ov = overview.build_overview(
            conn,
            tenant=principal.tenant,
            days=window_days,
            config=slo_config(services),
            sources=[source] if source is not None else None,
            attrs=attrs,
        )
    return ov.as_dict()


@router.get("/overview/export", summary="The overview as a JSON, CSV (one row per source) or Markdown download")
def export_overview(
    principal: Reader,
    services: ServicesDep,
    attrs: Attrs,
    window_days: WindowDays = overview.DEFAULT_WINDOW_DAYS,
    source: str | None = None,
    fmt: Annotated[Literal["json", "csv", "md"], Query(alias="format")] = "json",
) -> Response:
    now = now_ms()
    with services.engine.connect() as conn:
        ov = overview.build_overview(
            conn,
            tenant=principal.tenant,
            days=window_days,
            config=slo_config(services),
            sources=[source] if source is not None else None,
            attrs=attrs,
            now=now,
        )
    out = export.render_overview(ov.as_dict(), fmt=fmt, generated_at=now)
    return Response(out.content, media_type=out.media_type, headers={"Content-Disposition": out.content_disposition})


@router.get("/trends", summary="Per-bucket totals, failures by class and rates; empty buckets as zeros")
def get_trends(
    principal: Reader,
    services: ServicesDep,
    attrs: Attrs,
    window_days: WindowDays = overview.DEFAULT_WINDOW_DAYS,
    bucket: Literal["1h", "6h", "1d", "7d"] = "1d",
    source: str | None = None,
    operation: str | None = None,
) -> dict[str, Any]:
    window = overview.window_of(window_days)
    with services.engine.connect() as conn:
        return trends.build_trends(
            conn,
            tenant=principal.tenant,
            window=window,
            bucket_ms=trends.BUCKETS_MS[bucket],
            source=source,
            operation=operation,
            attrs=attrs,
        )


@router.get("/alerts", summary="SLO hints as alerts: worst status, counts by code, hints at or above a level")
def get_alerts(
    principal: Reader,
    services: ServicesDep,
    attrs: Attrs,
    window_days: WindowDays = overview.DEFAULT_WINDOW_DAYS,
    level: Level | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return overview.alerts(
            conn,
            tenant=principal.tenant,
            days=window_days,
            config=slo_config(services),
            level=level,
            sources=[source] if source is not None else None,
            attrs=attrs,
        )


@router.get("/failures", summary="Failures, newest first, page by page")
def get_failures(
    principal: Reader,
    services: ServicesDep,
    attrs: Attrs,
    window_days: WindowDays = overview.DEFAULT_WINDOW_DAYS,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    source: str | None = None,
    failure_class: FailureClassParam | None = None,
    failure_kind: str | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    window = overview.window_of(window_days)
    query = FailureQuery(
        start_ms=window.start_ms,
        end_ms=window.end_ms,
        source=source,
        failure_class=failure_class,
        failure_kind=failure_kind,
        category=category,
        attrs=attrs,
    )
    with services.engine.connect() as conn:
        items, pagination = raw.list_failures(
            conn, tenant=principal.tenant, query=query, page=page, page_size=page_size
        )
    return {"items": items, "pagination": pagination}
