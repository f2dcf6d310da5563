"""Background work started with the server (job runner, rule follower, task syncs, alerting, the release analyzer,
the group lifecycle); each starter returns its stop."""

from __future__ import annotations

from collections.abc import Callable

from faultlens.services import Services

Stop = Callable[[], None]


def start_all(services: Services) -> list[Stop]:
    """Start every background worker; the server stops them in reverse order at shutdown."""
    from faultlens.connectors.metrics import task_metrics
    from faultlens.connectors.sync import start_sync
    from faultlens.jobs.event_partitions import start_event_partitions
    from faultlens.jobs.group_lifecycle import start_group_lifecycle
    from faultlens.jobs.runner import start_runner
    from faultlens.releases.analyzer import start_release_analyzer
    from faultlens.rulepacks.follower import start_rule_follower

    task_metrics(services)  # the retention and requeue counters are scraped from the start, at 0
    # The rule follower runs on every process; the task sync on the one holding its lease (jobs/duty.py).
    stops = [start_runner(services), start_rule_follower(services), start_sync(services)]
    stops.append(start_event_partitions(services))  # day partitions and raw-event retention, under a lease
    if services.settings.start_alerting and services.alerting is not None:
        stops += services.alerting.start()  # evaluation and delivery, each on the process holding its lease
    stops.append(start_release_analyzer(services))  # rollouts' analyses and rollbacks, under a lease
    stops.append(start_group_lifecycle(services))  # failure groups regressing and reopening, under a lease
    return stops
