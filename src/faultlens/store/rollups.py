"""Rollups: counts per hour, day and week in four shapes, kept in step with events; window queries read them first.

A shape is the set of dimensions a rollup row keeps (the others hold '' or false), so a question about a few
dimensions reads few rows: the overview by source never sums over operations, the burn-rate windows never
over error codes. The attribute shape keeps a row per value of each rolled-up attribute (store/attributes.py),
so a filter on one of them is a rollup read too. Grains nest (weeks of days of hours, weeks aligned to the
epoch like trend buckets), so a 90-day window reads about a dozen weeks, a dozen days and two days of hours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store import attributes, pg_stage
from faultlens.store.tables import ROLLUP_KEY, events, rollups, service_state

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
GRAINS_MS = (HOUR_MS, DAY_MS, WEEK_MS)  # stored in seconds in the grain column
GRAIN_NAMES = {HOUR_MS: "hour", DAY_MS: "day", WEEK_MS: "week"}
EVENT_DIMENSIONS = ROLLUP_KEY[6:]  # source .. error_code: the event fields every shape picks from
ATTRIBUTE_DIMENSIONS = ("attr_name", "attr_value")  # filter-only: an event has a row per rolled attribute
DIMENSIONS = (*EVENT_DIMENSIONS, *ATTRIBUTE_DIMENSIONS)
_PER_SOURCE = ("source", "status", "failure_class", "is_actionable", "failure_kind", "category", "error_code")
# Shape id -> the dimensions its rows keep. Queries read the narrowest that covers them.
SHAPES: tuple[tuple[str, ...], ...] = (
    EVENT_DIMENSIONS,
    _PER_SOURCE,
    ("source", "status", "failure_class", "is_actionable"),
    (*_PER_SOURCE, *ATTRIBUTE_DIMENSIONS),
)
ATTRIBUTE_SHAPE = 3
ALL_SHAPES = tuple(range(len(SHAPES)))
# Weeks only where long windows need them: by-operation and attribute questions read days (fewer rows to write).
SHAPE_GRAINS_MS = ((HOUR_MS, DAY_MS), GRAINS_MS, GRAINS_MS, (HOUR_MS, DAY_MS))
_BLANK = tuple(False if name == "is_actionable" else "" for name in EVENT_DIMENSIONS)
_KEPT = tuple(frozenset(i for i, name in enumerate(EVENT_DIMENSIONS) if name in shape) for shape in SHAPES)
_NO_ATTRIBUTE = (("", ""),)
_CODE_CHARS = 64
# service_state: "ready" once attribute rows cover every event (a database upgraded with events in it waits
# for the rollup rebuild job; until then attribute filters scan raw events).
ATTRIBUTE_ROLLUPS_STATE = "attribute_rollups"
# The event fields `deltas` reads: whoever hands it rows from the events table selects these.
ROW_FIELDS = ("tenant", "occurred_at", "attempt", "attributes", *EVENT_DIMENSIONS)

RollupKey = tuple[Any, ...]


def shape_for(names: Iterable[str]) -> int:
    """The narrowest shape keeping every one of `names`."""
    wanted = set(names)
    unknown = wanted.difference(DIMENSIONS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} is not a rollup dimension")
    if wanted & set(ATTRIBUTE_DIMENSIONS):
        # An event has a row per attribute there: only a filter on one name and value reads them.
        if not wanted.issubset(SHAPES[ATTRIBUTE_SHAPE]):
            raise ValueError(f"attribute rows keep only {', '.join(SHAPES[ATTRIBUTE_SHAPE])}")
        return ATTRIBUTE_SHAPE
    return max(i for i, shape in enumerate(SHAPES) if i != ATTRIBUTE_SHAPE and wanted.issubset(shape))


def _check_query(by: Sequence[str], where: Mapping[str, Any]) -> int:
    """The shape answering `by` and `where`; attributes may only filter, by name and value together."""
    if set(ATTRIBUTE_DIMENSIONS) & set(by):
        raise ValueError("attributes filter rollups; they cannot group them")
    if len(set(ATTRIBUTE_DIMENSIONS) & set(where)) == 1:
        raise ValueError("an attribute filter needs both attr_name and attr_value")
    return shape_for((*by, *where))


def attribute_rollups_ready(conn: Connection) -> bool:
    value = conn.execute(select(service_state.c.value).where(service_state.c.key == ATTRIBUTE_ROLLUPS_STATE)).scalar()
    return value == "ready"


def _attribute_rows_answer(conn: Connection, where: Mapping[str, Any]) -> bool:
    """Whether attribute rows hold the answer for this filter: a rolled attribute, a short value, rows complete."""
    rolled = attributes.rollable({where["attr_name"]: where["attr_value"]}) is not None
    return rolled and attribute_rollups_ready(conn)


def _project(dims: tuple[Any, ...], shape: int) -> tuple[Any, ...]:
    if shape == 0:
        return dims
    kept = _KEPT[shape]
    return tuple(v if i in kept else _BLANK[i] for i, v in enumerate(dims))


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


def deltas(
    rows: Iterable[Mapping[str, Any]], sign: int = 1, *, shapes: Collection[int] = ALL_SHAPES
) -> tuple[Counter[RollupKey], Counter[RollupKey]]:
    """Count rows per rollup key (ROLLUP_KEY order) for `shapes`; returns (counts, attempt sums)."""
    hourly: Counter[RollupKey] = Counter()
    hourly_attempts: Counter[RollupKey] = Counter()
    pairs_of: dict[Any, tuple[tuple[str, str], ...]] = {None: ()}  # attributes JSON -> rolled pairs
    for row in rows:
        at = row["occurred_at"]
        doc = row["attributes"]
        pairs = pairs_of.get(doc)
        if pairs is None:
            pairs = pairs_of[doc] = attributes.rolled_pairs(doc)
        key = (row["tenant"], at - at % HOUR_MS, _key_of(row), pairs)
        hourly[key] += sign
        attempt = row["attempt"]
        if attempt:
            hourly_attempts[key] += sign * attempt
    # Every shape and grain is summed from the (far fewer) hour keys rather than from every row again.
    counts: Counter[RollupKey] = Counter()
    attempts: Counter[RollupKey] = Counter()
    projected: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]] = {}  # dims -> [(shape, kept dims)]
    grains = [[(grain // 1000, grain) for grain in shape_grains] for shape_grains in SHAPE_GRAINS_MS]
    for hour_key, n in hourly.items():
        tenant, hour, dims, pairs = hour_key
        a = hourly_attempts.get(hour_key, 0)
        per_shape = projected.get(dims)
        if per_shape is None:
            per_shape = projected[dims] = [(shape, _project(dims, shape)) for shape in shapes]
        for shape, kept in per_shape:
            for name, value in pairs if shape == ATTRIBUTE_SHAPE else _NO_ATTRIBUTE:
                for grain_s, grain in grains[shape]:
                    key = (tenant, shape, grain_s, name, value, hour - hour % grain, *kept)
                    counts[key] += n
                    if a:
                        attempts[key] += a
    return counts, attempts


def apply(
    conn: Connection, rows: Sequence[Mapping[str, Any]], sign: int = 1, *, shapes: Collection[int] = ALL_SHAPES
) -> None:
    """Add (sign=1) or remove (sign=-1) rows from the rollups of `shapes`, in the caller's transaction."""
    counts, attempts = deltas(rows, sign, shapes=shapes)
    apply_deltas(conn, counts, attempts)


def apply_deltas(conn: Connection, counts: Counter[RollupKey], attempts: Counter[RollupKey]) -> None:
    """Upsert the deltas in one statement against the driver (this runs inside every ingest batch)."""
    values = [(*key, n, attempts.get(key, 0)) for key, n in counts.items() if n or attempts.get(key, 0)]
    if not values:
        return
    cols = ", ".join(ROLLUP_KEY)
    upsert = (
        f"ON CONFLICT ({cols}) DO UPDATE SET count = rollups.count + excluded.count, "
        "attempt_sum = rollups.attempt_sum + excluded.attempt_sum"
    )
    if conn.dialect.name == "postgresql":
        # Upserted in key order, so concurrent writers take row locks in one order and cannot deadlock.
        names = [*ROLLUP_KEY, "count", "attempt_sum"]
        staged = pg_stage.stage(conn, rollups, names, values)
        conn.exec_driver_sql(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) SELECT {', '.join(names)} FROM {staged} "
            f"ORDER BY {cols} {upsert}"
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


def decompose(start: int, end: int, *, grains: Sequence[int] = GRAINS_MS) -> list[tuple[str, int, int]]:
    """Split [start, end) into signed pieces: ("week"|"day"|"hour"|"raw", lo, hi) add, ("raw-", lo, hi) subtracts.

    The coarsest grain inside, finer ones beside it, and at each edge the cheaper of raw rows or an hour minus
    its remainder. `grains` (hours first) limits which rollups may answer, e.g. to keep trend buckets whole.
    """
    if not grains or grains[0] != HOUR_MS:
        raise ValueError("grains must start with the hour")
    h1 = -(-start // HOUR_MS) * HOUR_MS
    h2 = end // HOUR_MS * HOUR_MS
    if h1 > h2:  # inside one hour
        return _edge(h2, start, end)
    pieces: list[tuple[str, int, int]] = []
    if start < h1:
        pieces += _edge(h1 - HOUR_MS, start, h1)
    pieces += _cover(h1, h2, grains)
    if h2 < end:
        pieces += _edge(h2, h2, end)
    return pieces


def _cover(lo: int, hi: int, grains: Sequence[int]) -> list[tuple[str, int, int]]:
    """[lo, hi), both multiples of grains[0], as whole buckets: the next grain inside, grains[0] beside it."""
    if lo >= hi:
        return []
    grain = GRAIN_NAMES[grains[0]]
    if len(grains) > 1:
        coarse = grains[1]
        c1 = -(-lo // coarse) * coarse
        c2 = hi // coarse * coarse
        if c1 < c2:
            before = [(grain, lo, c1)] if lo < c1 else []
            after = [(grain, c2, hi)] if c2 < hi else []
            return before + _cover(c1, c2, grains[1:]) + after
    return [(grain, lo, hi)]


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
    * bucket_ms). Only grains dividing it answer (hours for 6h buckets, weeks too for 7d ones); a bucket that
    is not a multiple of an hour is answered from raw events. `where` may hold attr_name and attr_value: one
    attribute filter, answered from attribute rows once they are complete and from raw events until then.
    """
    where = dict(where or {})
    shape = _check_query(by, where)
    if shape == ATTRIBUTE_SHAPE and not _attribute_rows_answer(conn, where):
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
) -> dict[tuple[Any, ...], tuple[int, int]]:
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
    shape = _check_query(by, where)
    if shape == ATTRIBUTE_SHAPE and not _attribute_rows_answer(conn, where):
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
    return [func.coalesce(e[name], "") if name in ("operation", "error_code") else e[name] for name in by]


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
    _check_query(by, where)  # rejects names that are not rollup dimensions
    e = events.c
    conds: list[ColumnElement[bool]] = [e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end, *extra]
    if "attr_name" in where:
        conds.append(attributes.clause(conn.dialect.name, where["attr_name"], where["attr_value"]))
    for k, v in where.items():
        if k in ATTRIBUTE_DIMENSIONS:
            continue
        if k == "error_code":
            # Rollups keep the first 64 characters of a code; raw rows must compare the same way.
            conds.append(func.substr(func.coalesce(e.error_code, ""), 1, _CODE_CHARS) == v)
        elif k == "operation":
            conds.append(func.coalesce(e.operation, "") == v)
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
            # Two long codes sharing their first 64 characters are one rollup key; merge them the same way.
            key[offset + i] = (key[offset + i] or "")[:_CODE_CHARS]
    return tuple(key)
