"""The rule_version drill in fast mode: a pack activated mid-ingest; every event ends under the new version."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import _backfill as bf
from faultlens.drills.scenarios import rule_version


def test_rule_version_drill_passes_with_preview_equal_to_backfill(drill_config: DrillConfig) -> None:
    result = run_drill(rule_version.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    by_name = {c.name: c for c in result.checks}
    assert by_name["preview counts == backfill counts"].ok
    assert by_name[f"every event ends under {bf.NEW_VERSION}"].ok
    assert by_name["every live batch accepted"].ok
    # Ingest really ran across the activation: accepted events moved the counter while the drill watched.
    assert result.metric_deltas['faultlens_ingest_events_total{outcome="accepted"}'] > 0
    assert result.metric_deltas['faultlens_jobs_run_total{kind="backfill"}'] == 1
    assert result.lost == 0
    assert result.duration_s < 30, result.duration_s
