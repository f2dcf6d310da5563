"""Every view counts alike: summary, overview, trends and the metrics collector give the same tally, on SQLite and
PostgreSQL; task hints count their failures from rollups the way a raw scan does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import Metric

from faultlens.connectors import hints
from faultlens.connectors.retry_policy import RetryPolicies
from faultlens.services import Services
from faultlens.store.rollup_shapes import DAY_MS
from faultlens.timeutil import Window, now_ms
from faultlens.triage import metrics_collector, overview, slo, stats, trends
from tests.helpers import event

ACTIONABLE = "failed_contact_upstream"  # service failure, actionable


def _at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _samples(families: Iterable[Metric], name: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for f in families if f.name == name for s in f.samples}


def test_the_views_agree_on_one_tally(services: Services) -> None:
    now = now_ms()
    recent = _at(now - 30 * 60_000)
    batch: list[dict[str, Any]] = [event(source="api", status="success", occurred_at=recent) for _ in range(7)]
    batch += [event(source="api", error_message=ACTIONABLE, occurred_at=recent) for _ in range(3)]
    batch += [event(source="api", status="dead_letter", error_message=ACTIONABLE, occurred_at=recent)]
    batch += [event(source="api", status="retry", error_message="downstream_closed", occurred_at=recent)]
    batch += [event(source="jobs", error_message="Invalid API key", http_status=401, occurred_at=recent)]
    batch += [event(source="jobs", status="cancelled", occurred_at=recent) for _ in range(2)]
    assert services.pipeline.ingest(batch, tenant="default").accepted == len(batch)
    window = Window("1d", now - DAY_MS, now + 1)
    with services.engine.connect() as conn:
        summary = stats.summary(conn, tenant="default", window=window)
        ov = overview.build_overview(conn, tenant="default", window=window, config=slo.SloConfig(), now=now)
        trend = trends.build_trends(conn, tenant="default", window=window, bucket_ms=DAY_MS)
    totals = ov.totals.as_dict()
    expected = {"total": 15, "success": 7, "failures": 8, "actionable": 4}
    assert (summary["total"], summary["success_count"], summary["failure_count"]) == (15, 7, 8)
    assert (totals["total"], totals["success_count"], totals["failure_count"]) == (15, 7, 8)
    t = trend["totals"]
    assert (t["total"], t["success"], t["failures"], t["actionable_failures"]) == tuple(expected.values())
    assert (t["dead_letters"], t["retries"], t["failure_rate"]) == (1, 1, 8 / 15)
    assert summary["actionable_failure_count"] == totals["actionable_failure_count"] == 4
    assert summary["actionable_failure_rate"] == totals["actionable_failure_rate"] == t["actionable_failure_rate"]
    assert (summary["service_failure_count"], summary["client_failure_count"], summary["client_abort_count"]) == (
        t["service_failures"],
        t["client_failures"],
        t["client_aborts"],
    )
    assert (t["service_failures"], t["client_failures"], t["client_aborts"]) == (4, 1, 3)  # cancellations abort

    collector = metrics_collector.OverviewCollector(
        services.engine, default_tenant="default", config=slo.SloConfig, clock=lambda: now
    )
    families = list(collector.collect())
    per_source = {name: p.as_dict() for name, p in ov.sources.items()}
    actionable = _samples(families, "faultlens_overview_actionable_failures")
    ratios = _samples(families, "faultlens_overview_actionable_failure_ratio")
    events = _samples(families, "faultlens_overview_events")
    for source, part in per_source.items():
        assert actionable[("24h", source)] == part["actionable_failure_count"]
        assert ratios[("24h", source)] == part["actionable_failure_rate"]
        by_status = {k[2]: v for k, v in events.items() if k[:2] == ("24h", source)}
        assert by_status == {s: n for s, n in part["status_counts"].items() if n}


def test_task_hints_count_failures_from_rollups_as_a_raw_scan_would(services: Services) -> None:
    now = now_ms()
    # Hours back, so the counts come from whole-hour rollup rows, plus minutes back for the raw edges.
    old = [_at(now - h * 3_600_000) for h in (3, 5, 7, 9, 11, 13)]
    fresh = _at(now - 2 * 60_000)
    batch = [
        event(source="worker", item_type="task", error_message="TimeoutError: timed out", occurred_at=at) for at in old
    ]
    batch += [event(source="worker", item_type="task", status="success", occurred_at=at) for at in old * 2]
    batch += [
        event(source="worker", item_type="task", error_message="TimeoutError: timed out", occurred_at=fresh)
        for _ in range(9)
    ]
    batch += [event(source="worker", error_message="TimeoutError: timed out", occurred_at=fresh) for _ in range(50)]
    assert services.pipeline.ingest(batch, tenant="default").accepted == len(batch)
    with services.engine.connect() as conn:
        found = hints.task_hints(
            conn, tenant="default", start_ms=now - DAY_MS, end_ms=now + 1, policies=RetryPolicies()
        )
    by_code = {h["code"]: h for h in found}
    # 15 failed of 27 ended tasks; the 50 request events are not tasks.
    assert by_code["task_failure_rate"]["observed"] == round(15 / 27, 4)
    assert by_code["task_category_dominates"]["observed"] == 1.0
    spike = by_code["task_failure_spike"]
    assert spike["observed"] == 9 and spike["threshold"] == 5.0 and spike["level"] == "warn"
