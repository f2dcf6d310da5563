"""Rollup writes: count and attempt deltas of event rows, upserted in the caller's transaction (ingest, backfill)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from faultlens.store import attributes, pg_stage
from faultlens.store.rollup_shapes import (
    ALL_SHAPES,
    ATTRIBUTE_SHAPE,
    CODE_CHARS,
    EVENT_DIMENSIONS,
    HOUR_MS,
    SHAPE_GRAINS_MS,
    SHAPES,
    RollupKey,
)
from faultlens.store.tables import ROLLUP_KEY, rollups

# What a shape holds in the dimensions it does not keep.
_BLANK = tuple(False if name == "is_actionable" else "" for name in EVENT_DIMENSIONS)
_KEPT = tuple(frozenset(i for i, name in enumerate(EVENT_DIMENSIONS) if name in shape) for shape in SHAPES)
_NO_ATTRIBUTE = (("", ""),)


def _project(dims: tuple[Any, ...], shape: int) -> tuple[Any, ...]:
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
        (row["error_code"] or "")[:CODE_CHARS],
        row.get("release") or "",
        row.get("environment") or "",
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
