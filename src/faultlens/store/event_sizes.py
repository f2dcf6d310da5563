"""An approximate size of a tenant's stored events: what the ops summary's cost section reports as bytes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from faultlens.store.tables import events

# Numbers, booleans and the row header of one event row, roughly: the fixed part of its size.
FIXED_ROW_BYTES = 120
# Rows measured per answer: the newest of the window; a larger window is estimated from them (bounded cost).
SAMPLE_ROWS = 10_000
_TEXT_COLUMNS = (
    "id",
    "source",
    "operation",
    "item_type",
    "status",
    "error_code",
    "error_message",
    "trace_id",
    "span_id",
    "correlation_id",
    "request_id",
    "job_id",
    "release",
    "environment",
    "attributes",
    "failure_kind",
    "failure_class",
    "category",
    "rule_name",
    "rule_version",
    "fingerprint_id",
)


def estimate_bytes(conn: Connection, *, tenant: str, start: int, end: int, events_in_window: int) -> int:
    """About how many bytes the `events_in_window` events of [start, end) take: the text lengths of the newest
    SAMPLE_ROWS of them plus FIXED_ROW_BYTES a row, scaled to the whole window. Indexes and rollups not counted."""
    if events_in_window <= 0:
        return 0
    e = events.c
    size: Any = sum((func.coalesce(func.length(e[name]), 0) for name in _TEXT_COLUMNS), FIXED_ROW_BYTES)
    sample = (
        select(size.label("size"))
        .where(e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end)
        .order_by(e.occurred_at.desc())
        .limit(SAMPLE_ROWS)
        .subquery()
    )
    n, total = conn.execute(select(func.count(), func.sum(sample.c.size))).one()
    if not n:
        return 0
    return round(int(total or 0) * max(events_in_window, int(n)) / int(n))
