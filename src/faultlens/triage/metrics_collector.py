"""The scrape-time Prometheus collector: windowed event counts, actionable failure ratios and SLO hint states.

Counts over a sliding window go up and down, so they are gauges, never counters. The tenant is the one of
the API key that scrapes (open mode: the default tenant); the route sets it in SCRAPE_TENANT. What they are
made of is read from the database at most every Settings.metrics_cache_ttl_s per tenant (Readings).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
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


@dataclass(frozen=True)
class Reading:
    """What one scrape of a tenant reads from the database; the series are shaped from it on every scrape."""

    config: slo.SloConfig
    windows: dict[str, rollup_reads.Totals]
    overview: overview.Overview
    active_alerts: dict[tuple[str, str], int]


def read(engine: Engine, tenant: str, config: slo.SloConfig, *, clock: Callable[[], int] = now_ms) -> Reading:
    now = clock()
    with engine.connect() as conn:
        windows = {
            label: rollup_reads.aggregate(conn, tenant=tenant, start=now + 1 - width, end=now + 1, by=_BY)
            for label, width in WINDOWS_MS.items()
        }
        ov = overview.build_overview(conn, tenant=tenant, days=HINT_WINDOW_DAYS, config=config, now=now)
        active_alerts = alert_rows.count_active(conn, tenant=tenant)
    return Reading(config, windows, ov, active_alerts)


class Readings:
    """Each tenant's last Reading, so that scrapes do not scan the database (Settings.metrics_cache_ttl_s).

    A reading younger than ttl_s is answered as it is; one up to STALE_TTLS x ttl_s old is answered too while a
    background thread reads a fresh one (one at a time per tenant): under load a scrape never waits on the
    database, and a scraper every ttl_s or so always finds a reading. Missing, older, or read under another SLO
    configuration: read now, one reader at a time per tenant (concurrent scrapes wait for it instead of scanning
    side by side). ttl_s 0 reads on every call.
    """

    STALE_TTLS = 3

    def __init__(
        self,
        reader: Callable[[str, slo.SloConfig], Reading],
        *,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self.entries: dict[str, tuple[float, Reading]] = {}
        self.refreshing: set[str] = set()
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def get(self, tenant: str, config: slo.SloConfig) -> Reading:
        if self.ttl_s <= 0:
            return self.reader(tenant, config)
        with self.guard:
            oldest = self.monotonic() - self.STALE_TTLS * self.ttl_s
            for gone in [t for t, (at, _r) in self.entries.items() if at < oldest]:
                del self.entries[gone]
            found = self._found(tenant, config, stale_ok=True)
            if found is not None:
                if self.monotonic() - self.entries[tenant][0] >= self.ttl_s and tenant not in self.refreshing:
                    self.refreshing.add(tenant)
                    refresh = threading.Thread(
                        target=self._refresh, args=(tenant, config), name="faultlens-metrics-refresh", daemon=True
                    )
                    refresh.start()
                return found
            lock = self.locks.setdefault(tenant, threading.Lock())
        with lock:
            with self.guard:
                found = self._found(tenant, config, stale_ok=False)  # read by the scrape this one waited for
            if found is not None:
                return found
            at = self.monotonic()
            return self._store(tenant, at, self.reader(tenant, config))

    def _found(self, tenant: str, config: slo.SloConfig, *, stale_ok: bool) -> Reading | None:
        entry = self.entries.get(tenant)
        if entry is None or entry[1].config != config:
            return None
        if not stale_ok and self.monotonic() - entry[0] >= self.ttl_s:
            return None
        return entry[1]

    def _refresh(self, tenant: str, config: slo.SloConfig) -> None:
        try:
            at = self.monotonic()
            self._store(tenant, at, self.reader(tenant, config))
        except Exception:
            # The reading ages out instead; the first scrape after that reads (and reports up=0 if it fails).
            log.exception("overview metrics could not be refreshed")
        finally:
            with self.guard:
                self.refreshing.discard(tenant)

    def _store(self, tenant: str, at: float, reading: Reading) -> Reading:
        """Keep `reading` (its age counted from `at`, when it began) unless a later-begun one is kept already."""
        with self.guard:
            entry = self.entries.get(tenant)
            if entry is None or entry[0] <= at:
                self.entries[tenant] = (at, reading)
        return reading


class OverviewCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        *,
        default_tenant: str,
        config: Callable[[], slo.SloConfig],
        clock: Callable[[], int] = now_ms,
        namespace: str = DEFAULT_NAMESPACE,
        ttl_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.default_tenant = default_tenant
        self.config = config
        self.clock = clock
        self.readings = Readings(partial(read, engine, clock=clock), ttl_s=ttl_s)

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
        reading = self.readings.get(tenant, self.config())
        windows, ov, active_alerts = reading.windows, reading.overview, reading.active_alerts
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
                **{"ttl_s": settings.metrics_cache_ttl_s, **kwargs},
            )
            registry.register(found)
            _installed[registry] = found
        return found
