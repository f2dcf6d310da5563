"""The poison drill, fast mode: a malformed NDJSON line rejected with its reason, a task that always fails
dead-lettered with its reason."""

from __future__ import annotations

import redis

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import poison
from tests.conftest import missing_service


def test_poison_drill_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    try:
        redis.Redis.from_url(drill_config.redis_url, socket_timeout=5).ping()
    except redis.ConnectionError as exc:  # pragma: no cover - depends on the machine
        missing_service(f"Redis at {drill_config.redis_url} is not reachable: {exc}")
    result = run_drill(poison.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    deltas = result.metric_deltas
    assert deltas['faultlens_ingest_rejections_total{reason="invalid_json"}'] == 1
    assert deltas['faultlens_ingest_events_total{outcome="accepted"}'] == poison.BATCH - 1
    assert deltas['faultlens_tasks_requeued_total{store="native",trigger="auto"}'] == poison.MAX_RETRIES
    names = [c.name for c in result.checks]
    assert any("dead-lettered with its reason" in n for n in names)
    assert any("manual retry answers 409" in n for n in names)
    # The batch's and the refused retry's trace ids, each in the access log line of its request.
    assert len(result.trace_ids) == 2
    logged = {line.get("trace_id") for line in result.log_lines if line.get("logger") == "faultlens.access"}
    assert set(result.trace_ids) <= logged
    assert any(line.get("job_id") == "sync:native" for line in result.log_lines)
    assert result.lost == 0
