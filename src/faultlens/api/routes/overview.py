"""Overview routes: the per-source overview, its export, trends, alerts and the paged failure list.

They take the one window vocabulary (window=1h..90d or since/until, default 7d); window_days is still accepted
as a deprecated alias and answered with a Deprecation header (faultlens.api.params).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Response

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep
from faultlens.api.filters import (
    Attrs,
    BucketParam,
    ClassDep,
    ExportFormatParam,
    LevelParam,
    OriginDep,
    ReleaseDep,
    SourceDep,
    failure_query,
)
from faultlens.api.params import OverviewWindowDep
from faultlens.errors import InvalidRequest, param_details
from faultlens.services import Services
from faultlens.timeutil import WINDOWS_MS, now_ms
from faultlens.triage import export, overview, raw, slo, trends

router = APIRouter(prefix="/api/v1", tags=["overview"])
T = TypeVar("T")

# The finest bucket over the longest named window (1h over 90d): the most points a trend answers with.
MAX_TREND_BUCKETS = WINDOWS_MS["90d"] // trends.BUCKETS_MS["1h"]


def slo_config(services: Services) -> slo.SloConfig:
    return slo.load_config(services.settings.slo_file)


class OverviewScope:
    """What every route here takes: the caller's tenant, the window, ?source=, ?release= and ?environment= and the
    attribute filters; the overview and the alerts answer them against the SLO configuration."""

    def __init__(
        self,
        principal: Reader,
        services: ServicesDep,
        attrs: Attrs,
        window: OverviewWindowDep,
        source: SourceDep,
        releases: ReleaseDep,
    ) -> None:
        self.tenant = principal.tenant
        self.services = services
        self.attrs = attrs
        self.window = window
        self.source = source
        self.sources = source.sources
        self.releases = releases

    def overview(self, now: int | None = None) -> overview.Overview:
        return self._ask(overview.build_overview, now=now)

    def alerts(self, level: str | None) -> dict[str, Any]:
        return self._ask(overview.alerts, level=level)

    def _ask(self, question: Callable[..., T], **extra: Any) -> T:
        """`question` (build_overview, alerts) for this scope under the SLO configuration."""
        with self.services.engine.connect() as conn:
            return question(
                conn,
                tenant=self.tenant,
                window=self.window,
                config=slo_config(self.services),
                sources=self.sources,
                attrs=self.attrs,
                release=self.releases.release,
                environment=self.releases.environment,
                **extra,
            )


class OriginScope(OverviewScope):
    """OverviewScope with ?operation= beside ?source=."""

    def __init__(
        self,
        principal: Reader,
        services: ServicesDep,
        attrs: Attrs,
        window: OverviewWindowDep,
        origin: OriginDep,
        releases: ReleaseDep,
    ) -> None:
        super().__init__(principal, services, attrs, window, origin, releases)
        self.origin = origin


OverviewScopeDep = Annotated[OverviewScope, Depends()]
OriginScopeDep = Annotated[OriginScope, Depends()]


@router.get(
    "/overview",
    response_model=schemas.Overview,
    summary="Per-source partitions over the window (default 7d), with SLO hints",
)
def get_overview(scope: OverviewScopeDep) -> dict[str, Any]:
    return scope.overview().as_dict()


@router.get(
    "/overview/export",
    responses=schemas.DOWNLOAD,
    summary="The overview as a JSON, CSV (one row per source) or Markdown download",
)
def export_overview(
    scope: OverviewScopeDep,
    response: Response,
    fmt: Annotated[ExportFormatParam, Query(alias="format")] = "json",
) -> Response:
    now = now_ms()
    out = export.render_overview(scope.overview(now).as_dict(), fmt=fmt, generated_at=now)
    # A returned Response does not carry the headers dependencies set (the Deprecation of window_days).
    headers = {**response.headers, "Content-Disposition": out.content_disposition}
    return Response(out.content, media_type=out.media_type, headers=headers)


@router.get(
    "/trends",
    response_model=schemas.Trends,
    summary="Per-bucket totals, failures by class and rates; empty buckets as zeros",
)
def get_trends(scope: OriginScopeDep, bucket: BucketParam = "1d") -> dict[str, Any]:
    window = scope.window
    bucket_ms = trends.BUCKETS_MS[bucket]
    if (window.end_ms - window.start_ms) // bucket_ms > MAX_TREND_BUCKETS:
        # A since/until window can be years long; a point per hour of it is no chart, only a slow answer.
        message = f"the window holds more than {MAX_TREND_BUCKETS} buckets of {bucket}: choose a larger bucket"
        raise InvalidRequest(message, details=param_details("bucket", message))
    with scope.services.engine.connect() as conn:
        return trends.build_trends(
            conn,
            tenant=scope.tenant,
            window=window,
            bucket_ms=bucket_ms,
            source=scope.origin.source,
            operation=scope.origin.operation,
            attrs=scope.attrs,
            release=scope.releases.release,
            environment=scope.releases.environment,
        )


@router.get(
    "/alerts",
    response_model=schemas.Alerts,
    summary="SLO hints as alerts: worst status, counts by code, hints at or above a level",
)
def get_alerts(scope: OverviewScopeDep, level: LevelParam | None = None) -> dict[str, Any]:
    return scope.alerts(level)


@router.get("/failures", response_model=schemas.FailurePage, summary="Failures, newest first, page by page")
def get_failures(
    scope: OverviewScopeDep,
    classes: ClassDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    query = failure_query(scope.window, scope.source, classes, scope.attrs, scope.releases)
    with scope.services.engine.connect() as conn:
        items, pagination = raw.list_failures(conn, tenant=scope.tenant, query=query, page=page, page_size=page_size)
    named = ("source", "failure_class", "failure_kind", "category", "release", "environment")
    filters = {name: getattr(query, name) for name in named} | {k: query.attrs.get(k) for k in raw.ATTRIBUTE_FILTERS}
    return {"items": items, "pagination": pagination, "filters": filters}
