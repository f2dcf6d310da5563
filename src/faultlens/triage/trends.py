"""Trends: per-bucket totals, failures by class and rates over a window, epoch-aligned, empty buckets included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from faultlens.errors import InvalidRequest, param_details
from faultlens.store.rollups import DAY_MS, HOUR_MS
from faultlens.timeutil import ms_to_rfc3339
from faultlens.triage import raw, slo
from faultlens.triage.overview import describe_window
from faultlens.triage.stats import Window

BUCKETS_MS: dict[str, int] = {"1h": HOUR_MS, "6h": 6 * HOUR_MS, "1d": DAY_MS, "7d": 7 * DAY_MS}
_CLASS_FIELDS = {
    "service_failure": "service_failures",
    "client_failure": "client_failures",
    "client_abort": "client_aborts",
}


def bucket_label(bucket_ms: int) -> str:
    if bucket_ms % DAY_MS == 0:
        return f"{bucket_ms // DAY_MS}d"
    if bucket_ms % HOUR_MS == 0:
        return f"{bucket_ms // HOUR_MS}h"
    return f"{bucket_ms}ms"


def _empty(start: int, bucket_ms: int) -> dict[str, Any]:
    return {
        "start": ms_to_rfc3339(start),
        "end": ms_to_rfc3339(start + bucket_ms),
        "total": 0,
        "success": 0,
        "failures": 0,
        "service_failures": 0,
        "client_failures": 0,
        "client_aborts": 0,
        "actionable_failures": 0,
        "dead_letters": 0,
        "retries": 0,
    }


def _add(point: dict[str, Any], status: str, failure_class: str, is_actionable: bool, n: int) -> None:
    point["total"] += n
    if status == "success":
        point["success"] += n
    elif status == "dead_letter":
        point["dead_letters"] += n
    elif status == "retry":
        point["retries"] += n
    if failure_class != "none":
        point["failures"] += n
        point[_CLASS_FIELDS[failure_class]] += n
        if is_actionable:
            point["actionable_failures"] += n


def _rates(point: dict[str, Any]) -> dict[str, Any]:
    point["failure_rate"] = slo.ratio(point["failures"], point["total"])
    point["actionable_failure_rate"] = slo.ratio(point["actionable_failures"], point["total"])
    return point


def build_trends(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    bucket_ms: int,
    source: str | None = None,
    operation: str | None = None,
    attrs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One point per epoch-aligned bucket touching the window; the first and last may be partly outside it."""
    if bucket_ms <= 0 or bucket_ms > window.end_ms - 1 - window.start_ms:
        message = "the bucket must not be longer than the window"
        raise InvalidRequest(
            message, details=param_details("bucket", message, bucket_ms=bucket_ms, window=window.label)
        )
    where = {k: v for k, v in (("source", source), ("operation", operation)) if v is not None}
    rows = raw.aggregate(
        conn,
        tenant=tenant,
        start=window.start_ms,
        end=window.end_ms,
        by=("status", "failure_class", "is_actionable"),
        where=where,
        attrs=attrs,
        bucket_ms=bucket_ms,
    )
    first = window.start_ms // bucket_ms * bucket_ms
    last = (window.end_ms - 1) // bucket_ms * bucket_ms
    points = {b: _empty(b, bucket_ms) for b in range(first, last + 1, bucket_ms)}
    totals = _empty(first, 0)
    for (bucket, status, failure_class, is_actionable), (n, _a) in rows.items():
        _add(points[bucket], status, failure_class, is_actionable, n)
        _add(totals, status, failure_class, is_actionable, n)
    del totals["start"], totals["end"]
    return {
        "window": describe_window(window),
        "bucket": bucket_label(bucket_ms),
        "bucket_ms": bucket_ms,
        "filters": {
            "source": source,
            "operation": operation,
            **{k: (attrs or {}).get(k) for k in raw.ATTRIBUTE_FILTERS},
        },
        "buckets": [_rates(p) for p in points.values()],
        "totals": _rates(totals),
    }
