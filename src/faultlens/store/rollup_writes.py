"""Rollup writes: count and attempt deltas of event rows, upserted in the caller's transaction (ingest, backfill)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from faultlens.store import attributes, pg_stage
from faultlens.store.rollup_shapes import (
    ALL_SHAPES,
    ATTRIBUTE_SHAPE,
    CODE_CHARS,
    EVENT_DIMENSIONS,
    FINEST_GRAIN_MS,
    GROUP_SHAPE,
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
        row.get("fingerprint_id") or "",
    )


# A row's dimension values as stored, read in one C call; _key_of then normalises each distinct tuple once.
_DIMS_OF = itemgetter(*EVENT_DIMENSIONS)
# (dims, shapes) -> [(shape, kept dims)]: the same dimensions recur batch after batch.
_PROJECTED: dict[tuple[tuple[Any, ...], tuple[int, ...]], list[tuple[int, tuple[Any, ...]]]] = {}
_PROJECTED_MAX = 65_536
_GRAINS = tuple(tuple((grain // 1000, grain) for grain in shape_grains) for shape_grains in SHAPE_GRAINS_MS)


def _per_shape(dims: tuple[Any, ...], shapes: tuple[int, ...]) -> list[tuple[int, tuple[Any, ...]]]:
    found = _PROJECTED.get((dims, shapes))
    if found is None:
        if len(_PROJECTED) >= _PROJECTED_MAX:
            _PROJECTED.clear()
        # The group shape counts fingerprinted events only (dims[-1]: fingerprint_id).
        found = _PROJECTED[(dims, shapes)] = [
            (shape, _project(dims, shape)) for shape in shapes if shape != GROUP_SHAPE or dims[-1]
        ]
    return found


# Attributes JSON holding none of the rolled names in quotes, nor a \u escape that could spell one, has no rolled
# pairs: such documents (most, when attributes carry ids) are counted as None, without being parsed.
_MAY_ROLL = re.compile("|".join([*(f'"{re.escape(name)}"' for name in attributes.ROLLED), r"\\u"])).search


def _rolled_doc(doc: Any) -> Any:
    return None if type(doc) is str and _MAY_ROLL(doc) is None else doc


def _finest(rows: Sequence[Mapping[str, Any]], sign: int) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """Counts and attempt sums per (tenant, minute, normalised dims, rolled attribute pairs): the finest grain."""
    try:
        raw_keys = [
            (
                row["tenant"],
                (at := row["occurred_at"]) - at % FINEST_GRAIN_MS,
                _DIMS_OF(row),
                _rolled_doc(row["attributes"]),
            )
            for row in rows
        ]
    except KeyError:
        # Rows without some optional field (_key_of reads those with .get): normalised row by row.
        raw_keys = [
            (
                row["tenant"],
                (at := row["occurred_at"]) - at % FINEST_GRAIN_MS,
                _key_of(row),
                _rolled_doc(row["attributes"]),
            )
            for row in rows
        ]
        normalise = False
    else:
        normalise = True
    # Counter(iterable) counts in C; minutes and dimensions are normalised per distinct key afterwards.
    per_key = Counter(raw_keys)
    attempts_of: dict[tuple[Any, ...], int] = {}
    for key, row in zip(raw_keys, rows, strict=True):
        attempt = row["attempt"]
        if attempt:
            attempts_of[key] = attempts_of.get(key, 0) + attempt
    finest: Counter[tuple[Any, ...]] = Counter()
    finest_attempts: Counter[tuple[Any, ...]] = Counter()
    dims_of: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    pairs_of: dict[Any, tuple[tuple[str, str], ...]] = {None: ()}  # attributes JSON -> rolled pairs
    for key, n in per_key.items():
        tenant, minute, dims, doc = key
        if normalise:
            known = dims_of.get(dims)
            if known is None:
                known = dims_of[dims] = _key_of(dict(zip(EVENT_DIMENSIONS, dims, strict=True)))
            dims = known
        pairs = pairs_of.get(doc)
        if pairs is None:
            pairs = pairs_of[doc] = attributes.rolled_pairs(doc)
        minute_key = (tenant, minute, dims, pairs)
        finest[minute_key] += sign * n
        attempt = attempts_of.get(key)
        if attempt:
            finest_attempts[minute_key] += sign * attempt
    return finest, finest_attempts


def deltas(
    rows: Iterable[Mapping[str, Any]], sign: int = 1, *, shapes: Collection[int] = ALL_SHAPES
) -> tuple[Counter[RollupKey], Counter[RollupKey]]:
    """Count rows per rollup key (ROLLUP_KEY order) for `shapes`; returns (counts, attempt sums)."""
    finest, finest_attempts = _finest(rows if isinstance(rows, Sequence) else list(rows), sign)
    # Every shape is summed from the (far fewer) minute keys rather than from every row again, and every grain from
    # the minutes of each shape (narrow shapes fold many minute keys into one).
    per_shape: dict[tuple[Any, ...], int] = {}
    per_shape_attempts: dict[tuple[Any, ...], int] = {}
    wanted = tuple(shapes)
    for minute_key, n in finest.items():
        tenant, minute, dims, pairs = minute_key
        a = finest_attempts.get(minute_key, 0)
        for shape, kept in _per_shape(dims, wanted):
            for name, value in pairs if shape == ATTRIBUTE_SHAPE else _NO_ATTRIBUTE:
                key = (tenant, shape, name, value, minute, kept)
                per_shape[key] = per_shape.get(key, 0) + n
                if a:
                    per_shape_attempts[key] = per_shape_attempts.get(key, 0) + a
    counts: dict[RollupKey, int] = {}
    attempts: dict[RollupKey, int] = {}
    for shape_key, n in per_shape.items():
        tenant, shape, name, value, minute, kept = shape_key
        a = per_shape_attempts.get(shape_key, 0)
        for grain_s, grain in _GRAINS[shape]:
            key = (tenant, shape, grain_s, name, value, minute - minute % grain, *kept)
            counts[key] = counts.get(key, 0) + n
            if a:
                attempts[key] = attempts.get(key, 0) + a
    return Counter(counts), Counter(attempts)


def apply(
    conn: Connection, rows: Sequence[Mapping[str, Any]], sign: int = 1, *, shapes: Collection[int] = ALL_SHAPES
) -> None:
    """Add (sign=1) or remove (sign=-1) rows from the rollups of `shapes`, in the caller's transaction."""
    counts, attempts = deltas(rows, sign, shapes=shapes)
    apply_deltas(conn, counts, attempts)


# Rows per SQLite upsert statement at most: 20 values each, under SQLite's limit of 32,766 bound parameters.
_UPSERT_CHUNK = 512


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
    # Multi-row VALUES rather than executemany: one driver step per statement instead of one per row (each step
    # releases and re-takes the GIL, slow beside a busy ingest thread). Statements of power-of-two sizes only, so
    # the driver's statement cache holds every one of them instead of parsing a new text per batch.
    one = "(" + ", ".join(["?"] * (len(ROLLUP_KEY) + 2)) + ")"
    start = 0
    while start < len(values):
        size = min(_UPSERT_CHUNK, 1 << ((len(values) - start).bit_length() - 1))
        chunk = values[start : start + size]
        start += size
        conn.exec_driver_sql(
            f"INSERT INTO rollups ({cols}, count, attempt_sum) VALUES {', '.join([one] * size)} {upsert}",
            tuple(chain.from_iterable(chunk)),
        )
