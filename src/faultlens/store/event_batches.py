"""Events in pk order, as jobs walk them: bounds, counts, batches, derived-field rewrites, the rebuild's table lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store.tables import events

_IN_CHUNK = 1000  # pks per UPDATE: far below every driver's bound-parameter limit


def _scope(tenant: str | None) -> list[ColumnElement[bool]]:
    return [] if tenant is None else [events.c.tenant == tenant]


def max_event_pk(conn: Connection) -> int:
    """The newest event's pk (0 when there is none)."""
    return int(conn.execute(select(func.max(events.c.pk))).scalar() or 0)


def any_events(conn: Connection, *, tenant: str | None = None) -> bool:
    """Whether any event is stored (of one tenant, when given)."""
    return conn.execute(select(events.c.pk).where(*_scope(tenant)).limit(1)).first() is not None


def count_events_between(
    conn: Connection, *, until_pk: int, after_pk: int | None = None, tenant: str | None = None
) -> int:
    """Events with after_pk < pk <= until_pk (no lower bound when `after_pk` is None), of one tenant when given."""
    where = [events.c.pk <= until_pk, *_scope(tenant)]
    if after_pk is not None:
        where.append(events.c.pk > after_pk)
    return int(conn.execute(select(func.count()).select_from(events).where(*where)).scalar() or 0)


def list_events_after(
    conn: Connection,
    *,
    columns: Sequence[str],
    after_pk: int,
    until_pk: int,
    limit: int,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """The next batch: `columns` of at most `limit` events with after_pk < pk <= until_pk, in pk order."""
    stmt = (
        select(*(events.c[name] for name in columns))
        .where(events.c.pk > after_pk, events.c.pk <= until_pk, *_scope(tenant))
        .order_by(events.c.pk)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def rewrite_events(
    conn: Connection,
    pks: Sequence[int],
    values: Mapping[str, Any],
    *,
    occurred_between: tuple[int, int] | None = None,
) -> None:
    """Set the same column values on every event of `pks` (in chunks of bounded size). `occurred_between` (the
    rows' least and greatest occurred_at) lets PostgreSQL's day partitions be pruned: without it each chunk probes
    every partition's key index."""
    where = []
    if occurred_between is not None:
        where = [events.c.occurred_at >= occurred_between[0], events.c.occurred_at <= occurred_between[1]]
    for start in range(0, len(pks), _IN_CHUNK):
        chunk = pks[start : start + _IN_CHUNK]
        conn.execute(update(events).where(events.c.pk.in_(chunk), *where).values(dict(values)))


def hold_back_ingest(conn: Connection) -> None:
    """Until this transaction ends, no event is inserted (PostgreSQL: a SHARE lock on events, which waits for
    in-flight inserts; SQLite: the caller's write lock does it already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE events IN SHARE MODE"))
