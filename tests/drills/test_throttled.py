"""The throttled drill in fast mode: 429 Retry-After is honoured to the millisecond and everything is delivered once."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, metric_sum, run_drill
from faultlens.drills.scenarios import throttled


def test_throttled_drill_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    result = run_drill(throttled.DRILL, drill_config)

    assert result.verdict == "pass", report.render_markdown([result])
    assert result.lost == 0
    assert result.duration_s < 30
    names = {c.name for c in result.checks if c.ok}
    assert any(n.startswith("no call came before Retry-After") for n in names)
    assert any("exactly once" in n for n in names)
    # Two batches, each throttled at least twice, then delivered once.
    assert metric_sum(result.metric_deltas, "faultlens_alert_deliveries_total", result="retrying") >= 4
    assert metric_sum(result.metric_deltas, "faultlens_alert_deliveries_total", result="delivered") == 2
    assert any("HTTP 429" in str(line.get("msg")) for line in result.log_lines)
    assert len(result.trace_ids) >= 4
