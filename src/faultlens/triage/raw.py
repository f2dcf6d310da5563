"""Window answers under attribute filters (rollups for one rolled-up attribute, raw scans otherwise); failure pages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from faultlens.store import attributes, rollup_reads, rollup_shapes
from faultlens.store.events import EventFilter, list_events_at

ATTRIBUTE_FILTERS = attributes.ROLLED  # the attribute filters the API exposes

Counts = dict[tuple[Any, ...], tuple[int, int]]


def _with_attribute(
    by: Sequence[str], where: Mapping[str, Any] | None, attrs: Mapping[str, str] | None
) -> dict[str, Any] | None:
    """`where` plus the attribute filter when attribute rollups can answer the question, else None."""
    pair = attributes.rollable(attrs)
    if pair is None:
        return None
    combined = {**(where or {}), "attr_name": pair[0], "attr_value": pair[1]}
    if not set((*by, *combined)).issubset(rollup_shapes.SHAPES[rollup_shapes.ATTRIBUTE_SHAPE]):
        return None  # e.g. by operation: attribute rows do not keep it
    return combined


def aggregate(
    conn: Connection,
    *,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    attrs: Mapping[str, str] | None = None,
    bucket_ms: int | None = None,
) -> Counts:
    """rollup_reads.aggregate's answer. One attribute filter on a rolled-up attribute is a rollup read as well;
    others (several attributes, or dimensions attribute rows do not keep) scan raw events."""
    if not attrs:
        return rollup_reads.aggregate(
            conn, tenant=tenant, start=start, end=end, by=by, where=where, bucket_ms=bucket_ms
        )
    combined = _with_attribute(by, where, attrs)
    if combined is not None:
        return rollup_reads.aggregate(
            conn, tenant=tenant, start=start, end=end, by=by, where=combined, bucket_ms=bucket_ms
        )
    return aggregate_raw(
        conn, tenant=tenant, start=start, end=end, by=by, where=where, attrs=attrs, bucket_ms=bucket_ms
    )


def aggregate_raw(
    conn: Connection,
    *,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    attrs: Mapping[str, str] | None = None,
    bucket_ms: int | None = None,
    origin: int = 0,
) -> Counts:
    """GROUP BY over raw events in [start, end) with attribute filters; see rollup_reads.aggregate_events."""
    return rollup_reads.aggregate_events(
        conn,
        tenant=tenant,
        start=start,
        end=end,
        by=by,
        where=where,
        extra=attributes.clauses(conn.dialect.name, attrs),
        bucket_ms=bucket_ms,
        origin=origin,
    )


def count_since(
    conn: Connection,
    *,
    tenant: str,
    starts: Sequence[int],
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    attrs: Mapping[str, str] | None = None,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Counts for each window [starts[i], end) (see rollup_reads.count_since): hourly rollups when every bound is a
    whole hour and rollups can answer the attribute filter, raw events otherwise."""
    aligned = all(t % rollup_shapes.HOUR_MS == 0 for t in (*starts, end))
    combined = _with_attribute(by, where, attrs) if attrs else dict(where or {})
    if aligned and combined is not None:
        return rollup_reads.count_since(conn, tenant=tenant, starts=starts, end=end, by=by, where=combined)
    return rollup_reads.count_since(
        conn,
        tenant=tenant,
        starts=starts,
        end=end,
        by=by,
        where=where,
        extra=attributes.clauses(conn.dialect.name, attrs),
        raw=True,
    )


@dataclass(frozen=True)
class FailureQuery:
    """Which failures to list: a window, the rollup-dimension filters and attribute filters."""

    start_ms: int
    end_ms: int
    source: str | None = None
    failure_class: str | None = None
    failure_kind: str | None = None
    category: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    release: str | None = None
    environment: str | None = None

    def event_filter(self) -> EventFilter:
        return EventFilter(
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            source=self.source,
            failure_class=self.failure_class,
            failure_kind=self.failure_kind,
            category=self.category,
            failures_only=True,
            release=self.release,
            environment=self.environment,
        )

    def rollup_where(self) -> dict[str, str]:
        names = ("source", "failure_class", "failure_kind", "category", "release", "environment")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def count_failures(conn: Connection, *, tenant: str, query: FailureQuery) -> int:
    """Failures (failure_class other than none) matching the query; rollups answer unless attributes filter."""
    return sum(_failures_per_bucket(conn, tenant=tenant, query=query, bucket_ms=None).values())


def _failures_per_bucket(
    conn: Connection, *, tenant: str, query: FailureQuery, bucket_ms: int | None
) -> dict[int, int]:
    """Failures matching the query per epoch-aligned bucket start (all under 0 without `bucket_ms`)."""
    rows = aggregate(
        conn,
        tenant=tenant,
        start=query.start_ms,
        end=query.end_ms,
        by=("failure_class",),
        where=query.rollup_where(),
        attrs=query.attrs,
        bucket_ms=bucket_ms,
    )
    out: dict[int, int] = {}
    for key, (n, _a) in rows.items():
        bucket, failure_class = key if bucket_ms else (0, *key)
        if failure_class != "none":
            out[bucket] = out.get(bucket, 0) + n
    return out


# Pages starting deeper than this many rows seek by rollup counts instead of stepping over the rows.
SEEK_AFTER_ROWS = 500


def seek(conn: Connection, *, tenant: str, query: FailureQuery, offset: int, limit: int) -> tuple[int, int, int]:
    """(start, end, offset) such that the newest-first listing of the query cut to [start, end), skipping the
    returned offset and taking `limit` rows, shows the same rows as the whole query skipping `offset`.

    Days, then hours, are counted newest first: every failure at or after the chosen hour's end is among the
    rows skipped, and the buckets just older than it hold the rest of the page, so the listing reads a few
    hours of rows instead of stepping over the skipped ones. Without rollups for the attribute filter
    (several attributes, long values) counting would scan as much as stepping: nothing changes then.
    """
    if query.attrs and _with_attribute(("failure_class",), query.rollup_where(), query.attrs) is None:
        return query.start_ms, query.end_ms, offset
    lo, end = query.start_ms, query.end_ms
    older: list[list[tuple[int, int]]] = []  # per level: the chosen bucket and the older ones, newest first
    for bucket_ms in (rollup_shapes.DAY_MS, rollup_shapes.HOUR_MS):
        window = dataclasses.replace(query, start_ms=lo, end_ms=end)
        ordered = sorted(
            _failures_per_bucket(conn, tenant=tenant, query=window, bucket_ms=bucket_ms).items(), reverse=True
        )
        for i, (bucket, n) in enumerate(ordered):
            if offset < n:
                older.insert(0, ordered[i:])
                lo, end = max(bucket, query.start_ms), min(bucket + bucket_ms, end)
                break
            offset -= n
        else:
            return query.start_ms, end, offset  # fewer rows than the offset: the page is empty either way
    # The chosen hour and older hours of its day, then the days before it (the chosen day itself is done).
    need = offset + limit
    for bucket, n in [*older[0], *older[1][1:]]:
        need -= n
        if need <= 0:
            return max(bucket, query.start_ms), end, offset
    return query.start_ms, end, offset


def list_failures(
    conn: Connection, *, tenant: str, query: FailureQuery, page: int, page_size: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page of failures, newest first, and its pagination (page, page_size, pages, total)."""
    total = count_failures(conn, tenant=tenant, query=query)
    pages = math.ceil(total / page_size)
    items: list[dict[str, Any]] = []
    if page <= pages:
        start, end, offset = query.start_ms, query.end_ms, (page - 1) * page_size
        if offset > SEEK_AFTER_ROWS:
            start, end, offset = seek(conn, tenant=tenant, query=query, offset=offset, limit=page_size)
        cut = dataclasses.replace(query, start_ms=start, end_ms=end)
        items = list_events_at(
            conn, tenant=tenant, flt=cut.event_filter(), attrs=query.attrs, limit=page_size, offset=offset
        )
    return items, {"page": page, "page_size": page_size, "pages": pages, "total": total}
