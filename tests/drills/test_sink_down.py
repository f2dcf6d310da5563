"""The sink_down drill in fast mode: a receiver down for cfg.seconds(60) loses nothing and every retry is counted."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, metric_sum, run_drill
from faultlens.drills.scenarios import sink_down


def test_sink_down_drill_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    result = run_drill(sink_down.DRILL, drill_config)

    assert result.verdict == "pass", report.render_markdown([result])
    assert result.lost == 0
    assert result.duration_s < 30
    names = {c.name for c in result.checks if c.ok}
    assert any("exactly once" in n for n in names)
    assert any("outbox tries == deliveries_total retrying + delivered" in n for n in names)
    # The outage made the sender retry, and each notification was delivered once.
    assert metric_sum(result.metric_deltas, "faultlens_alert_deliveries_total", result="retrying") >= 4
    assert metric_sum(result.metric_deltas, "faultlens_alert_deliveries_total", result="delivered") == 2
    assert metric_sum(result.metric_deltas, "faultlens_alert_notifications_dead_total") == 0
    assert any("tried again in" in str(line.get("msg")) for line in result.log_lines)
    assert len(result.trace_ids) >= 4
    assert any("sink up after" in text for _, text in result.timeline)
