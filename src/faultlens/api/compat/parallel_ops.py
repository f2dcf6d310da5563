"""The parallel-ops contract (seed document 002): /api/v1/parallel-ops/*, shaped from the native services.

Partitions doc_sync and workflow_actions are the events of the sources of those names; breakages are the failure
groups of the window (triage/breakages.py), consumption_templates the rule-pack versions and their consistency across
replicas (rulepacks/consistency.py), overlay_cache this process' classification and fingerprint caches
(Services.cache_stats). Parameters arrive as text and are checked here, so every bad one (unknown value, not an
integer, out of range) answers 400 in the one error body with the contract's code `parallel_ops_invalid_request`
and the parameter's name.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep
from faultlens.errors import InvalidRequest, param_details
from faultlens.metrics import family as metric_family
from faultlens.rulepacks.consistency import rule_versions
from faultlens.timeutil import Window, ms_to_rfc3339, now_ms
from faultlens.triage import breakages, export, groups, overview, partition_hints, raw, slo, trends
from faultlens.triage.raw import FailureQuery

router = APIRouter(prefix="/api/v1/parallel-ops", tags=["compat: parallel-ops"])

CODE = "parallel_ops_invalid_request"
# Contract partition -> faultlens source, and the prefix its hint codes carry in the contract.
PARTITIONS = {"doc_sync": "doc_sync", "workflow_actions": "workflow_actions"}
# The partitions that are not sources, in the contract's order; they are not narrowed by site_id, target_object or
# template_key (the groups, rule versions and caches keep no event attributes).
OTHER_PARTITIONS = ("breakages", "consumption_templates", "overlay_cache")
_HINT_PREFIX = {"doc_sync": "doc_sync", "workflow_actions": "workflow_action"}
BUCKET_DAYS = (1, 7, 14, 30)
MAX_PAGE_SIZE = 500
_INT = re.compile(r"[0-9]{1,9}")
_MAX_ATTR_CHARS = 1024


def _invalid(param: str, value: Any, message: str) -> InvalidRequest:
    shown = repr(value) if len(repr(value)) <= 66 else repr(value)[:63] + "..."
    text = f"{param} {message} (got {shown})"
    return InvalidRequest(text, code=CODE, details=param_details(param, text))


def _integer(param: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not _INT.fullmatch(value):
        raise _invalid(param, value, "must be an integer")
    return int(value)


def _choice(param: str, value: str | None, default: int, allowed: Sequence[int]) -> int:
    number = _integer(param, value, default)
    if number not in allowed:
        raise _invalid(param, value, f"must be one of {', '.join(map(str, allowed))}")
    return number


@contextmanager
def _contract() -> Iterator[None]:
    """A native InvalidRequest that gets past the checks here still answers with the contract's code."""
    try:
        yield
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, code=CODE, details=exc.details) from exc


@dataclass(frozen=True)
class Common:
    window_days: int
    attrs: dict[str, str]

    def filters(self) -> dict[str, str | None]:
        return {k: self.attrs.get(k) for k in raw.ATTRIBUTE_FILTERS}


def common_params(
    window_days: str | None = None,
    site_id: str | None = None,
    target_object: str | None = None,
    template_key: str | None = None,
) -> Common:
    days = _choice("window_days", window_days, overview.DEFAULT_WINDOW_DAYS, overview.WINDOW_DAYS)
    attrs: dict[str, str] = {}
    for name, value in (("site_id", site_id), ("target_object", target_object), ("template_key", template_key)):
        if value is not None and len(value) > _MAX_ATTR_CHARS:
            raise _invalid(name, value[:64] + "...", f"must be at most {_MAX_ATTR_CHARS} characters")
        if value:  # an empty filter means no filter, as in the original service
            attrs[name] = value
    return Common(days, attrs)


CommonDep = Annotated[Common, Depends(common_params)]


def _shape_partition(part: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "total": part["total"],
        "by_status": part["status_counts"],
        "success_total": part["success_count"],
        "success_rate": part["success_rate"],
        "failed_total": part["failure_count"],
        "failed_rate": part["failure_rate"],
        "actionable_failed_total": part["actionable_failure_count"],
        "actionable_failed_rate": part["actionable_failure_rate"],
        "dead_letter_total": part["dead_letter_count"],
        "dead_letter_rate": part["dead_letter_rate"],
        "retry_total": part["retry_count"],
        "avg_attempts": part["avg_attempts"],
        "by_result_code": {i["error_code"]: i["count"] for i in part["top_error_codes"]},
        "by_failure_kind": {i["failure_kind"]: i["count"] for i in part["top_failure_kinds"]},
    }


def _rename(hint: slo.Hint) -> slo.Hint:
    """The hint under the contract's code (workflow_actions failure_rate_high: workflow_action_failed_rate_high)."""
    code = f"{_HINT_PREFIX[hint.source]}_{hint.code.replace('failure_rate', 'failed_rate')}"
    return dataclasses.replace(hint, code=code)


def _window_fields(window: Window, common: Common, *, now: int) -> dict[str, Any]:
    return {
        "generated_at": ms_to_rfc3339(now),
        "window_days": common.window_days,
        "window_since": ms_to_rfc3339(window.start_ms),
        "window_until": ms_to_rfc3339(window.end_ms),
        "filters": common.filters(),
    }


class Scope:
    """What every route of this contract takes: the caller's tenant, the services and the common parameters."""

    def __init__(self, principal: Reader, services: ServicesDep, common: CommonDep) -> None:
        self.tenant = principal.tenant
        self.services = services
        self.common = common

    def summary(self, now: int) -> tuple[dict[str, Any], list[slo.Hint]]:
        """The summary body (both partitions, renamed hints) at `now`, and its hints."""
        common = self.common
        with self.services.engine.connect() as conn:
            config = slo.load_config(self.services.settings.slo_file)
            with _contract():
                ov = overview.build_overview(
                    conn,
                    tenant=self.tenant,
                    days=common.window_days,
                    config=config,
                    sources=list(PARTITIONS.values()),
                    attrs=common.attrs,
                    now=now,
                )
            broken = self.breakages(conn, ov.window, now)
        parts = {p["source"]: p for p in ov.as_dict()["sources"]}
        cache = self.services.cache_stats(self.tenant)
        hints = [_rename(h) for h in ov.hints]
        hints += partition_hints.breakage_hints(broken, config.partitions, window=f"{common.window_days}d")
        hints += partition_hints.cache_hints(cache, config.partitions)
        body = {
            **_window_fields(ov.window, common, now=now),
            **{name: _shape_partition(parts[source]) for name, source in PARTITIONS.items()},
            "breakages": broken,
            "consumption_templates": self.templates(now),
            "overlay_cache": cache,
            "slo_hints": [h.as_dict() for h in hints],
        }
        return body, hints

    def grouping(self, conn: Connection) -> groups.Grouping:
        fingerprinter = self.services.fingerprinters.for_tenant(self.tenant)
        return groups.grouping_for(conn, tenant=self.tenant, templates=fingerprinter)

    def breakages(self, conn: Connection, window: Window, now: int) -> dict[str, Any]:
        alerting = self.services.alerting
        return breakages.breakage_summary(
            conn,
            tenant=self.tenant,
            grouping=self.grouping(conn),
            window=window,
            lifecycle=groups.lifecycle_of(self.services.settings),
            now=now,
            route_owner=None if alerting is None else lambda labels: alerting.routing().route(labels).owner,
        )

    def templates(self, now: int) -> dict[str, Any]:
        versions = rule_versions(self.services, tenant=self.tenant, now=now)
        return {
            "versions_total": versions["versions_total"],
            "versions": [v["id"] for v in versions["versions"]],
            "active_version": versions["active_version"],
            "tenant_version": versions["tenant_version"],
            "replicas_total": versions["replicas_total"],
            "replicas_on_active": versions["replicas_on_active"],
            "by_replica_version": dict(Counter(r["rule_version"] for r in versions["replicas"])),
            "version_consistent": versions["version_consistent"],
            "consistency_rate": versions["consistency_rate"],
        }


ScopeDep = Annotated[Scope, Depends()]


@router.get("/summary", summary="doc_sync and workflow_actions partitions with SLO hints")
def summary(scope: ScopeDep) -> dict[str, Any]:
    body, _hints = scope.summary(now_ms())
    return body


def _trend_partition(point: Mapping[str, Any]) -> dict[str, Any]:
    total = point["total"]
    return {
        "total": total,
        "failed_total": point["failures"],
        "dead_letter_total": point["dead_letters"],
        "success_rate": slo.ratio(point["success"], total),
        "failed_rate": point["failure_rate"],
        "dead_letter_rate": slo.ratio(point["dead_letters"], total),
    }


_BREAKAGE_POINT = ("total", "new_total", "failed_total")


@router.get("/trends", summary="Per-bucket doc_sync and workflow_actions counts and rates")
def trends_view(scope: ScopeDep, bucket_days: str | None = None) -> dict[str, Any]:
    common = scope.common
    days = _choice("bucket_days", bucket_days, 1, BUCKET_DAYS)
    if days > common.window_days:
        raise _invalid("bucket_days", bucket_days, f"must not be greater than window_days ({common.window_days})")
    now = now_ms()
    window = overview.window_of(common.window_days, now=now)
    with scope.services.engine.connect() as conn, _contract():
        native = {
            name: trends.build_trends(
                conn,
                tenant=scope.tenant,
                window=window,
                bucket_ms=days * trends.BUCKETS_MS["1d"],
                source=source,
                attrs=common.attrs,
            )
            for name, source in PARTITIONS.items()
        }
        bucket_ms = days * trends.BUCKETS_MS["1d"]
        broken, broken_totals = breakages.breakage_buckets(
            conn, tenant=scope.tenant, grouping=scope.grouping(conn), window=window, bucket_ms=bucket_ms
        )
    first = next(iter(native.values()))
    origin = window.start_ms // bucket_ms * bucket_ms
    points = [
        {
            "bucket_start": bucket["start"],
            "bucket_end": bucket["end"],
            **{name: _trend_partition(native[name]["buckets"][i]) for name in PARTITIONS},
            "breakages": broken.get(origin + i * bucket_ms, dict.fromkeys(_BREAKAGE_POINT, 0)),
        }
        for i, bucket in enumerate(first["buckets"])
    ]
    return {
        **_window_fields(window, common, now=now),
        "bucket_days": days,
        "points": points,
        "totals": {name: _trend_partition(native[name]["totals"]) for name in PARTITIONS}
        | {"breakages": broken_totals},
    }


@router.get("/alerts", summary="The summary's SLO hints as alerts, filtered by level")
def alerts(scope: ScopeDep, level: str | None = None) -> dict[str, Any]:
    with _contract():
        slo.check_level(level)
    body, hints = scope.summary(now_ms())
    return {
        **{k: body[k] for k in ("generated_at", "window_days", "window_since", "window_until")},
        "filters": {**scope.common.filters(), "level": level},
        **slo.summarize(hints, level=level),
    }


_EXPORT_COLUMNS = (
    "partition",
    "total",
    "success_rate",
    "failed_total",
    "failed_rate",
    "actionable_failed_rate",
    "dead_letter_total",
    "dead_letter_rate",
    "retry_total",
    "avg_attempts",
    "by_status",
    "by_result_code",
    # breakages
    "open_total",
    "open_rate",
    "repeat_rate",
    "by_severity",
    # consumption_templates
    "versions_total",
    "active_version",
    "replicas_on_active",
    "version_consistent",
    # overlay_cache
    "requests",
    "hits",
    "hit_rate",
)


def _pairs(counts: Mapping[str, int]) -> str:
    return "; ".join(f"{k}: {n}" for k, n in counts.items())


@router.get("/summary/export", responses=schemas.DOWNLOAD, summary="The summary as a JSON, CSV or Markdown download")
def summary_export(scope: ScopeDep, export_format: str | None = None) -> Response:
    with _contract():
        fmt = export.check_format(export_format if export_format is not None else "json", param="export_format")
    now = now_ms()
    body, _hints = scope.summary(now)
    common = scope.common
    rows = [
        {
            **body[name],
            "partition": name,
            "by_status": _pairs(body[name]["by_status"]),
            "by_result_code": _pairs(body[name]["by_result_code"]),
        }
        for name in PARTITIONS
    ]
    broken = body["breakages"]
    rows.append(
        {
            **broken,
            "partition": "breakages",
            "failed_total": broken["failed_total"],
            "by_status": _pairs(broken["by_status"]),
            "by_severity": _pairs(broken["by_severity"]),
        }
    )
    rows.append({**body["consumption_templates"], "partition": "consumption_templates"})
    rows.append({**body["overlay_cache"], "partition": "overlay_cache"})
    out = export.render(
        body,
        fmt=fmt,
        rows=rows,
        columns=_EXPORT_COLUMNS,
        hints=body["slo_hints"],
        title=f"parallel ops summary: last {common.window_days} days ({body['window_since']} to "
        f"{body['window_until']})",
        name=export.file_stem("parallel-ops-summary", days=common.window_days, generated_at=now),
    )
    return Response(out.content, media_type=out.media_type, headers={"Content-Disposition": out.content_disposition})


def _failures(scope: Scope, partition: str, page: str | None, page_size: str | None) -> dict[str, Any]:
    """The page of the partition's failures, newest first (?page= ?page_size= checked as text, so a bad value
    answers this contract's error)."""
    page_no = _integer("page", page, 1)
    if page_no < 1:
        raise _invalid("page", page, "must be at least 1")
    size = _integer("page_size", page_size, 20)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid("page_size", page_size, f"must be between 1 and {MAX_PAGE_SIZE}")
    now = now_ms()
    common = scope.common
    window = overview.window_of(common.window_days, now=now)
    query = FailureQuery(
        start_ms=window.start_ms, end_ms=window.end_ms, source=PARTITIONS[partition], attrs=common.attrs
    )
    with scope.services.engine.connect() as conn:
        items, pagination = raw.list_failures(conn, tenant=scope.tenant, query=query, page=page_no, page_size=size)
    return {
        **_window_fields(window, common, now=now),
        "total": pagination["total"],
        "pagination": pagination,
        "items": items,
    }


@router.get("/doc-sync/failures", summary="doc_sync failures, newest first, page by page")
def doc_sync_failures(scope: ScopeDep, page: str | None = None, page_size: str | None = None) -> dict[str, Any]:
    return _failures(scope, "doc_sync", page, page_size)


@router.get("/workflow/failures", summary="workflow_actions failures, newest first, page by page")
def workflow_failures(scope: ScopeDep, page: str | None = None, page_size: str | None = None) -> dict[str, Any]:
    return _failures(scope, "workflow_actions", page, page_size)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _summary_families(body: Mapping[str, Any], *, namespace: str) -> list[Metric]:
    window = f"{body['window_days']}d"
    # Names, help and labels: the metric dictionary (metric_dictionary.yaml).
    events = metric_family("parallel_ops_events", namespace=namespace)
    codes = metric_family("parallel_ops_result_code_events", namespace=namespace)
    ratios = {
        key: metric_family(f"parallel_ops_{name}_ratio", namespace=namespace)
        for key, name in (("success_rate", "success"), ("failed_rate", "failure"), ("dead_letter_rate", "dead_letter"))
    }
    for name in PARTITIONS:
        part = body[name]
        for status, n in part["by_status"].items():
            events.add_metric([window, name, status], n)
        for code, n in part["by_result_code"].items():
            codes.add_metric([window, name, code], n)
        for key, family in ratios.items():
            family.add_metric([window, name], part[key])
    hints = metric_family("parallel_ops_slo_hints", namespace=namespace)
    for level in slo.LEVELS:
        hints.add_metric([window, level], sum(1 for h in body["slo_hints"] if h["level"] == level))
    return [events, codes, *ratios.values(), hints, *_other_families(body, window=window, namespace=namespace)]


def _other_families(body: Mapping[str, Any], *, window: str, namespace: str) -> list[Metric]:
    broken, templates, cache = (body[name] for name in OTHER_PARTITIONS)
    groups_by_status = metric_family("parallel_ops_breakage_groups", namespace=namespace)
    for status, n in broken["by_status"].items():
        groups_by_status.add_metric([window, status], n)
    singles = {
        "parallel_ops_breakage_open_ratio": broken["open_rate"],
        "parallel_ops_breakage_repeat_ratio": broken["repeat_rate"],
        "parallel_ops_consumption_template_versions": templates["versions_total"],
        "parallel_ops_consumption_template_consistent": 1 if templates["version_consistent"] else 0,
        "parallel_ops_overlay_cache_hit_ratio": cache["hit_rate"],
    }
    out = [groups_by_status]
    for name, value in singles.items():
        family = metric_family(name, namespace=namespace)
        family.add_metric([window], value)
        out.append(family)
    requests = metric_family("parallel_ops_overlay_cache_requests", namespace=namespace)
    hits = metric_family("parallel_ops_overlay_cache_hits", namespace=namespace)
    for name, stats in cache["caches"].items():
        requests.add_metric([window, name], stats["requests"])
        hits.add_metric([window, name], stats["hits"])
    return [*out, requests, hits]


@router.get("/metrics", response_class=PlainTextResponse, summary="The summary in Prometheus text format 0.0.4")
def metrics(scope: ScopeDep) -> Response:
    body, _hints = scope.summary(now_ms())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(_summary_families(body, namespace=scope.services.settings.obs_metrics_namespace)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
