"""Prometheus metrics on an injected registry: one Metrics object per service instance (fresh in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Process-wide series: every tenant's traffic adds to them, so only an operator (or open mode) reads them.
        self.registry = registry or CollectorRegistry()
        # Scrape-time series computed for the scraping key's tenant alone (triage.metrics_collector).
        self.tenant_registry = CollectorRegistry()
        self.ingest_events = Counter(
            "faultlens_ingest_events_total",
            "Events received by the ingest pipeline, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        # Requests answered 408 because their body did not arrive within Settings.request_body_timeout_s.
        self.http_body_read_timeouts = Counter(
            "faultlens_http_body_read_timeouts_total",
            "Requests whose body did not arrive within the body-read deadline (answered 408).",
            registry=self.registry,
        )
        # What the OTLP receiver made of the items it was sent (signal: spans|logs). outcome: event (became an
        # outcome event, counted again under ingest), evidence (kept as a trace's evidence span), evidence_capped
        # (a failed span over the per-trace cap), dropped (a successful downstream span, a log record below the
        # severity threshold), rejected (refused, reported in partial_success).
        self.otlp_items = Counter(
            "faultlens_otlp_items_total",
            "Spans and log records received over OTLP, by signal and what became of them.",
            ["signal", "outcome"],
            registry=self.registry,
        )
        self.ingest_batch_seconds = Histogram(
            "faultlens_ingest_batch_duration_seconds",
            "Time to validate, classify and store one ingest batch.",
            registry=self.registry,
        )
