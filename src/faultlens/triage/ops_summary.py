"""The ops summary: one tenant's API, worker, quality, cost and SLO figures over a window, each under the metric
dictionary's name for it (GET /api/v1/internal/ops/metrics/summary; docs/ops-summary.md).

Which figures there are, their sections, names, units and help come from the dictionary (its `summary` entries);
this module only computes the values: API usage from api_usage, jobs from the jobs table, events from rollups,
hints from the one hint engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from faultlens import metric_dictionary
from faultlens.settings import Settings
from faultlens.store import api_usage, event_sizes
from faultlens.store import jobs as job_store
from faultlens.timeutil import Window, ms_to_rfc3339
from faultlens.triage import overview, slo
from faultlens.triage.counts import ratio, tally, window_rows

SECTIONS = ("api", "worker", "quality", "cost", "slo")
# Hint levels shown, most severe first (the dictionary's label_values for slo_hints).
HINT_LEVELS = ("critical", "warn")
_BY = ("status", "failure_class", "is_actionable", "failure_kind")
# The failure kind classify.engine gives a failure no rule matched.
UNCLASSIFIED_KIND = "unclassified"

# short metric name -> its values: (labels, value) pairs, one per series shown.
Values = Mapping[str, list[tuple[dict[str, str], float | int | None]]]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | int | None
    unit: str
    help: str
    labels: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "help": self.help, "labels": self.labels}


def namespace(settings: Settings) -> str:
    return metric_dictionary.load().namespace(settings)


def build_summary(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    config: slo.SloConfig,
    rule_version: str,
    namespace: str,
    now: int,
) -> dict[str, Any]:
    """The summary body for `tenant` over `window` (see docs/ops-summary.md)."""
    values: dict[str, list[tuple[dict[str, str], float | int | None]]] = {}
    values.update(_api(conn, tenant=tenant, window=window))
    values.update(_worker(conn, tenant=tenant, window=window, now=now))
    values.update(_events(conn, tenant=tenant, window=window, rule_version=rule_version))
    values.update(_slo(conn, tenant=tenant, config=config, now=now))
    return {
        "tenant": tenant,
        "generated_at": ms_to_rfc3339(now),
        "window": {
            "label": window.label,
            "since": ms_to_rfc3339(window.start_ms),
            "until": ms_to_rfc3339(window.end_ms),
        },
        "sections": {name: [f.as_dict() for f in figures] for name, figures in shape(values, namespace).items()},
    }


def shape(values: Values, namespace: str) -> dict[str, list[Figure]]:
    """The figures of every dictionary metric with a summary entry, by section, in the dictionary's order."""
    sections: dict[str, list[Figure]] = {name: [] for name in SECTIONS}
    for spec in metric_dictionary.load().metrics:
        if spec.summary is None:
            continue
        if spec.name not in values:
            raise KeyError(f"the ops summary computes no value for the dictionary's {spec.name!r}")
        name = f"{namespace}_{spec.summary.field}"
        for labels, value in values[spec.name]:
            sections[spec.summary.section].append(Figure(name, value, spec.unit, spec.help, labels))
    return sections


def _api(conn: Connection, *, tenant: str, window: Window) -> Values:
    usage = api_usage.sum_usage(conn, tenant=tenant, start=window.start_ms, end=window.end_ms)
    return {
        "http_requests_total": [({}, usage.requests)],
        "http_request_error_ratio": [({}, ratio(usage.by_class.get("5xx", 0), usage.requests))],
        "http_request_duration_seconds": [({}, api_usage.quantile_s(usage.buckets, 0.95))],
    }


def _worker(conn: Connection, *, tenant: str, window: Window, now: int) -> Values:
    finished = job_store.count_finished(conn, visible_to=tenant, start=window.start_ms, end=window.end_ms)
    oldest = job_store.find_oldest_pending_created_at(conn, visible_to=tenant)
    lag_s = 0.0 if oldest is None else max(0, now - oldest) / 1000
    return {
        "jobs_run_total": [({}, sum(finished.values()))],
        "jobs_failed_total": [({}, finished.get(job_store.JobState.FAILED.value, 0))],
        "jobs_lag_seconds": [({}, lag_s)],
    }


def _events(conn: Connection, *, tenant: str, window: Window, rule_version: str) -> Values:
    rows = window_rows(conn, tenant=tenant, window=window, by=_BY)
    counts = tally(rows, _BY)
    unclassified = sum(
        n
        for (_s, failure_class, _a, kind), (n, _x) in rows.items()
        if failure_class != "none" and kind == UNCLASSIFIED_KIND
    )
    stored_bytes = event_sizes.estimate_bytes(
        conn, tenant=tenant, start=window.start_ms, end=window.end_ms, events_in_window=counts.total
    )
    return {
        "events_actionable_failure_ratio": [({}, counts.actionable_rate)],
        "events_unclassified_ratio": [({}, ratio(unclassified, counts.failures))],
        "rules_active_version": [({"version": rule_version}, 1)],
        "events_stored_total": [({}, counts.total)],
        "events_stored_bytes": [({}, stored_bytes)],
        "events_attempts_per_event": [({}, counts.avg_attempts)],
    }


def _slo(conn: Connection, *, tenant: str, config: slo.SloConfig, now: int) -> Values:
    # The hints active now: the hint engine over its own window (the last 7 days), whatever the summary's window.
    ov = overview.build_overview(conn, tenant=tenant, days=overview.DEFAULT_WINDOW_DAYS, config=config, now=now)
    by_level = {level: 0 for level in HINT_LEVELS}
    for hint in ov.hints:
        if hint.level in by_level:
            by_level[hint.level] += 1
    return {"slo_hints": [({"level": level}, n) for level, n in by_level.items()]}
