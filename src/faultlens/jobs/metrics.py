"""Prometheus gauges of background jobs, read from the jobs table at scrape time (so every process agrees)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from faultlens.jobs.queue import Job, JobKind, JobState
from faultlens.store.jobs import count_active_by_kind, find_newest

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs")

_REGISTERED_ATTR = "_faultlens_jobs_collector"


class JobsCollector(Collector):
    """faultlens_jobs_running / _pending {kind} and faultlens_jobs_progress_ratio {kind}.

    The ratio is the newest job's done/total (1 when it is done; 1 when the kind never ran, as nothing
    is outstanding). Labels are the closed set of job kinds.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("faultlens_jobs_running", "Background jobs being worked now.", labels=["kind"]),
            GaugeMetricFamily("faultlens_jobs_pending", "Background jobs waiting for a runner.", labels=["kind"]),
            GaugeMetricFamily(
                "faultlens_jobs_progress_ratio", "Progress of the newest job of a kind (0 to 1).", labels=["kind"]
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running, pending, ratio = self._families()
        try:
            with self.engine.connect() as conn:
                counts = count_active_by_kind(conn)
                newest: dict[str, Job] = {}
                for kind in JobKind:
                    job = find_newest(conn, kind.value)
                    if job is not None:
                        newest[kind.value] = job
        except SQLAlchemyError:
            log.warning("jobs metrics: the jobs table could not be read", exc_info=True)
            return
        for kind in JobKind:
            running.add_metric([kind.value], counts.get((kind.value, JobState.RUNNING.value), 0))
            pending.add_metric([kind.value], counts.get((kind.value, JobState.PENDING.value), 0))
            job = newest.get(kind.value)
            ratio.add_metric([kind.value], 1.0 if job is None else job.ratio)
        yield running
        yield pending
        yield ratio


def register_metrics(services: Services) -> None:
    """Register the jobs collector on the service's registry (once, however often it is called)."""
    registry = services.metrics.registry
    if getattr(registry, _REGISTERED_ATTR, False):
        return
    registry.register(JobsCollector(services.engine))
    setattr(registry, _REGISTERED_ATTR, True)
