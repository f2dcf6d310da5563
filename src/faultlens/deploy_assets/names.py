"""What the generated assets share: the served metrics of the dictionary, their full names, the alerts' names."""

from __future__ import annotations

from faultlens.metric_dictionary import Dictionary, MetricSpec

# The routes whose answers make the ingest availability SLO (events, OTLP traces and logs).
INGEST_ROUTES = ("/api/v1/events", "/v1/traces", "/v1/logs")
# The SLO: share of ingest requests not answered 5xx.
INGEST_OBJECTIVE = 0.999
# The job name the scrape example gives faultlens; the alert on a failing scrape matches it.
SCRAPE_JOB = "faultlens"
RUNBOOK = "docs/runbook.md"


def served(dictionary: Dictionary) -> list[MetricSpec]:
    """Metrics a scrape returns: not the ops-summary-only figures, not the planned ones."""
    return [m for m in dictionary.metrics if m.served]


def full(dictionary: Dictionary, namespace: str, name: str) -> str:
    """The exported name of a dictionary metric (KeyError-like failure when the dictionary lacks it)."""
    return dictionary.metric(name).full_name(namespace)


def runbook_url(alert: str) -> str:
    return f"{RUNBOOK}#{alert}"
