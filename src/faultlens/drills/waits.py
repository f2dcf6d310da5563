"""Polling with a deadline: the only way a drill waits for something (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition a drill waited for did not hold before its deadline."""


def poll_until(condition: Callable[[], T | None], *, timeout_s: float, what: str, every_s: float = 0.05) -> T:
    """Call `condition` until it returns something truthy and return that; WaitTimeout naming `what` after
    timeout_s. The condition is always tried once more at the deadline, so a slow last poll still counts."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what}: not within {timeout_s:g} s")
        time.sleep(min(every_s, max(0.0, deadline - time.monotonic())))
