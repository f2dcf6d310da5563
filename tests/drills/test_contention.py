"""The contention drill, fast mode: a write lock held past the deadline answers 503 + Retry-After, stores no part of
the batch, counts db_busy, and the client's retry stores the batch once (SQLite file lock; PostgreSQL table and row)."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, DrillResult, run_drill
from faultlens.drills.scenarios import contention

_5XX = 'faultlens_http_requests_total{method="POST",route="/api/v1/events",status_class="5xx"}'
_2XX = 'faultlens_http_requests_total{method="POST",route="/api/v1/events",status_class="2xx"}'
_BUSY = 'faultlens_database_errors_total{reason="db_busy"}'


def _assert_evidence(result: DrillResult, phases: int) -> None:
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    deltas = result.metric_deltas
    # Each phase: two refused tries while the lock is held, then the retry that stores the batch.
    assert deltas[_5XX] == 2 * phases
    assert deltas[_2XX] == phases
    assert deltas[_BUSY] >= 2 * phases
    assert deltas['faultlens_ingest_events_total{outcome="accepted"}'] == contention.BATCH * phases
    refused = [line for line in result.log_lines if line.get("logger") == "faultlens.access" and line["status"] == 503]
    assert len(refused) == 2 * phases
    assert all(line["error_code"] == "database_unavailable" for line in refused)
    assert {line["trace_id"] for line in refused} <= set(result.trace_ids)
    assert len(result.trace_ids) == 3 * phases
    assert not [c for c in result.checks if not c.ok]
    assert result.lost == 0


def test_contention_drill_on_sqlite_answers_503_and_the_retry_stores_the_batch(drill_config: DrillConfig) -> None:
    result = run_drill(contention.DRILL, drill_config)
    _assert_evidence(result, phases=1)
    assert any("locked by another writer" in str(line.get("msg")) for line in result.log_lines)


def test_contention_drill_on_postgresql_table_and_row_locks(drill_config_pg: DrillConfig) -> None:
    result = run_drill(contention.DRILL, drill_config_pg)
    _assert_evidence(result, phases=2)
    assert any("a lock was not granted in time" in str(line.get("msg")) for line in result.log_lines)
    assert any("rollup row lock: no partial batch" in c.name for c in result.checks)


def test_make_batch_ids_are_unique_per_phase() -> None:
    first = contention.make_batch("r", "a", "2026-12-06T00:00:00Z")
    second = contention.make_batch("r", "b", "2026-12-06T00:00:00Z")
    ids = [e["id"] for e in first + second]
    assert len(ids) == len(set(ids)) == 2 * contention.BATCH
