"""Rollup shapes and grains: which dimensions a rollup row keeps, at which bucket widths, and the event fields it reads.

A shape is the set of dimensions a rollup row keeps (the others hold '' or false), so a question about a few
dimensions reads few rows: the overview by source never sums over operations, the burn-rate windows never
over error codes. The attribute shape keeps a row per value of each rolled-up attribute (store/attributes.py),
so a filter on one of them is a rollup read too. Grains nest (weeks of days of hours, weeks aligned to the
epoch like trend buckets), so a 90-day window reads about a dozen weeks, a dozen days and two days of hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faultlens.store.tables import ROLLUP_KEY

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
# Rollups keep the first 64 characters of an error code; raw reads compare and merge codes the same way.
CODE_CHARS = 64
# The event fields rollup deltas read: whoever hands them rows from the events table selects these.
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
