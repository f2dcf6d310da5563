"""Rollup reads: window sums by rollup dimensions, rollups first, and the raw-event scans they are checked against."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store import attributes, state
from faultlens.store.rollup_shapes import (
    ATTRIBUTE_DIMENSIONS,
    ATTRIBUTE_SHAPE,
    CODE_CHARS,
    GRAIN_NAMES,
    HOUR_MS,
    RELEASE_SHAPE,
    SHAPE_GRAINS_MS,
    check_names,
    covering_shape,
)
from faultlens.store.rollup_windows import decompose
from faultlens.store.tables import events, rollups

# service_state: "ready" once attribute rows cover every event (a database upgraded with events in it waits
# for the rollup rebuild job; until then attribute filters scan raw events).
ATTRIBUTE_ROLLUPS_STATE = "attribute_rollups"
# service_state: "ready" once release rows cover every event (migration 0012 on a database with events asks the
# rebuild job for them, "needed"); until then release and environment questions scan raw events.
RELEASE_ROLLUPS_STATE = "release_rollups"
# Text dimensions events may leave NULL: rollups hold '' there, raw reads compare and group the same way.
_NULLABLE = ("operation", "error_code", "release", "environment")

Totals = dict[tuple[Any, ...], tuple[int, int]]


def _check_query(by: Sequence[str], where: Mapping[str, Any]) -> int | None:
    """The shape keeping `by` and `where` (None: none keeps them all, raw events answer); attributes may only
    filter, by name and value together."""
    if set(ATTRIBUTE_DIMENSIONS) & set(by):
        raise ValueError("attributes filter rollups; they cannot group them")
    if len(set(ATTRIBUTE_DIMENSIONS) & set(where)) == 1:
        raise ValueError("an attribute filter needs both attr_name and attr_value")
    return covering_shape((*by, *where))


def _answering_shape(conn: Connection, by: Sequence[str], where: Mapping[str, Any]) -> int | None:
    """The shape whose rows answer this question now, or None when raw events must (no shape keeps these
    dimensions together, or the shape's rows are still being built from events)."""
    shape = _check_query(by, where)
    if shape == ATTRIBUTE_SHAPE and not _attribute_rows_answer(conn, where):
        return None
    if shape == RELEASE_SHAPE and not release_rollups_ready(conn):
        return None
    return shape


def attribute_rollups_ready(conn: Connection) -> bool:
    return state.find_state(conn, ATTRIBUTE_ROLLUPS_STATE) == "ready"


def release_rollups_ready(conn: Connection) -> bool:
    return state.find_state(conn, RELEASE_ROLLUPS_STATE) == "ready"


def _attribute_rows_answer(conn: Connection, where: Mapping[str, Any]) -> bool:
    """Whether attribute rows hold the answer for this filter: a rolled attribute, a short value, rows complete."""
    rolled = attributes.rollable({where["attr_name"]: where["attr_value"]}) is not None
    return rolled and attribute_rollups_ready(conn)


def aggregate(
    conn: Connection,
    *,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    bucket_ms: int | None = None,
) -> Totals:
    """Sum (count, attempt_sum) over [start, end) grouped by `by` (rollup dimensions), reading rollups first.

    With `bucket_ms`, the first group element is the bucket start, aligned to the epoch (floor(t / bucket_ms)
    * bucket_ms). Only grains dividing it answer (hours for 6h buckets, weeks too for 7d ones); a bucket that
    is not a multiple of an hour is answered from raw events. `where` may hold attr_name and attr_value: one
    attribute filter, answered from attribute rows once they are complete and from raw events until then; the
    same for release and environment and the release rows. Dimensions no shape keeps together scan raw events.
    """
    where = dict(where or {})
    shape = _answering_shape(conn, by, where)
    if shape is None:
        return aggregate_events(conn, tenant=tenant, start=start, end=end, by=by, where=where, bucket_ms=bucket_ms)
    totals: dict[tuple[Any, ...], list[int]] = {}

    sign = 1

    def add(key: tuple[Any, ...], n: int, a: int) -> None:
        slot = totals.setdefault(key, [0, 0])
        slot[0] += sign * int(n)
        slot[1] += sign * int(a or 0)

    if bucket_ms and bucket_ms % HOUR_MS:
        pieces = [("raw", start, end)]
    else:
        grains = [g for g in SHAPE_GRAINS_MS[shape] if not bucket_ms or bucket_ms % g == 0]
        pieces = decompose(start, end, grains=grains)
    grain_of = {name: ms for ms, name in GRAIN_NAMES.items()}
    for kind, lo, hi in pieces:
        sign = -1 if kind == "raw-" else 1
        if kind in ("raw", "raw-"):
            raw = aggregate_events(conn, tenant=tenant, start=lo, end=hi, by=by, where=where, bucket_ms=bucket_ms)
            for key, (n, a) in raw.items():
                add(key, n, a)
        else:
            _aggregate_rollups(conn, tenant, shape, grain_of[kind], lo, hi, by, where, bucket_ms, add)
    return {k: (v[0], v[1]) for k, v in totals.items() if v[0]}


def _aggregate_rollups(
    conn: Connection,
    tenant: str,
    shape: int,
    grain_ms: int,
    lo: int,
    hi: int,
    by: Sequence[str],
    where: Mapping[str, Any],
    bucket_ms: int | None,
    add: Callable[[tuple[Any, ...], int, int], None],
) -> None:
    r = rollups.c
    cols: list[Any] = [r[name] for name in by]
    if bucket_ms:
        cols.insert(0, ((r.bucket // bucket_ms) * bucket_ms).label("b"))
    stmt = (
        select(*cols, func.sum(r.count), func.sum(r.attempt_sum))
        .where(
            r.tenant == tenant,
            r.shape == shape,
            r.grain == grain_ms // 1000,
            *_attribute_conditions(where),
            r.bucket >= lo,
            r.bucket < hi,
            *(r[k] == v for k, v in where.items() if k not in ATTRIBUTE_DIMENSIONS),
        )
        .group_by(*cols)
    )
    for row in conn.execute(stmt).all():
        *key, n, a = row
        if bucket_ms:
            key[0] = int(key[0])
        add(tuple(key), n, a)


def _attribute_conditions(where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    # Always both: rows without an attribute hold '' there, and the equalities lead the unique index.
    r = rollups.c
    return [r.attr_name == where.get("attr_name", ""), r.attr_value == where.get("attr_value", "")]


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
) -> Totals:
    """GROUP BY over raw events in [start, end), keyed exactly like `aggregate` (the reference rollups match).

    `extra` adds conditions rollups cannot answer (attribute filters). With `bucket_ms` the first key element
    is the bucket start, origin + k * bucket_ms; `origin` must not be after `start` (integer division
    truncates towards zero, so negative offsets would land in the wrong bucket).
    """
    if bucket_ms and origin > start:
        raise ValueError("origin must not be after start")
    e = events.c
    cols = _event_columns(by)
    if bucket_ms:
        cols.insert(0, ((e.occurred_at - origin) // bucket_ms).label("b"))
    conds = _event_conditions(conn, tenant, start, end, by, where or {}, extra)
    stmt = select(*cols, func.count(), func.sum(func.coalesce(e.attempt, 0))).where(*conds).group_by(*cols)
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(stmt).all():
        *key, n, a = row
        if bucket_ms:
            key[0] = origin + int(key[0]) * bucket_ms
        slot = totals.setdefault(_rollup_key(key, by), [0, 0])
        slot[0] += int(n)
        slot[1] += int(a or 0)
    return {k: (v[0], v[1]) for k, v in totals.items()}


def count_since(
    conn: Connection,
    *,
    tenant: str,
    starts: Sequence[int],
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any] | None = None,
    extra: Sequence[ColumnElement[bool]] = (),
    raw: bool = False,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Counts grouped by `by` for each window [starts[i], end), all in one pass of conditional sums.

    From hourly rollups (every start and the end whole hours), or with `raw` from events (any instants,
    `extra` conditions allowed). Burn-rate windows ask this: a few nested windows ending now.
    """
    if not starts:
        return {}
    where = dict(where or {})
    shape = _answering_shape(conn, by, where)
    if shape is None:
        raw = True
    if raw:
        e = events.c
        cols = _event_columns(by)
        sums = [func.sum(case((e.occurred_at >= s, 1), else_=0)) for s in starts]
        conds = _event_conditions(conn, tenant, min(starts), end, by, where, extra)
    else:
        if extra:
            raise ValueError("rollups cannot answer extra conditions")
        if any(t % HOUR_MS for t in (*starts, end)):
            raise ValueError("rollup windows start and end on whole hours")
        r = rollups.c
        cols = [r[name] for name in by]
        sums = [func.sum(case((r.bucket >= s, r.count), else_=0)) for s in starts]
        conds = [
            r.tenant == tenant,
            r.shape == shape,
            r.grain == HOUR_MS // 1000,
            *_attribute_conditions(where),
            r.bucket >= min(starts),
            r.bucket < end,
            *(r[k] == v for k, v in where.items() if k not in ATTRIBUTE_DIMENSIONS),
        ]
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(select(*cols, *sums).where(*conds).group_by(*cols)).all():
        key = _rollup_key(list(row[: len(by)]), by) if raw else tuple(row[: len(by)])
        slot = totals.setdefault(key, [0] * len(starts))
        for i, n in enumerate(row[len(by) :]):
            slot[i] += int(n or 0)
    return {k: tuple(v) for k, v in totals.items() if any(v)}


def _event_columns(by: Sequence[str]) -> list[Any]:
    e = events.c
    return [func.coalesce(e[name], "") if name in _NULLABLE else e[name] for name in by]


def _event_conditions(
    conn: Connection,
    tenant: str,
    start: int,
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any],
    extra: Sequence[ColumnElement[bool]],
) -> list[ColumnElement[bool]]:
    """The raw-event form of a rollup question: the same dimensions compared the way rollups store them."""
    check_names((*by, *where))  # rejects names that are not rollup dimensions (raw answers need no shape)
    e = events.c
    conds: list[ColumnElement[bool]] = [e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end, *extra]
    if "attr_name" in where:
        conds.append(attributes.clause(conn.dialect.name, where["attr_name"], where["attr_value"]))
    for k, v in where.items():
        if k in ATTRIBUTE_DIMENSIONS:
            continue
        if k == "error_code":
            # Rollups keep the first CODE_CHARS characters of a code; raw rows must compare the same way.
            conds.append(func.substr(func.coalesce(e.error_code, ""), 1, CODE_CHARS) == v)
        elif k in _NULLABLE and not v:
            conds.append(func.coalesce(e[k], "") == v)  # '' in rollups: the events without a value
        else:
            conds.append(e[k] == v)
    return conds


def _rollup_key(key: list[Any], by: Sequence[str]) -> tuple[Any, ...]:
    """A raw GROUP BY key as rollups store it; `key` may lead with a bucket before the `by` values."""
    offset = len(key) - len(by)
    for i, name in enumerate(by):
        if name == "is_actionable":
            key[offset + i] = bool(key[offset + i])
        elif name == "error_code":
            # Two long codes sharing their first CODE_CHARS characters are one rollup key; merge them the same way.
            key[offset + i] = (key[offset + i] or "")[:CODE_CHARS]
    return tuple(key)
