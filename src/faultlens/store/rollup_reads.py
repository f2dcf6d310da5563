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
    FINE_MS,
    GRAIN_NAMES,
    GROUP_SHAPE,
    HOUR_MS,
    RELEASE_SHAPE,
    SHAPE_GRAINS_MS,
    check_names,
    covering_shape,
)
from faultlens.store.rollup_windows import decompose, edge_hours
from faultlens.store.tables import events, rollups
from faultlens.timeutil import now_ms

# service_state: "ready" once attribute rows cover every event (a database upgraded with events in it waits
# for the rollup rebuild job; until then attribute filters scan raw events).
ATTRIBUTE_ROLLUPS_STATE = "attribute_rollups"
# service_state: "ready" once release rows cover every event (migration 0012 on a database with events asks the
# rebuild job for them, "needed"); until then release and environment questions scan raw events.
RELEASE_ROLLUPS_STATE = "release_rollups"
# service_state: "ready" once group rows cover every fingerprinted event (migration 0016, the same way).
GROUP_ROLLUPS_STATE = "group_rollups"
# Text dimensions events may leave NULL: rollups hold '' there, raw reads compare and group the same way.
_NULLABLE = ("operation", "error_code", "release", "environment", "fingerprint_id")

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
    if shape == GROUP_SHAPE and not group_rollups_ready(conn):
        return None
    return shape


def attribute_rollups_ready(conn: Connection) -> bool:
    return state.find_state(conn, ATTRIBUTE_ROLLUPS_STATE) == "ready"


def release_rollups_ready(conn: Connection) -> bool:
    return state.find_state(conn, RELEASE_ROLLUPS_STATE) == "ready"


def group_rollups_ready(conn: Connection) -> bool:
    return state.find_state(conn, GROUP_ROLLUPS_STATE) == "ready"


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
    A dimension's value in `where` may be a tuple or frozenset: rows with any of those values.
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
        fine = FINE_MS in grains
        hours = edge_hours(start, end) if fine else []
        pieces = decompose(
            start,
            end,
            grains=[g for g in grains if g != FINE_MS],
            fine_ms=FINE_MS if fine else None,
            fine_hours=complete_fine_hours(conn, tenant=tenant, shape=shape, hours=hours, where=where),
            now=now_ms(),
        )
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
            *_dimension_conditions(where),
        )
        .group_by(*cols)
    )
    for row in conn.execute(stmt).all():
        *key, n, a = row
        if bucket_ms:
            key[0] = int(key[0])
        add(tuple(key), n, a)


def complete_fine_hours(
    conn: Connection, *, tenant: str, shape: int, hours: Sequence[int], where: Mapping[str, Any]
) -> set[int]:
    """Those of `hours` whose minute rows add up to their hour rows (for the rows `where` selects), so minutes may
    answer inside them. Minute rows exist for the recent past only: pruned ones (FINE_ROLLUP_RETENTION_HOURS), and
    events written before the shape had minutes, leave their hour short of its count and it is answered as before."""
    if not hours:
        return set()
    r = rollups.c
    hour = ((r.bucket // HOUR_MS) * HOUR_MS).label("h")
    stmt = (
        select(r.grain, hour, func.sum(r.count))
        .where(
            r.tenant == tenant,
            r.shape == shape,
            r.grain.in_((FINE_MS // 1000, HOUR_MS // 1000)),
            *_attribute_conditions(where),
            r.bucket >= min(hours),
            r.bucket < max(hours) + HOUR_MS,
            *_dimension_conditions(where),
        )
        .group_by(r.grain, hour)
    )
    sums: dict[tuple[int, int], int] = {}
    for grain_s, h, n in conn.execute(stmt).all():
        sums[(int(grain_s), int(h))] = int(n or 0)
    fine_s, hour_s = FINE_MS // 1000, HOUR_MS // 1000
    return {h for h in hours if sums.get((fine_s, h), 0) == sums.get((hour_s, h), 0)}


def _matches(expr: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """`expr` equal to `value`, or to any of them when `value` is a tuple or frozenset (a group's member ids)."""
    return expr.in_(sorted(value)) if isinstance(value, tuple | frozenset) else expr == value


def _dimension_conditions(where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """The rollup rows `where` selects by its dimensions (attributes: _attribute_conditions)."""
    r = rollups.c
    return [_matches(r[k], v) for k, v in where.items() if k not in ATTRIBUTE_DIMENSIONS]


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

    From hourly rollups when every start and the end are whole hours; from minute rollups, plus raw edges shorter
    than a minute, when they are not and the shape keeps complete minutes there; else, and with `raw`, from events
    (any instants, `extra` conditions allowed). Burn-rate windows ask this: a few nested windows ending now.
    """
    if not starts:
        return {}
    where = dict(where or {})
    shape = _answering_shape(conn, by, where)
    if shape is None:
        raw = True
    aligned = not any(t % HOUR_MS for t in (*starts, end))
    if not raw and not aligned and shape is not None:
        if extra:
            raise ValueError("rollups cannot answer extra conditions")
        fine = _count_since_fine(conn, tenant=tenant, shape=shape, starts=starts, end=end, by=by, where=where)
        if fine is not None:
            return fine
        raw = True
    if raw:
        e = events.c
        cols = _event_columns(by)
        sums = [func.sum(case((e.occurred_at >= s, 1), else_=0)) for s in starts]
        conds = _event_conditions(conn, tenant, min(starts), end, by, where, extra)
    else:
        if extra:
            raise ValueError("rollups cannot answer extra conditions")
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
            *_dimension_conditions(where),
        ]
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(select(*cols, *sums).where(*conds).group_by(*cols)).all():
        key = _rollup_key(list(row[: len(by)]), by) if raw else tuple(row[: len(by)])
        slot = totals.setdefault(key, [0] * len(starts))
        for i, n in enumerate(row[len(by) :]):
            slot[i] += int(n or 0)
    return {k: tuple(v) for k, v in totals.items() if any(v)}


def _count_since_fine(
    conn: Connection,
    *,
    tenant: str,
    shape: int,
    starts: Sequence[int],
    end: int,
    by: Sequence[str],
    where: Mapping[str, Any],
) -> dict[tuple[Any, ...], tuple[int, ...]] | None:
    """count_since from minute rows: each window as whole minutes from the minute boundary nearest its start (by
    raw rows already written) to the end of the minute holding `end`, corrected by the raw rows in between (under a
    minute at each edge; after `end`, none yet for a window ending now). None when the shape keeps no minutes or
    some hour on the way lacks complete minute rows (older than their retention, or written before they existed)."""
    f = FINE_MS
    if f not in SHAPE_GRAINS_MS[shape]:
        return None
    last = -(-end // f) * f
    hours = list(range(min(starts) // HOUR_MS * HOUR_MS, last, HOUR_MS))
    if len(complete_fine_hours(conn, tenant=tenant, shape=shape, hours=hours, where=where)) < len(hours):
        return None
    now = now_ms()

    def past(lo: int, hi: int) -> int:
        return max(0, min(hi, now) - lo)

    # Window i reads minutes [firsts[i], last) and corrects by the raw rows between starts[i] and firsts[i].
    firsts = []
    for s in starts:
        down, up = s // f * f, -(-s // f) * f
        firsts.append(up if past(s, up) <= past(down, s) else down)
    lo = min(firsts)
    r = rollups.c
    cols = [r[name] for name in by]
    sums = [func.sum(case((r.bucket >= first, r.count), else_=0)) for first in firsts]
    stmt = (
        select(*cols, *sums)
        .where(
            r.tenant == tenant,
            r.shape == shape,
            r.grain == f // 1000,
            *_attribute_conditions(where),
            r.bucket >= lo,
            r.bucket < last,
            *_dimension_conditions(where),
        )
        .group_by(*cols)
    )
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(stmt).all():
        slot = totals.setdefault(tuple(row[: len(by)]), [0] * len(starts))
        for i, n in enumerate(row[len(by) :]):
            slot[i] += int(n or 0)
    # Raw corrections: (range, the windows it applies to with their signs); equal ranges are read once.
    corrections: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, (s, first) in enumerate(zip(starts, firsts, strict=True)):
        if first != s:
            corrections.setdefault((min(s, first), max(s, first)), []).append((i, 1 if first > s else -1))
    if end < last:
        corrections.setdefault((end, last), []).extend((i, -1) for i in range(len(starts)))
    for (a, b), signs in corrections.items():
        for key, (n, _attempts) in aggregate_events(conn, tenant=tenant, start=a, end=b, by=by, where=where).items():
            slot = totals.setdefault(key, [0] * len(starts))
            for i, sign in signs:
                slot[i] += sign * n
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
    if "fingerprint_id" in by or "fingerprint_id" in where:
        conds.append(func.coalesce(e.fingerprint_id, "") != "")  # group rows keep fingerprinted events only
    for k, v in where.items():
        if k in ATTRIBUTE_DIMENSIONS:
            continue
        if k == "error_code":
            # Rollups keep the first CODE_CHARS characters of a code; raw rows must compare the same way.
            conds.append(_matches(func.substr(func.coalesce(e.error_code, ""), 1, CODE_CHARS), v))
        elif k in _NULLABLE and (v in ("", None) or (isinstance(v, tuple | frozenset) and "" in v)):
            conds.append(_matches(func.coalesce(e[k], ""), v))  # '' in rollups: the events without a value
        else:
            conds.append(_matches(e[k], v))
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
