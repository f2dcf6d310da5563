"""Rollup shapes and grains: which dimensions a rollup row keeps, at which bucket widths, and the event fields it reads.

A shape is the set of dimensions a rollup row keeps (the others hold '' or false), so a question about a few
dimensions reads few rows: the overview by source never sums over operations, the burn-rate windows never
over error codes. The attribute shape keeps a row per value of each rolled-up attribute (store/attributes.py),
so a filter on one of them is a rollup read too. The release shape keeps release and environment (which
no other shape keeps), so a release's failure rate in one environment is a rollup read. The group shape keeps
fingerprint_id and has rows for fingerprinted events only, so failure groups (triage/groups.py) count from it and
no question without fingerprint_id ever reads it. Grains nest (weeks
of days of hours, weeks aligned to the epoch like trend buckets), so a 90-day window reads about a dozen
weeks, a dozen days and two days of hours. The burn-rate shape also keeps minutes (FINE_MS), for the recent past
only (FINE_ROLLUP_RETENTION_HOURS): windows of minutes ending now then read minute rows, not events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faultlens.store.tables import ROLLUP_KEY

FINE_MS = 60_000  # the fine grain: minutes, nesting in hours; pruned after Settings.fine_rollup_retention_hours
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
GRAINS_MS = (HOUR_MS, DAY_MS, WEEK_MS)  # stored in seconds in the grain column
GRAIN_NAMES = {FINE_MS: "minute", HOUR_MS: "hour", DAY_MS: "day", WEEK_MS: "week"}
EVENT_DIMENSIONS = ROLLUP_KEY[6:]  # source .. fingerprint_id: the event fields every shape picks from
RELEASE_DIMENSIONS = ("release", "environment")  # kept by the release shape alone
ATTRIBUTE_DIMENSIONS = ("attr_name", "attr_value")  # filter-only: an event has a row per rolled attribute
DIMENSIONS = (*EVENT_DIMENSIONS, *ATTRIBUTE_DIMENSIONS)
_PER_SOURCE = ("source", "status", "failure_class", "is_actionable", "failure_kind", "category", "error_code")
# Shape id -> the dimensions its rows keep. Queries read the narrowest that covers them. Ids are stored in rows:
# new shapes are appended, never inserted.
SHAPES: tuple[tuple[str, ...], ...] = (
    tuple(d for d in EVENT_DIMENSIONS if d not in (*RELEASE_DIMENSIONS, "fingerprint_id")),
    _PER_SOURCE,
    ("source", "status", "failure_class", "is_actionable"),
    (*_PER_SOURCE, *ATTRIBUTE_DIMENSIONS),
    # error_code too: the overview of one release (its top codes) is a rollup read like the unfiltered one.
    (
        "source",
        *RELEASE_DIMENSIONS,
        "status",
        "failure_class",
        "is_actionable",
        "failure_kind",
        "category",
        "error_code",
    ),
    ("source", "release", "environment", "failure_class", "is_actionable", "failure_kind", "fingerprint_id"),
)
ATTRIBUTE_SHAPE = 3
RELEASE_SHAPE = 4
GROUP_SHAPE = 5  # rows for events with a fingerprint_id only (rollup_writes.deltas)
ALL_SHAPES = tuple(range(len(SHAPES)))
# Weeks only where long windows need them: by-operation, attribute, release and group questions read days.
# Minutes only for the burn-rate shape: its windows of 5 minutes to an hour ending now read them.
SHAPE_GRAINS_MS = (
    (HOUR_MS, DAY_MS),
    GRAINS_MS,
    (FINE_MS, *GRAINS_MS),
    (HOUR_MS, DAY_MS),
    (HOUR_MS, DAY_MS),
    (HOUR_MS, DAY_MS),
)
FINE_SHAPES = tuple(i for i, grains in enumerate(SHAPE_GRAINS_MS) if FINE_MS in grains)
# Writers count events per bucket of the finest grain any shape keeps, then fold those into every coarser grain.
FINEST_GRAIN_MS = min(min(grains) for grains in SHAPE_GRAINS_MS)
# Rollups keep the first 64 characters of an error code; raw reads compare and merge codes the same way.
CODE_CHARS = 64
# The event fields rollup deltas read: whoever hands them rows from the events table selects these.
ROW_FIELDS = ("tenant", "occurred_at", "attempt", "attributes", *EVENT_DIMENSIONS)

RollupKey = tuple[Any, ...]


def check_names(names: Iterable[str]) -> set[str]:
    """`names` as a set; a ValueError naming any that is not a rollup dimension."""
    wanted = set(names)
    unknown = wanted.difference(DIMENSIONS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} is not a rollup dimension")
    return wanted


def covering_shape(names: Iterable[str]) -> int | None:
    """The narrowest shape keeping every one of `names` (fewest kept dimensions), or None when none keeps them
    all (e.g. operation with release: raw events answer that)."""
    wanted = check_names(names)
    if wanted & set(ATTRIBUTE_DIMENSIONS):
        # An event has a row per attribute there: only a filter on one name and value reads them.
        if not wanted.issubset(SHAPES[ATTRIBUTE_SHAPE]):
            raise ValueError(f"attribute rows keep only {', '.join(SHAPES[ATTRIBUTE_SHAPE])}")
        return ATTRIBUTE_SHAPE
    # The group shape's rows leave out events without a fingerprint: only a question about fingerprints reads it.
    skipped = {ATTRIBUTE_SHAPE} if "fingerprint_id" in wanted else {ATTRIBUTE_SHAPE, GROUP_SHAPE}
    covering = [i for i, shape in enumerate(SHAPES) if i not in skipped and wanted.issubset(shape)]
    return min(covering, key=lambda i: (len(SHAPES[i]), i)) if covering else None


def shape_for(names: Iterable[str]) -> int:
    """The narrowest shape keeping every one of `names`; a ValueError when none does."""
    shape = covering_shape(names)
    if shape is None:
        raise ValueError(f"no rollup shape keeps {', '.join(sorted(set(names)))} together")
    return shape
