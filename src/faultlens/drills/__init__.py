"""Failure drills: reproducible faults against real faultlens processes, each proving its evidence chain."""

from faultlens.drills.harness import (
    Check,
    Drill,
    DrillConfig,
    DrillContext,
    DrillError,
    DrillResult,
    Server,
    metric_delta,
    metric_sum,
    parse_metrics,
    run_all,
    run_drill,
)
from faultlens.drills.sink import Call, Sink
from faultlens.drills.waits import WaitTimeout, poll_until

__all__ = [
    "Call",
    "Check",
    "Drill",
    "DrillConfig",
    "DrillContext",
    "DrillError",
    "DrillResult",
    "Server",
    "Sink",
    "WaitTimeout",
    "metric_delta",
    "metric_sum",
    "parse_metrics",
    "poll_until",
    "run_all",
    "run_drill",
]
