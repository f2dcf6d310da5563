"""Trends: per-bucket totals, failures by class and rates over a window, epoch-aligned, empty buckets included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from faultlens.errors import InvalidRequest, param_details
from faultlens.store.rollup_shapes import DAY_MS, HOUR_MS
from faultlens.timeutil import Window, ms_to_rfc3339
from faultlens.triage import raw
from faultlens.triage.counts import BY, Counts, tally, tally_by, window_rows
from faultlens.triage.overview import describe_window, release_where

BUCKETS_MS: dict[str, int] = {"1h": HOUR_MS, "6h": 6 * HOUR_MS, "1d": DAY_MS, "7d": 7 * DAY_MS}


def bucket_label(bucket_ms: int) -> str:
    if bucket_ms % DAY_MS == 0:
        return f"{bucket_ms // DAY_MS}d"
    if bucket_ms % HOUR_MS == 0:
        return f"{bucket_ms // HOUR_MS}h"
    return f"{bucket_ms}ms"


def _point(counts: Counts) -> dict[str, Any]:
    return {
        "total": counts.total,
        "success": counts.success,
        "failures": counts.failures,
        "service_failures": counts.of_class("service_failure"),
        "client_failures": counts.of_class("client_failure"),
        "client_aborts": counts.of_class("client_abort"),
        "actionable_failures": counts.actionable,
        "dead_letters": counts.dead_letter,
        "retries": counts.retry,
        "failure_rate": counts.failure_rate,
        "actionable_failure_rate": counts.actionable_rate,
    }


def build_trends(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    bucket_ms: int,
    source: str | None = None,
    operation: str | None = None,
    attrs: Mapping[str, str] | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """One point per epoch-aligned bucket touching the window; the first and last may be partly outside it."""
    if bucket_ms <= 0 or bucket_ms > window.end_ms - 1 - window.start_ms:
        message = "the bucket must not be longer than the window"
        raise InvalidRequest(
            message, details=param_details("bucket", message, bucket_ms=bucket_ms, window=window.label)
        )
    where = {k: v for k, v in (("source", source), ("operation", operation)) if v is not None}
    where.update(release_where(release, environment))
    rows = window_rows(conn, tenant=tenant, window=window, where=where, attrs=attrs, bucket_ms=bucket_ms)
    first = window.start_ms // bucket_ms * bucket_ms
    last = (window.end_ms - 1) // bucket_ms * bucket_ms
    per_bucket = tally_by(rows, ("bucket", *BY), "bucket")
    buckets = [
        {"start": ms_to_rfc3339(b), "end": ms_to_rfc3339(b + bucket_ms), **_point(per_bucket.get(b, Counts()))}
        for b in range(first, last + 1, bucket_ms)
    ]
    return {
        "window": describe_window(window),
        "bucket": bucket_label(bucket_ms),
        "bucket_ms": bucket_ms,
        "filters": {
            "source": source,
            "operation": operation,
            **{k: (attrs or {}).get(k) for k in raw.ATTRIBUTE_FILTERS},
            "release": release,
            "environment": environment,
        },
        "buckets": buckets,
        "totals": _point(tally(rows, ("bucket", *BY))),
    }
