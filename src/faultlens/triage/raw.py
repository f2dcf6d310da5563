"""Raw-event scans: attribute filters (JSON attributes), aggregates rollups cannot answer, failure pages."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store import rollups
from faultlens.store.events import EventFilter, row_to_event
from faultlens.store.tables import events

# The attribute filters the API exposes; the names the parallel-ops document uses.
ATTRIBUTE_FILTERS = ("site_id", "target_object", "template_key")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CODE_CHARS = 64  # rollups keep the first 64 characters of error_code; raw answers must match them

Counts = dict[tuple[Any, ...], tuple[int, int]]


def attribute_text(dialect: str, key: str) -> ColumnElement[Any]:
    """The text form of events.attributes[key] (strings and numbers compare alike on both databases)."""
    if not _KEY.match(key):
        raise ValueError(f"{key!r} is not an attribute name")
    if dialect == "postgresql":
        return cast(events.c.attributes, JSONB).op("->>")(key)
    return cast(func.json_extract(events.c.attributes, f'$."{key}"'), events.c.attributes.type)


def attribute_clauses(dialect: str, attrs: Mapping[str, str] | None) -> list[ColumnElement[bool]]:
    return [attribute_text(dialect, k) == v for k, v in sorted((attrs or {}).items())]


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
    """rollups.aggregate's answer; attributes are not rollup dimensions, so with attribute filters scan raw events."""
    if not attrs:
        return rollups.aggregate(conn, tenant=tenant, start=start, end=end, by=by, where=where, bucket_ms=bucket_ms)
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
        extra=attribute_clauses(conn.dialect.name, attrs),
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
    whole hour and no attribute filters, raw events otherwise."""
    aligned = all(t % rollups.HOUR_MS == 0 for t in (*starts, end))
    return rollups.count_since(conn, tenant=tenant, starts=starts, end=end, by=by,
                               extra=attribute_clauses(conn.dialect.name, attrs), raw=bool(attrs) or not aligned)


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
        where = query.event_filter().clauses(tenant) + attribute_clauses(conn.dialect.name, query.attrs)
        stmt = (
            select(events)
            .where(*where)
            .order_by(events.c.occurred_at.desc(), events.c.pk.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        items = [row_to_event(r) for r in conn.execute(stmt).mappings()]
    return items, {"page": page, "page_size": page_size, "pages": pages, "total": total}
