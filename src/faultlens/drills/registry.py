"""The drills the CLI and CI know, in the order `faultlens drill run --all` runs them."""

from __future__ import annotations

from faultlens.drills import smoke
from faultlens.drills.harness import Drill
from faultlens.drills.scenarios import (
    contention,
    crash_untraced,
    duplicates,
    partial,
    poison,
    reclaim,
    rollback,
    rule_version,
    sink_down,
    throttled,
)

# Document 001's scenarios applied to faultlens' own paths, then the release gates' rollback drill.
_SCENARIOS: list[Drill] = [
    sink_down.DRILL,
    throttled.DRILL,
    poison.DRILL,
    partial.DRILL,
    contention.DRILL,
    reclaim.DRILL,
    duplicates.DRILL,
    rule_version.DRILL,
    crash_untraced.DRILL,
    rollback.DRILL,
]

DRILLS: dict[str, Drill] = {d.name: d for d in [smoke.DRILL, *_SCENARIOS]}


def get(name: str) -> Drill:
    """The drill called `name`; KeyError naming the known ones otherwise."""
    try:
        return DRILLS[name]
    except KeyError:
        raise KeyError(f"no drill {name!r} (known: {', '.join(DRILLS)})") from None
