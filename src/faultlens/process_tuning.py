"""The serving process's interpreter settings, applied once its app is built (`faultlens serve`, the ASGI factory).

Two pauses decide how long a cheap request (/healthz, a read) waits while a batch is ingested beside it:

- The interpreter lock's switch interval. The event loop thread gives up the lock at every socket call; to get it
  back it waits until the thread running the batch's Python work yields, which that thread does every switch
  interval (Python's default 5 ms). A request costs the loop several such waits, so a shorter interval answers it
  sooner; the batch's own work barely notices (bench/healthz_ingest.py measures both).
- Full collections of the cyclic garbage collector. They walk every tracked object and stop every thread while they
  do: about 100 ms for the modules, compiled rules and tables a started process holds, although none of that ever
  becomes garbage. Freezing what exists once the app is built moves it out of the collector's walk for good (it is
  still freed by reference counting; only a reference cycle made before the freeze would stay).
"""

from __future__ import annotations

import gc
import logging
import sys

from faultlens.settings import Settings

log = logging.getLogger(__name__)


def settle(settings: Settings) -> None:
    """Apply the switch interval and, when enabled, freeze the objects the started process holds."""
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    if settings.gc_freeze_at_start:
        gc.collect()
        gc.freeze()
    log.info(
        "interpreter: switch interval %g ms; %d objects held at start frozen out of full garbage collections",
        settings.gil_switch_interval_ms,
        gc.get_freeze_count(),
    )
