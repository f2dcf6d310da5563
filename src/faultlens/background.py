"""Background work started with the server (job runner, task syncs, alerting); each starter returns its stop."""

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
    stops = [start_runner(services), start_sync(services)]
    if services.settings.start_alerting and services.alerting is not None:
        stops += services.alerting.start()  # evaluation and delivery, each on the process holding its lease
    return stops
