"""Background work started with the server (job runner, task syncs); each starter returns its stop function."""

from __future__ import annotations

from collections.abc import Callable

from faultlens.services import Services

Stop = Callable[[], None]


def start_all(services: Services) -> list[Stop]:
    """Start every background worker; the server stops them in reverse order at shutdown."""
    from faultlens.connectors.metrics import task_metrics
    from faultlens.connectors.sync import start_sync
    from faultlens.jobs.runner import start_runner

    task_metrics(services)  # the retention and requeue counters are scraped from the start, at 0
    return [start_runner(services), start_sync(services)]
