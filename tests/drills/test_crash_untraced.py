"""The crash_untraced drill, fast mode: kill -9 mid-ingest, the pre-crash scrape and the JSON logs alone reconstruct
the accepted batches and the restart, and the clients' re-send loses nothing."""

from __future__ import annotations

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import crash_untraced
from faultlens.drills.scenarios.crash_untraced import epochs


def test_crash_untraced_drill_reconstructs_the_crash_and_loses_nothing(drill_config: DrillConfig) -> None:
    result = run_drill(crash_untraced.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    assert result.lost == 0
    names = {c.name for c in result.checks if c.ok}
    assert "logs: two processes, the first ended without a shutdown line (killed), then a restart" in names
    assert "the pre-crash scrape agrees with the logs up to its own access line" in names
    assert "after the re-send every event is stored exactly once (count by ids)" in names
    # The pre-crash scrape counted the gated client's three batches at least; the restarted process starts at 0.
    scraped = result.metric_deltas['pre-crash scrape: faultlens_ingest_events_total{outcome="accepted"}']
    assert scraped >= crash_untraced.GATED_BEFORE * crash_untraced.BATCH
    assert result.metric_deltas['after restart: faultlens_ingest_events_total{outcome="accepted"}'] == 0
    # Evidence shown: the last accepted ingest line before the crash and the restarted process' start line.
    assert any(line.get("logger") == "faultlens.access" and line.get("status") == 200 for line in result.log_lines)
    assert any("Started server process" in str(line.get("msg")) for line in result.log_lines)
    assert not result.trace_ids  # untraced: request ids alone carry it
    texts = [text for _, text in result.timeline]
    assert any(
        t.startswith("logs: gated last accepted batch crash-") and t.endswith("-gated-b02; 3 accepted before the crash")
        for t in texts
    )


def _line(logger: str, msg: str, ts: str = "t", **extra: object) -> dict[str, object]:
    return {"ts": ts, "logger": logger, "msg": msg, **extra}


def test_epochs_split_at_each_serve_start_even_before_uvicorn_names_the_pid() -> None:
    lines = [
        _line("faultlens.cli", "database sqlite:///x", "t1"),
        _line("uvicorn.error", "Started server process [11]", "t2"),
        _line("faultlens.access", "POST", "t3", method="POST", path="/api/v1/events", status=200, request_id="a"),
        # The second process logs its database line before uvicorn's start line: it belongs to the new process.
        _line("faultlens.cli", "database sqlite:///x", "t4"),
        _line("uvicorn.error", "Started server process [22]", "t5"),
        _line("uvicorn.error", "Shutting down", "t6"),
    ]
    first, second = epochs(lines)
    assert (first.pid, second.pid) == (11, 22)
    assert [line["ts"] for line in first.lines] == ["t1", "t2", "t3"]
    assert not first.ended_cleanly and second.ended_cleanly
    assert [line["request_id"] for line in first.accepted()] == ["a"]
    assert second.started_ts == "t5"
