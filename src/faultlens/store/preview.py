"""The reads of a rule-change preview over one tenant's window of events: a count, input groups, sample ids."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, not_, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store.tables import events


@dataclass(frozen=True)
class WindowScan:
    """Which events a preview reads ([start_ms, end_ms) of one tenant) and how the database should find them."""

    tenant: str
    start_ms: int
    end_ms: int
    sequential: bool = False  # SQLite: read the table in order rather than walk the time index

    def clauses(self) -> list[ColumnElement[bool]]:
        occurred: Any = events.c.occurred_at
        if self.sequential:
            occurred = events.c.occurred_at + 0  # "+ 0" makes the index unusable
        return [events.c.tenant == self.tenant, occurred >= self.start_ms, occurred < self.end_ms]


def count_window(conn: Connection, *, tenant: str, start_ms: int, end_ms: int) -> int:
    """Events of the tenant in [start_ms, end_ms) (over the time index)."""
    e = events.c
    stmt = (
        select(func.count())
        .select_from(events)
        .where(e.tenant == tenant, e.occurred_at >= start_ms, e.occurred_at < end_ms)
    )
    return int(conn.execute(stmt).scalar() or 0)


def plan_window_scan(conn: Connection, *, tenant: str, start_ms: int, end_ms: int, rows: int) -> WindowScan:
    """The scan of a window holding `rows` events."""
    sequential = False
    if conn.dialect.name == "sqlite":
        # Separate queries: SQLite answers a lone min() or max() of the rowid from the b-tree's edge.
        low = conn.execute(select(func.min(events.c.pk))).scalar()
        high = conn.execute(select(func.max(events.c.pk))).scalar()
        # SQLite walks the time index row by row with random table reads; once the window holds a good
        # share of the table, a sequential scan is several times faster.
        sequential = low is not None and high is not None and rows * 5 > high - low + 1
    return WindowScan(tenant, start_ms, end_ms, sequential)


def _same(values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    return [events.c[name].is_(None) if value is None else events.c[name] == value for name, value in values.items()]


def group_window(
    conn: Connection, scan: WindowScan, *, columns: Sequence[str], skip: Mapping[str, Any]
) -> Iterator[tuple[tuple[Any, ...], int, str, str]]:
    """(values of `columns`, events, smallest id, largest id) per distinct combination in the window, leaving out
    the events whose columns all equal `skip` (those are counted, not grouped)."""
    cols = [events.c[name] for name in columns]
    skipped = and_(*(events.c[name] == value for name, value in skip.items()))
    e = events.c
    stmt = (
        select(*cols, func.count(), func.min(e.id), func.max(e.id))
        .where(*scan.clauses(), not_(skipped))
        .group_by(*cols)
    )
    for row in conn.execute(stmt):
        n, min_id, max_id = row[len(cols) :]
        yield tuple(row[: len(cols)]), int(n), min_id, max_id


def sample_window(
    conn: Connection, scan: WindowScan, *, match: Mapping[str, Any], other_than: Sequence[str], limit: int
) -> list[str]:
    """Up to `limit` ids of window events whose columns equal `match` (None matches NULL), not in `other_than`."""
    stmt = select(events.c.id).where(*scan.clauses(), *_same(match), events.c.id.not_in(other_than)).limit(limit)
    return list(conn.execute(stmt).scalars())
