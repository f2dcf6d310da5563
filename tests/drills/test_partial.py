"""The partial drill, fast mode: half a batch invalid, the valid half stored once, the re-send stores nothing twice."""

from __future__ import annotations

from collections import Counter

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import partial


def test_partial_drill_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    result = run_drill(partial.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    deltas = result.metric_deltas
    # Two sends: the valid half accepted once, then counted as duplicates; the invalid half refused twice, by reason.
    assert deltas['faultlens_ingest_events_total{outcome="accepted"}'] == partial.VALID
    assert deltas['faultlens_ingest_events_total{outcome="duplicate"}'] == partial.VALID
    for reason, n in Counter(reason for reason, _ in partial._INVALID).items():
        assert deltas[f'faultlens_ingest_rejections_total{{reason="{reason}"}}'] == 2 * n
    assert len(result.trace_ids) == 2
    assert {line["trace_id"] for line in result.log_lines} == set(result.trace_ids)
    assert result.lost == 0


def test_build_batch_alternates_valid_and_invalid() -> None:
    batch, valid, expected, invalid = partial.build_batch("t", "2026-12-06T00:00:00Z")
    assert len(batch) == 2 * partial.VALID and len(valid) == partial.VALID
    assert sorted(expected) == list(range(1, len(batch), 2))
    assert len(invalid) == partial.VALID - 1  # the non-object has no id
