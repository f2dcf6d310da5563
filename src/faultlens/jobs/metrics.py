"""Prometheus gauges of background jobs, read from the jobs table at scrape time (so every process agrees)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from faultlens.jobs.queue import Job, JobKind, JobState
from faultlens.metric_dictionary import DEFAULT_NAMESPACE
from faultlens.metrics import family
from faultlens.store.jobs import count_active_by_kind, find_newest, list_oldest_active
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs")

_REGISTERED_ATTR = "_faultlens_jobs_collector"


class JobsCollector(Collector):
    """jobs_running / _pending / _progress_ratio / _lag_seconds {kind} (names and help: the metric dictionary).

    The ratio is the newest job's done/total (1 when it is done; 1 when the kind never ran, as nothing
    is outstanding); the lag is the age of the oldest pending job (0 when none waits). Labels are the closed
    set of job kinds.
    """

    def __init__(
        self, engine: Engine, *, namespace: str = DEFAULT_NAMESPACE, clock: Callable[[], int] = now_ms
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.clock = clock

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        names = ("jobs_running", "jobs_pending", "jobs_progress_ratio", "jobs_lag_seconds")
        return tuple(family(name, namespace=self.namespace) for name in names)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running, pending, ratio, lag = self._families()
        try:
            with self.engine.connect() as conn:
                counts = count_active_by_kind(conn)
                newest: dict[str, Job] = {}
                oldest_pending: dict[str, int] = {}
                for kind in JobKind:
                    job = find_newest(conn, kind.value)
                    if job is not None:
                        newest[kind.value] = job
                    waiting = [j for j in list_oldest_active(conn, kinds=[kind.value]) if j.state == JobState.PENDING]
                    if waiting:
                        oldest_pending[kind.value] = waiting[0].created_at
        except SQLAlchemyError:
            log.warning("jobs metrics: the jobs table could not be read", exc_info=True)
            return
        now = self.clock()
        for kind in JobKind:
            running.add_metric([kind.value], counts.get((kind.value, JobState.RUNNING.value), 0))
            pending.add_metric([kind.value], counts.get((kind.value, JobState.PENDING.value), 0))
            job = newest.get(kind.value)
            ratio.add_metric([kind.value], 1.0 if job is None else job.ratio)
            created = oldest_pending.get(kind.value)
            lag.add_metric([kind.value], 0.0 if created is None else max(0, now - created) / 1000)
        yield running
        yield pending
        yield ratio
        yield lag


def register_metrics(services: Services) -> None:
    """Register the jobs collector on the service's registry (once, however often it is called)."""
    registry = services.metrics.registry
    if getattr(registry, _REGISTERED_ATTR, False):
        return
    registry.register(JobsCollector(services.engine, namespace=services.metrics.namespace))
    setattr(registry, _REGISTERED_ATTR, True)
