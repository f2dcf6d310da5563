"""Rollup writes: count and attempt deltas of event rows, upserted in the caller's transaction (ingest, backfill)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import chain, pairwise
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
# The same dimensions recur batch after batch: dims as read -> dims normalised, and (dims, shapes) -> the
# dimensions each shape keeps, grouped by the shape's finest grain: [(grain ms, [(shape, kept dims)])].
_NORMALISED: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_PROJECTED: dict[tuple[tuple[Any, ...], tuple[int, ...]], list[tuple[int, list[tuple[int, tuple[Any, ...]]]]]] = {}
_PROJECTED_MAX = 65_536
_GRAINS = tuple(tuple((grain // 1000, grain) for grain in shape_grains) for shape_grains in SHAPE_GRAINS_MS)


def _normalised(dims: tuple[Any, ...]) -> tuple[Any, ...]:
    found = _NORMALISED.get(dims)
    if found is None:
        if len(_NORMALISED) >= _PROJECTED_MAX:
            _NORMALISED.clear()
        found = _NORMALISED[dims] = _key_of(dict(zip(EVENT_DIMENSIONS, dims, strict=True)))
    return found


def _per_shape(dims: tuple[Any, ...], shapes: tuple[int, ...]) -> list[tuple[int, list[tuple[int, tuple[Any, ...]]]]]:
    found = _PROJECTED.get((dims, shapes))
    if found is None:
        if len(_PROJECTED) >= _PROJECTED_MAX:
            _PROJECTED.clear()
        by_grain: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
        for shape in shapes:
            # The group shape counts fingerprinted events only (dims[-1]: fingerprint_id).
            if shape != GROUP_SHAPE or dims[-1]:
                by_grain.setdefault(_GRAINS[shape][0][1], []).append((shape, _project(dims, shape)))
        found = _PROJECTED[(dims, shapes)] = list(by_grain.items())
    return found


# Attributes JSON holding none of the rolled names in quotes, nor a \u escape that could spell one, has no rolled
# pairs: such documents (most, when attributes carry ids) are counted as None, without being parsed.
_MAY_ROLL = re.compile("|".join([*(f'"{re.escape(name)}"' for name in attributes.ROLLED), r"\\u"])).search


def _rolled_doc(doc: Any) -> Any:
    return None if type(doc) is str and _MAY_ROLL(doc) is None else doc


_ATTEMPT_OF = itemgetter("attempt")
# Grains nest (each divides the next, store/rollup_shapes.py): a shape's buckets of one grain fold into the next.
if not all(later % earlier == 0 for grains in _GRAINS for (_, earlier), (_, later) in pairwise(grains)):
    raise RuntimeError("every shape's grains must be ascending, each a multiple of the one before")


def _fold(by_bucket: dict[int, int], grain: int) -> dict[int, int]:
    """Sums of `by_bucket` (bucket start -> value) per bucket of `grain`."""
    folded: dict[int, int] = {}
    for bucket, n in by_bucket.items():
        bucket -= bucket % grain
        folded[bucket] = folded.get(bucket, 0) + n
    return folded


def deltas(
    rows: Iterable[Mapping[str, Any]], sign: int = 1, *, shapes: Collection[int] = ALL_SHAPES
) -> tuple[Counter[RollupKey], Counter[RollupKey]]:
    """Count rows per rollup key (ROLLUP_KEY order) for `shapes`; returns (counts, attempt sums).

    Rows are counted per (tenant, dimensions, rolled attributes, minute) in C; each distinct (tenant, dimensions,
    attributes) is projected onto its shapes once, into a tally per rollup key without its grain and bucket
    (bucket of the shape's finest grain -> count); each tally then folds into the shape's coarser grains, a rollup
    key built per bucket only.
    """
    rows = rows if isinstance(rows, Sequence) else list(rows)
    try:
        raw_keys = [
            (
                row["tenant"],
                _DIMS_OF(row),
                None if type(doc := row["attributes"]) is str and _MAY_ROLL(doc) is None else doc,
                (at := row["occurred_at"]) - at % FINEST_GRAIN_MS,
            )
            for row in rows
        ]
    except KeyError:
        # Rows without some optional field (_key_of reads those with .get): normalised row by row.
        raw_keys = [
            (
                row["tenant"],
                _key_of(row),
                _rolled_doc(row["attributes"]),
                (at := row["occurred_at"]) - at % FINEST_GRAIN_MS,
            )
            for row in rows
        ]
        normalise = False
    else:
        normalise = True
    per_key = Counter(raw_keys)
    attempts_of: dict[tuple[Any, ...], int] = {}
    for key, attempt in zip(raw_keys, map(_ATTEMPT_OF, rows), strict=True):
        if attempt:
            attempts_of[key] = attempts_of.get(key, 0) + attempt
    wanted = tuple(shapes)
    # (tenant, shape, attribute name, attribute value, kept dims) -> (bucket -> count, bucket -> attempt sum), in
    # buckets of the shape's finest grain
    tallies: dict[tuple[Any, ...], tuple[dict[int, int], dict[int, int]]] = {}
    # (tenant, dims as read, attributes) -> the tallies its rows add to, by their bucket width
    targets_of: dict[tuple[Any, ...], list[tuple[int, list[tuple[dict[int, int], dict[int, int]]]]]] = {}
    pairs_of: dict[Any, tuple[tuple[str, str], ...]] = {None: ()}  # attributes JSON -> rolled pairs
    for key, n in per_key.items():
        head = key[:3]
        targets = targets_of.get(head)
        if targets is None:
            tenant, dims, doc = head
            if normalise:
                dims = _normalised(dims)
            pairs = pairs_of.get(doc)
            if pairs is None:
                pairs = pairs_of[doc] = attributes.rolled_pairs(doc)
            targets = targets_of[head] = []
            for grain, projected in _per_shape(dims, wanted):
                grain_tallies = []
                for shape, kept in projected:
                    for name, value in pairs if shape == ATTRIBUTE_SHAPE else _NO_ATTRIBUTE:
                        tally_key = (tenant, shape, name, value, kept)
                        tally = tallies.get(tally_key)
                        if tally is None:
                            tally = tallies[tally_key] = ({}, {})
                        grain_tallies.append(tally)
                if grain_tallies:
                    targets.append((grain, grain_tallies))
        minute = key[3]
        n *= sign
        attempt = attempts_of.get(key) if attempts_of else None
        for grain, grain_tallies in targets:
            bucket = minute - minute % grain
            for by_bucket, attempts_by_bucket in grain_tallies:
                by_bucket[bucket] = by_bucket.get(bucket, 0) + n
                if attempt:
                    attempts_by_bucket[bucket] = attempts_by_bucket.get(bucket, 0) + sign * attempt
    counts: Counter[RollupKey] = Counter()
    attempts: Counter[RollupKey] = Counter()
    for (tenant, shape, name, value, kept), (level, attempt_level) in tallies.items():
        grains = _GRAINS[shape]
        if len(level) == 1:
            # Many tallies hold a single bucket (and at most that bucket's attempt sum): no folding.
            ((bucket, n),) = level.items()
            attempt = attempt_level.get(bucket)
            for grain_s, grain in grains:
                key = (tenant, shape, grain_s, name, value, bucket - bucket % grain, *kept)
                counts[key] = n
                if attempt:
                    attempts[key] = attempt
            continue
        for i, (grain_s, grain) in enumerate(grains):
            if i:
                level = _fold(level, grain)
            for bucket, n in level.items():
                counts[(tenant, shape, grain_s, name, value, bucket, *kept)] = n
            if attempt_level:
                if i:
                    attempt_level = _fold(attempt_level, grain)
                for bucket, a in attempt_level.items():
                    attempts[(tenant, shape, grain_s, name, value, bucket, *kept)] = a
    return counts, attempts


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
    if attempts:
        attempt_of = attempts.get
        values = [(*key, n, attempt_of(key, 0)) for key, n in counts.items() if n or attempt_of(key, 0)]
    else:
        values = [(*key, n, 0) for key, n in counts.items() if n]
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
