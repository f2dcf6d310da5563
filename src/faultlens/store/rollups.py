"""Rollups: hourly and daily counts kept in step with events, and window queries that read them first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store.tables import ROLLUP_KEY, events, pg_array_types, rollups

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
GRAINS = (HOUR_MS // 1000, DAY_MS // 1000)
DIMENSIONS = ROLLUP_KEY[3:]  # everything after tenant, grain, bucket
_CODE_CHARS = 64

RollupKey = tuple[Any, ...]
_PG_TYPES = pg_array_types(rollups, [*ROLLUP_KEY, "count", "attempt_sum"])


def _key_of(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        row["source"],
        row["operation"] or "",
        row["item_type"],
        row["status"],
        row["failure_class"],
        row["failure_kind"],
        row["category"],
        bool(row["is_actionable"]),
        (row["error_code"] or "")[:_CODE_CHARS],
    )


def deltas(rows: Iterable[Mapping[str, Any]], sign: int = 1) -> tuple[Counter[RollupKey], Counter[RollupKey]]:
    """Count rows per (tenant, grain, bucket, dimensions); returns (counts, attempt sums)."""
    hourly: Counter[RollupKey] = Counter()
    hourly_attempts: Counter[RollupKey] = Counter()
    for row in rows:
        at = row["occurred_at"]
        key = (row["tenant"], at - at % HOUR_MS, *_key_of(row))
        hourly[key] += sign
        attempt = row["attempt"]
        if attempt:
            hourly_attempts[key] += sign * attempt
    # Days are summed from the (far fewer) hour keys rather than from every row again.
    counts: Counter[RollupKey] = Counter()
    attempts: Counter[RollupKey] = Counter()
    hour_grain, day_grain = GRAINS
    for (tenant, hour, *dims), n in hourly.items():
        a = hourly_attempts.get((tenant, hour, *dims), 0)
        for key in ((tenant, hour_grain, hour, *dims), (tenant, day_grain, hour - hour % DAY_MS, *dims)):
            counts[key] += n
            if a:
                attempts[key] += a
    return counts, attempts


def apply(conn: Connection, rows: Sequence[Mapping[str, Any]], sign: int = 1) -> None:
    """Add (sign=1) or remove (sign=-1) rows from the rollups, in the caller's transaction."""
    counts, attempts = deltas(rows, sign)
    apply_deltas(conn, counts, attempts)


def apply_deltas(conn: Connection, counts: Counter[RollupKey], attempts: Counter[RollupKey]) -> None:
    """Upsert the deltas: one executemany against the driver (this runs inside every ingest batch)."""
    values = [(*key, n, attempts.get(key, 0)) for key, n in counts.items() if n or attempts.get(key, 0)]
    if not values:
        return
    # Sorted so concurrent writers take row locks in one order and cannot deadlock each other.
    values.sort(key=lambda v: tuple(map(str, v[:-2])))
    cols = ", ".join(ROLLUP_KEY)
    upsert = (
        f"ON CONFLICT ({cols}) DO UPDATE SET count = rollups.count + excluded.count, "
        "attempt_sum = rollups.attempt_sum + excluded.attempt_sum"
    )
    if conn.dialect.name == "postgresql":
        # One array per column: a short statement PostgreSQL plans once, instead of thousands of upserts.
        arrays = tuple([v[i] for v in values] for i in range(len(_PG_TYPES)))
        unnest = ", ".join(f"%s::{t}" for t in _PG_TYPES)
        conn.exec_driver_sql(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) SELECT * FROM unnest({unnest}) {upsert}", arrays
        )
        return
    marks = ", ".join(["?"] * (len(ROLLUP_KEY) + 2))
    conn.exec_driver_sql(f"INSERT INTO rollups ({cols}, count, attempt_sum) VALUES ({marks}) {upsert}", values)


def _edge(hour: int, lo: int, hi: int) -> list[tuple[str, int, int]]:
    """[lo, hi) inside the hour starting at `hour`: raw rows, or the hour's rollup minus the raw remainder.

    Whichever reads fewer raw rows wins, so no raw piece is longer than half an hour; a window ending now
    subtracts the (normally empty) rest of the current hour.
    """
    if hi - lo <= HOUR_MS // 2:
        return [("raw", lo, hi)]
    pieces = [("hour", hour, hour + HOUR_MS)]
    if hour < lo:
        pieces.append(("raw-", hour, lo))
    if hi < hour + HOUR_MS:
        pieces.append(("raw-", hi, hour + HOUR_MS))
    return pieces


def decompose(start: int, end: int, *, days: bool = True) -> list[tuple[str, int, int]]:
    """Split [start, end) into signed pieces: ("day"|"hour"|"raw", lo, hi) add, ("raw-", lo, hi) subtracts.

    Days inside, hours beside them, and at each edge the cheaper of raw rows or an hour minus its remainder.
    """
    h1 = -(-start // HOUR_MS) * HOUR_MS
    h2 = end // HOUR_MS * HOUR_MS
    if h1 > h2:  # inside one hour
        return _edge(h2, start, end)
    pieces: list[tuple[str, int, int]] = []
    if start < h1:
        pieces += _edge(h1 - HOUR_MS, start, h1)
    d1 = -(-h1 // DAY_MS) * DAY_MS
    d2 = h2 // DAY_MS * DAY_MS
    if days and d1 < d2:
        if h1 < d1:
            pieces.append(("hour", h1, d1))
        pieces.append(("day", d1, d2))
        if d2 < h2:
            pieces.append(("hour", d2, h2))
    elif h1 < h2:
        pieces.append(("hour", h1, h2))
    if h2 < end:
        pieces += _edge(h2, h2, end)
    return pieces


def aggregate(
    conn: Connection,
    *,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    bucket_ms: int | None = None,
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Sum (count, attempt_sum) over [start, end) grouped by `by` (rollup dimensions), reading rollups first.

    With `bucket_ms`, the first group element is the bucket start, aligned to the epoch (floor(t / bucket_ms)
    * bucket_ms). A multiple of an hour lets hourly rollups serve it, of a day daily ones; otherwise raw
    events answer.
    """
    where = dict(where or {})
    for name in (*by, *where):
        if name not in DIMENSIONS:
            raise ValueError(f"{name} is not a rollup dimension")
    totals: dict[tuple[Any, ...], list[int]] = {}

    sign = 1

    def add(key: tuple[Any, ...], n: int, a: int) -> None:
        slot = totals.setdefault(key, [0, 0])
        slot[0] += sign * int(n)
        slot[1] += sign * int(a or 0)

    if bucket_ms and bucket_ms % HOUR_MS:
        pieces = [("raw", start, end)]
    else:
        pieces = decompose(start, end, days=not bucket_ms or bucket_ms % DAY_MS == 0)
    for kind, lo, hi in pieces:
        sign = -1 if kind == "raw-" else 1
        if kind in ("raw", "raw-"):
            raw = aggregate_events(conn, tenant=tenant, start=lo, end=hi, by=by, where=where, bucket_ms=bucket_ms)
            for key, (n, a) in raw.items():
                add(key, n, a)
        else:
            grain = HOUR_MS if kind == "hour" else DAY_MS
            _aggregate_rollups(conn, tenant, grain, lo, hi, by, where, bucket_ms, add)
    return {k: (v[0], v[1]) for k, v in totals.items() if v[0]}


def _aggregate_rollups(
    conn: Connection,
    tenant: str,
    grain_ms: int,
    lo: int,
    hi: int,
    by: Sequence[str],
    where: Mapping[str, Any],
    bucket_ms: int | None,
    add: Any,
) -> None:
    r = rollups.c
    cols: list[Any] = [r[name] for name in by]
    if bucket_ms:
        cols.insert(0, ((r.bucket // bucket_ms) * bucket_ms).label("b"))
    stmt = (
        select(*cols, func.sum(r.count), func.sum(r.attempt_sum))
        .where(
            r.tenant == tenant,
            r.grain == grain_ms // 1000,
            r.bucket >= lo,
            r.bucket < hi,
            *(r[k] == v for k, v in where.items()),
        )
        .group_by(*cols)
    )
    for row in conn.execute(stmt).all():
        *key, n, a = row
        if bucket_ms:
            key[0] = int(key[0])
        add(tuple(key), n, a)


def aggregate_events(
    conn: Connection,
    *,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    extra: Sequence[ColumnElement[bool]] = (),
    bucket_ms: int | None = None,
    origin: int = 0,
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """GROUP BY over raw events in [start, end), keyed exactly like `aggregate` (the reference rollups match).

    `extra` adds conditions rollups cannot answer (attribute filters). With `bucket_ms` the first key element
    is the bucket start, origin + k * bucket_ms; `origin` must not be after `start` (integer division
    truncates towards zero, so negative offsets would land in the wrong bucket).
    """
    where = dict(where or {})
    for name in (*by, *where):
        if name not in DIMENSIONS:
            raise ValueError(f"{name} is not a rollup dimension")
    if bucket_ms and origin > start:
        raise ValueError("origin must not be after start")
    e = events.c
    cols: list[Any] = [func.coalesce(e[name], "") if name in ("operation", "error_code") else e[name] for name in by]
    if bucket_ms:
        cols.insert(0, ((e.occurred_at - origin) // bucket_ms).label("b"))
    conds: list[ColumnElement[bool]] = [e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end, *extra]
    for k, v in where.items():
        if k == "error_code":
            # Rollups keep the first 64 characters of a code; raw rows must compare the same way.
            conds.append(func.substr(func.coalesce(e.error_code, ""), 1, _CODE_CHARS) == v)
        elif k == "operation":
            conds.append(func.coalesce(e.operation, "") == v)
        else:
            conds.append(e[k] == v)
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
