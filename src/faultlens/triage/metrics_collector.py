"""The scrape-time Prometheus collector: windowed event counts, actionable failure ratios and SLO hint states.

Counts over a sliding window go up and down, so they are gauges, never counters. The tenant is the one of
the API key that scrapes (open mode: the default tenant); the route sets it in SCRAPE_TENANT.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from faultlens.metric_dictionary import DEFAULT_NAMESPACE, load
from faultlens.metrics import family
from faultlens.settings import Settings
from faultlens.store import alerts as alert_rows
from faultlens.store import rollup_reads, rollup_shapes
from faultlens.timeutil import now_ms
from faultlens.triage import overview, slo
from faultlens.triage.counts import Counts, tally_by

log = logging.getLogger("faultlens.metrics")

SCRAPE_TENANT: ContextVar[str | None] = ContextVar("faultlens_scrape_tenant", default=None)
WINDOWS_MS = {"1h": rollup_shapes.HOUR_MS, "24h": rollup_shapes.DAY_MS}
HINT_WINDOW_DAYS = overview.DEFAULT_WINDOW_DAYS
# Sources come from whoever sends events, kinds from the rule packs: cap the label sets either way.
MAX_SOURCES = 50
MAX_FAILURE_SETS = 50
OTHER = "_other"
_BY = ("source", "status", "failure_class", "is_actionable", "failure_kind", "category")


class OverviewCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        *,
        default_tenant: str,
        config: Callable[[], slo.SloConfig],
        clock: Callable[[], int] = now_ms,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.default_tenant = default_tenant
        self.config = config
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = family("overview_up", namespace=self.namespace)
        try:
            families = self._families(SCRAPE_TENANT.get() or self.default_tenant)
        except Exception:
            # A scrape must still answer (with up=0) so the outage itself is visible to Prometheus.
            log.exception("overview metrics could not be read")
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up

    def _families(self, tenant: str) -> list[Metric]:
        now = self.clock()
        config = self.config()
        with self.engine.connect() as conn:
            windows = {
                label: rollup_reads.aggregate(conn, tenant=tenant, start=now + 1 - width, end=now + 1, by=_BY)
                for label, width in WINDOWS_MS.items()
            }
            ov = overview.build_overview(conn, tenant=tenant, days=HINT_WINDOW_DAYS, config=config, now=now)
            active_alerts = alert_rows.count_active(conn, tenant=tenant)
        by_source = {label: tally_by(rows, _BY, "source") for label, rows in windows.items()}
        volume = Counter({source: counts.total for source, counts in by_source["24h"].items()})
        kept = {s for s, _n in volume.most_common(MAX_SOURCES)}

        def source_label(source: str) -> str:
            return source if source in kept else OTHER

        # Names, help and labels: the metric dictionary (metric_dictionary.yaml).
        events = family("overview_events", namespace=self.namespace)
        failures = family("overview_failures", namespace=self.namespace)
        actionable = family("overview_actionable_failures", namespace=self.namespace)
        ratio = family("overview_actionable_failure_ratio", namespace=self.namespace)
        for label, rows in windows.items():
            labelled: dict[str, Counts] = {}
            for source, counts in by_source[label].items():
                labelled.setdefault(source_label(source), Counts()).merge(counts)
            for src in sorted(labelled):
                for status, n in sorted(labelled[src].by_status.items()):
                    events.add_metric([label, src, status], n)
            by_failure: Counter[tuple[str, str, str, str]] = Counter()
            for (source, _status, failure_class, _actionable, kind, category), (n, _a) in rows.items():
                if failure_class != "none":
                    by_failure[(source_label(source), failure_class, kind, category)] += n
            ranked = by_failure.most_common()
            other = sum(n for _k, n in ranked[MAX_FAILURE_SETS:])
            for (src, failure_class, kind, category), n in sorted(ranked[:MAX_FAILURE_SETS]):
                failures.add_metric([label, src, failure_class, kind, category], n)
            if other:
                failures.add_metric([label, OTHER, OTHER, OTHER, OTHER], other)
            for src in sorted(labelled):
                actionable.add_metric([label, src], labelled[src].actionable)
                ratio.add_metric([label, src], labelled[src].actionable_rate)
        hints = family("slo_hint_active", namespace=self.namespace)
        by_level = family("slo_hints", namespace=self.namespace)
        for level in load().closed_values("slo_hints", "level") or ():
            by_level.add_metric([level], sum(1 for hint in ov.hints if hint.level == level))
        hinted: list[str] = []
        for hint in ov.hints:
            if hint.source not in hinted:
                if len(hinted) == MAX_SOURCES:
                    continue
                hinted.append(hint.source)
            hints.add_metric([hint.source, hint.code, hint.level], 1)
        # Every level and active state, 0 included: an alert rule on this series needs it present.
        alerts = family("alerts_active", namespace=self.namespace)
        for level in ("P0", "P1", "P2"):
            for state in ("pending", "firing"):
                alerts.add_metric([level, state], active_alerts.get((level, state), 0))
        return [events, failures, actionable, ratio, hints, by_level, alerts]


_installed: weakref.WeakKeyDictionary[CollectorRegistry, OverviewCollector] = weakref.WeakKeyDictionary()
_install_lock = threading.Lock()


def install(registry: CollectorRegistry, *, engine: Engine, settings: Settings, **kwargs: Any) -> OverviewCollector:
    """Register the collector on `registry` once (idempotent), reading `engine` with `settings`' objectives."""
    with _install_lock:
        found = _installed.get(registry)
        if found is None:
            found = OverviewCollector(
                engine,
                default_tenant=settings.default_tenant,
                config=lambda: slo.load_config(settings.slo_file),
                namespace=settings.obs_metrics_namespace,
                **kwargs,
            )
            registry.register(found)
            _installed[registry] = found
        return found
