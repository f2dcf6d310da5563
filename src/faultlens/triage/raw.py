"""Window answers under attribute filters (rollups for one rolled-up attribute, raw scans otherwise); failure pages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from faultlens.store import attributes, rollups
from faultlens.store.events import EventFilter, row_to_event
from faultlens.store.tables import events

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
    if not set((*by, *combined)).issubset(rollups.SHAPES[rollups.ATTRIBUTE_SHAPE]):
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
    """rollups.aggregate's answer. One attribute filter on a rolled-up attribute is a rollup read as well;
    others (several attributes, or dimensions attribute rows do not keep) scan raw events."""
    if not attrs:
        return rollups.aggregate(conn, tenant=tenant, start=start, end=end, by=by, where=where, bucket_ms=bucket_ms)
    combined = _with_attribute(by, where, attrs)
    if combined is not None:
        return rollups.aggregate(conn, tenant=tenant, start=start, end=end, by=by, where=combined, bucket_ms=bucket_ms)
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
    """GROUP BY over raw events in [start, end) with attribute filters; see rollups.aggregate_events."""
    return rollups.aggregate_events(
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
    attrs: Mapping[str, str] | None = None,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Counts for each window [starts[i], end) (see rollups.count_since): hourly rollups when every bound is a
    whole hour and rollups can answer the attribute filter, raw events otherwise."""
    aligned = all(t % rollups.HOUR_MS == 0 for t in (*starts, end))
    combined = _with_attribute(by, None, attrs)
    if aligned and (not attrs or combined is not None):
        return rollups.count_since(conn, tenant=tenant, starts=starts, end=end, by=by, where=combined)
    return rollups.count_since(
        conn, tenant=tenant, starts=starts, end=end, by=by, extra=attributes.clauses(conn.dialect.name, attrs), raw=True
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

    def event_filter(self) -> EventFilter:
        return EventFilter(
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            source=self.source,
            failure_class=self.failure_class,
            failure_kind=self.failure_kind,
            category=self.category,
            failures_only=True,
        )

    def rollup_where(self) -> dict[str, str]:
        names = ("source", "failure_class", "failure_kind", "category")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def count_failures(conn: Connection, *, tenant: str, query: FailureQuery) -> int:
    """Failures (failure_class other than none) matching the query; rollups answer unless attributes filter."""
    rows = aggregate(
        conn,
        tenant=tenant,
        start=query.start_ms,
        end=query.end_ms,
        by=("failure_class",),
        where=query.rollup_where(),
        attrs=query.attrs,
    )
    return sum(n for (failure_class,), (n, _a) in rows.items() if failure_class != "none")


def list_failures(
    conn: Connection, *, tenant: str, query: FailureQuery, page: int, page_size: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page of failures, newest first, and its pagination (page, page_size, pages, total)."""
    total = count_failures(conn, tenant=tenant, query=query)
    pages = math.ceil(total / page_size)
    items: list[dict[str, Any]] = []
    if page <= pages:
        where = query.event_filter().clauses(tenant) + attributes.clauses(conn.dialect.name, query.attrs)
        stmt = (
            select(events)
            .where(*where)
            .order_by(events.c.occurred_at.desc(), events.c.pk.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        items = [row_to_event(r) for r in conn.execute(stmt).mappings()]
    return items, {"page": page, "page_size": page_size, "pages": pages, "total": total}
