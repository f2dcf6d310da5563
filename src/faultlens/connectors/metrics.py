"""Counters of what faultlens changes in task stores it does not own: archived, deleted, trimmed, requeued."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Counter

from faultlens.connectors.base import KINDS, NATIVE

if TYPE_CHECKING:
    from faultlens.services import Services

# Closed label values.
RETENTION_ACTIONS = ("archived", "deleted", "retry_log_trimmed")
TRIGGERS = ("manual", "auto")

_ATTR = "_faultlens_task_metrics"
_lock = threading.Lock()


@dataclass(frozen=True)
class TaskMetrics:
    retention: Counter
    requeued: Counter


def _registered(registry: object) -> TaskMetrics | None:
    found = getattr(registry, _ATTR, None)
    return found if isinstance(found, TaskMetrics) else None


def task_metrics(services: Services) -> TaskMetrics:
    """The task counters on the service's registry, registered once (every label pre-set to 0)."""
    registry = services.metrics.registry
    found = _registered(registry)
    if found is not None:
        return found
    with _lock:
        found = _registered(registry)
        if found is not None:
            return found
        retention = services.metrics.build("tasks_retention_items_total")
        requeued = services.metrics.build("tasks_requeued_total")
        for store in KINDS:
            for action in RETENTION_ACTIONS:
                if action != "retry_log_trimmed" or store == NATIVE:  # only the native layout keeps a retry log
                    retention.labels(store, action)
            for trigger in TRIGGERS:
                requeued.labels(store, trigger)
        found = TaskMetrics(retention, requeued)
        setattr(registry, _ATTR, found)
    return found
