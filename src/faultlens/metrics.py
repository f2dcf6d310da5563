"""Prometheus metrics on an injected registry: one Metrics object per service instance (fresh in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.ingest_events = Counter(
            "faultlens_ingest_events_total",
            "Events received by the ingest pipeline, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.ingest_batch_seconds = Histogram(
            "faultlens_ingest_batch_duration_seconds",
            "Time to validate, classify and store one ingest batch.",
            registry=self.registry,
        )
