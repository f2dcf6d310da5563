"""SLO hints of the parallel-ops partitions that are not sources: breakages' open rate and the caches' hit rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faultlens.triage.slo import Hint, PartitionObjectives, pct

BREAKAGE_OPEN_RATE_HIGH = "breakage_open_rate_high"
OVERLAY_CACHE_HIT_RATE_LOW = "overlay_cache_hit_rate_low"
_BREAKAGE_CRITICAL_AT = 0.9


def breakage_hints(breakages: Mapping[str, Any], objectives: PartitionObjectives, *, window: str) -> list[Hint]:
    """Too many of the window's failure groups open: warn above the maximum, critical from 0.9."""
    total, rate = int(breakages["total"]), float(breakages["open_rate"])
    limit = objectives.breakage_open_rate_max
    if total < objectives.breakage_min_groups or rate <= limit:
        return []
    level = "critical" if rate >= max(_BREAKAGE_CRITICAL_AT, limit) else "warn"
    message = (
        f"{breakages['open_total']} of {total} failure groups are open ({pct(rate)}, above {pct(limit)}): "
        "resolve, ignore or assign them on /groups"
    )
    return [Hint(BREAKAGE_OPEN_RATE_HIGH, level, "breakages", rate, limit, message, window)]


def cache_hints(cache: Mapping[str, Any], objectives: PartitionObjectives) -> list[Hint]:
    """The classifier's and fingerprinter's caches answering too few lookups (this process since it started):
    warn below the minimum, critical below half of it."""
    requests, rate = int(cache["requests"]), float(cache["hit_rate"])
    limit = objectives.cache_hit_rate_min
    if requests < objectives.cache_min_requests or rate >= limit:
        return []
    level = "critical" if rate < limit / 2 else "warn"
    message = (
        f"the classification and fingerprint caches of this process answered {pct(rate)} of {requests} lookups "
        f"(below {pct(limit)}): most messages are new to them"
    )
    return [Hint(OVERLAY_CACHE_HIT_RATE_LOW, level, "overlay_cache", rate, limit, message, "process")]
