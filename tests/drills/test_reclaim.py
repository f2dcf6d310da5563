"""The reclaim drill in fast mode: a killed backfill owner's job is taken over and finished from its checkpoint."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import reclaim


def test_reclaim_drill_passes_with_a_new_owner_resuming_from_the_checkpoint(drill_config: DrillConfig) -> None:
    result = run_drill(reclaim.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    by_name = {c.name: c for c in result.checks}
    assert by_name["the job's owner changed (claim lines: killed pid, then the survivor's)"].ok
    assert by_name["resumed from the checkpoint, not from zero"].ok
    assert by_name["done == total == events, each examined once"].ok
    # The evidence an operator reads: both claim lines (the killed owner's at 0, the survivor's at its checkpoint).
    claims = [line["msg"] for line in result.log_lines if " claimed by " in str(line.get("msg"))]
    assert len(claims) == 2 and claims[0].endswith("at checkpoint 0") and not claims[1].endswith("at checkpoint 0")
    assert result.lost == 0
    assert result.duration_s < 30, result.duration_s
