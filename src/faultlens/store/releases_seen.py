"""The releases_seen registry: which releases a tenant's events carried, per environment and source, first and last."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from faultlens.store.tables import releases_seen

Key = tuple[str, str, str, str]  # tenant, release, environment, source


def spans(rows: Iterable[Mapping[str, Any]]) -> dict[Key, tuple[int, int]]:
    """(first, last) occurred_at per key of the event rows that carry a release ('' environment when missing)."""
    out: dict[Key, tuple[int, int]] = {}
    for row in rows:
        release = row.get("release")
        if not release:
            continue
        key = (row["tenant"], release, row.get("environment") or "", row["source"])
        at = int(row["occurred_at"])
        seen = out.get(key)
        if seen is None:
            out[key] = (at, at)
        elif at < seen[0] or at > seen[1]:
            out[key] = (min(at, seen[0]), max(at, seen[1]))
    return out


def record(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Fold event rows into releases_seen (earliest first_seen, latest last_seen), in the caller's transaction."""
    record_spans(conn, spans(rows))


def record_spans(conn: Connection, seen: Mapping[Key, tuple[int, int]]) -> None:
    """Fold spans() of event rows into releases_seen, in the caller's transaction.

    Keys go in sorted order, so concurrent ingest transactions lock rows in one order and cannot deadlock; a row
    that would not change is not rewritten (most batches of a running release only touch last_seen, or nothing).
    Written against the driver: this runs inside every ingest batch.
    """
    if not seen:
        return
    values = [(t, r, e, s, lo, hi) for (t, r, e, s), (lo, hi) in sorted(seen.items())]
    pg = conn.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    least, greatest = ("LEAST", "GREATEST") if pg else ("MIN", "MAX")
    sql = (
        "INSERT INTO releases_seen (tenant, release, environment, source, first_seen, last_seen) "
        f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (tenant, release, environment, source) DO UPDATE SET "
        f"first_seen = {least}(releases_seen.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}(releases_seen.last_seen, excluded.last_seen) "
        "WHERE excluded.first_seen < releases_seen.first_seen OR excluded.last_seen > releases_seen.last_seen"
    )
    conn.exec_driver_sql(sql, values)


def list_seen(
    conn: Connection,
    *,
    tenant: str,
    start: int | None = None,
    end: int | None = None,
    environment: str | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """The registry rows of a tenant seen in [start, end) (first_seen before the end, last_seen at or after the
    start), optionally of one environment and source, oldest first_seen first."""
    c = releases_seen.c
    where = [c.tenant == tenant]
    if start is not None:
        where.append(c.last_seen >= start)
    if end is not None:
        where.append(c.first_seen < end)
    if environment is not None:
        where.append(c.environment == environment)
    if source is not None:
        where.append(c.source == source)
    stmt = (
        select(c.release, c.environment, c.source, c.first_seen, c.last_seen)
        .where(*where)
        .order_by(c.first_seen, c.release, c.environment, c.source)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]
