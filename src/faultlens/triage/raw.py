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
    return aggregate_raw(conn, tenant=tenant, start=start, end=end, by=by, where=where, attrs=attrs,
                         bucket_ms=bucket_ms)


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
    """GROUP BY over raw events in [start, end), keyed exactly like rollups.aggregate.

    With `bucket_ms` the first key element is the bucket start, origin + k * bucket_ms; `origin` must not be
    after `start` (integer division truncates towards zero, so negative offsets would land in the wrong bucket).
    """
    for name in (*by, *(where or {})):
        if name not in rollups.DIMENSIONS:
            raise ValueError(f"{name} is not a rollup dimension")
    if bucket_ms and origin > start:
        raise ValueError("origin must not be after start")
    e = events.c
    cols: list[Any] = [func.coalesce(e[n], "") if n in ("operation", "error_code") else e[n] for n in by]
    if bucket_ms:
        cols.insert(0, ((e.occurred_at - origin) // bucket_ms).label("b"))
    conds: list[ColumnElement[bool]] = [e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end]
    for k, v in (where or {}).items():
        conds.append(func.coalesce(e[k], "") == v if k in ("operation", "error_code") else e[k] == v)
    conds += attribute_clauses(conn.dialect.name, attrs)
    stmt = select(*cols, func.count(), func.sum(func.coalesce(e.attempt, 0))).where(*conds).group_by(*cols)
    offset = 1 if bucket_ms else 0
    actionable_at = list(by).index("is_actionable") + offset if "is_actionable" in by else -1
    code_at = list(by).index("error_code") + offset if "error_code" in by else -1
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(stmt).all():
        *key, n, a = row
        if bucket_ms:
            key[0] = origin + int(key[0]) * bucket_ms
        if actionable_at >= 0:
            key[actionable_at] = bool(key[actionable_at])
        if code_at >= 0:
            # Two long codes sharing their first 64 characters are one rollup key; merge them the same way.
            key[code_at] = (key[code_at] or "")[:_CODE_CHARS]
        slot = totals.setdefault(tuple(key), [0, 0])
        slot[0] += int(n)
        slot[1] += int(a or 0)
    return {k: (v[0], v[1]) for k, v in totals.items()}


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
        return EventFilter(start_ms=self.start_ms, end_ms=self.end_ms, source=self.source,
                           failure_class=self.failure_class, failure_kind=self.failure_kind,
                           category=self.category, failures_only=True)

    def rollup_where(self) -> dict[str, str]:
        names = ("source", "failure_class", "failure_kind", "category")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def count_failures(conn: Connection, *, tenant: str, query: FailureQuery) -> int:
    """Failures (failure_class other than none) matching the query; rollups answer unless attributes filter."""
    rows = aggregate(conn, tenant=tenant, start=query.start_ms, end=query.end_ms, by=("failure_class",),
                     where=query.rollup_where(), attrs=query.attrs)
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
