"""Prometheus metrics on an injected registry, built from the metric dictionary: one Metrics object per service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from faultlens.metric_dictionary import DEFAULT_NAMESPACE, LabelGuard, MetricSpec, load


class _Guarded:
    """`.labels()` checked against the dictionary's closed sets (raise in strict mode, else fold to "other")."""

    _spec: MetricSpec
    _guard: LabelGuard | None = None

    def labels(self, *values: Any, **by_name: Any) -> Any:
        if by_name:
            values = tuple(by_name[label] for label in self._spec.labels)
        if self._guard is not None:
            values = self._guard.check(self._spec, [str(v) for v in values])
        return super().labels(*values)  # type: ignore[misc]


class DictCounter(_Guarded, Counter):
    pass


class DictGauge(_Guarded, Gauge):
    pass


class DictHistogram(_Guarded, Histogram):
    pass


Metric = DictCounter | DictGauge | DictHistogram


def build(
    name: str, registry: CollectorRegistry | None, *, namespace: str = DEFAULT_NAMESPACE, guard: LabelGuard | None
) -> Any:
    """The Counter / Gauge / Histogram named `name` in the dictionary (its help, labels and buckets)."""
    spec = load().metric(name)
    if spec.scope != "process" or not spec.served:
        raise ValueError(f"{name} is not a process-wide metric served on /metrics")
    full = spec.full_name(namespace)
    metric: Metric
    if spec.type == "counter":
        metric = DictCounter(full, spec.help, spec.labels, registry=registry)
    elif spec.type == "gauge":
        metric = DictGauge(full, spec.help, spec.labels, registry=registry)
    else:
        assert spec.buckets is not None
        metric = DictHistogram(full, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    metric._spec = spec
    metric._guard = guard
    return metric


def family(
    name: str, *, namespace: str = DEFAULT_NAMESPACE, labels: tuple[str, ...] | None = None
) -> GaugeMetricFamily:
    """A scrape-time gauge family named and described by the dictionary (its labels unless narrowed)."""
    spec = load().metric(name)
    if spec.type != "gauge":
        raise ValueError(f"{name} is not a gauge")
    return GaugeMetricFamily(spec.full_name(namespace), spec.help, labels=list(labels or spec.labels))


class LoopHealth(Collector):
    """Last success and lag of each background loop this process started (a loop not started here is not shown,
    so a replica without a job runner never looks stalled)."""

    def __init__(self, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self.namespace = namespace
        self.clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._succeeded: dict[str, float] = {}

    def started(self, loop: str) -> None:
        with self._lock:
            self._started.setdefault(loop, self.clock())

    def forget(self, loop: str) -> None:
        """The loop no longer runs here (its duty's lease went to another process): not shown, never "stalled"."""
        with self._lock:
            self._started.pop(loop, None)
            self._succeeded.pop(loop, None)

    def succeeded(self, loop: str) -> None:
        with self._lock:
            self._started.setdefault(loop, self.clock())
            self._succeeded[loop] = self.clock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = family("background_loop_last_success_timestamp_seconds", namespace=self.namespace)
        lag = family("background_loop_lag_seconds", namespace=self.namespace)
        now = self.clock()
        with self._lock:
            for loop in sorted(self._started):
                done = self._succeeded.get(loop)
                last.add_metric([loop], done or 0.0)
                lag.add_metric([loop], max(0.0, now - (done or self._started[loop])))
        yield last
        yield lag


class Metrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = DEFAULT_NAMESPACE, strict: bool = False
    ) -> None:
        # Process-wide series: every tenant's traffic adds to them, so only an operator (or open mode) reads them.
        self.registry = registry or CollectorRegistry()
        # Scrape-time series computed for the scraping key's tenant alone (triage.metrics_collector).
        self.tenant_registry = CollectorRegistry()
        self.namespace = namespace
        self.label_violations = self.build("metric_label_violations_total", guarded=False)
        self.guard = LabelGuard(
            strict=strict, on_violation=lambda m, label: self.label_violations.labels(m, label).inc()
        )
        self.ingest_events = self.build("ingest_events_total")
        # The rejection code of each refused event (ingest.EventRejected codes).
        self.ingest_rejections = self.build("ingest_rejections_total")
        self.ingest_batch_seconds = self.build("ingest_batch_duration_seconds")
        # Requests answered 408 because their body did not arrive within Settings.request_body_timeout_s.
        self.http_body_read_timeouts = self.build("http_body_read_timeouts_total")
        # Requests answered 503 server_busy past Settings.max_concurrent_requests (api/concurrency.py).
        self.http_requests_shed = self.build("http_requests_shed_total")
        # api/http_metrics.py: by route template (never the raw path), method and status class.
        self.http_requests = self.build("http_requests_total")
        self.http_request_seconds = self.build("http_request_duration_seconds")
        # What the OTLP receiver made of the items it was sent (signal: spans|logs). outcome: event (became an
        # outcome event, counted again under ingest), evidence (kept as a trace's evidence span), evidence_capped
        # (a failed span over the per-trace cap), dropped (a successful downstream span, a log record below the
        # severity threshold), rejected (refused, reported in partial_success).
        self.otlp_items = self.build("otlp_items_total")
        self.jobs_run = self.build("jobs_run_total")
        self.jobs_failed = self.build("jobs_failed_total")
        self.loop_passes = self.build("background_loop_passes_total")
        self.loops = LoopHealth(namespace)
        self.registry.register(self.loops)
        # store/db.py's engine events and connectors/deadline.py's Redis calls.
        self.database_seconds = self.build("database_call_duration_seconds")
        self.database_errors = self.build("database_errors_total")
        self.redis_seconds = self.build("redis_call_duration_seconds")
        self.redis_errors = self.build("redis_errors_total")
        self.rules_active_version = self.build("rules_active_version")
        # Alerting (alerting/): sends by receiver type and result, dead letters, outbox-to-receiver lag, evaluation
        # time, the outbox's backlog, and which leased duties this process holds.
        self.alert_deliveries = self.build("alert_deliveries_total")
        self.alert_dead = self.build("alert_notifications_dead_total")
        self.alert_lag_seconds = self.build("alert_notification_lag_seconds")
        self.alert_evaluation_seconds = self.build("alert_evaluation_duration_seconds")
        self.alert_pending = self.build("alert_notifications_pending")
        self.lease_held = self.build("lease_held")
        self._rule_version: str | None = None
        self._rule_lock = threading.Lock()

    def build(self, name: str, *, guarded: bool = True) -> Any:
        """A dictionary metric on this registry (label values checked by this object's guard)."""
        return build(name, self.registry, namespace=self.namespace, guard=self.guard if guarded else None)

    def loop_started(self, loop: str) -> None:
        self.loops.started(loop)

    def duty_held(self, duty: str, held: bool) -> None:
        """A leased duty's holder changed (jobs/duty.py): `lease_held`, and its loop shown only where it runs, so
        the replicas that stand by never look stalled."""
        self.lease_held.labels(duty).set(1 if held else 0)
        if held:
            self.loops.started(duty)
        else:
            self.loops.forget(duty)

    def loop_pass(self, loop: str, *, ok: bool) -> None:
        """One pass of a background loop: counted by outcome; a completed pass moves its last success."""
        self.loop_passes.labels(loop, "completed" if ok else "failed").inc()
        if ok:
            self.loops.succeeded(loop)

    def redis_call(self, operation: str, seconds: float) -> None:
        """connectors.deadline.RedisObserver: one Redis command or pipeline."""
        self.redis_seconds.labels(operation).observe(seconds)

    def redis_error(self, reason: str) -> None:
        self.redis_errors.labels(reason).inc()

    def set_rule_version(self, version: str) -> None:
        """The info gauge rules_active_version: one series, the version this process classifies with."""
        with self._rule_lock:
            if version == self._rule_version:
                return
            if self._rule_version is not None:
                self.rules_active_version.remove(self._rule_version)
            self.rules_active_version.labels(version).set(1)
            self._rule_version = version
