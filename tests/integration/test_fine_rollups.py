"""Minute rollups: windows ending now read minute and hour rows, not the events of the last hour; answers stay equal
to a raw scan, also once minute rows are pruned or missing (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy import event as sa_event

from faultlens.jobs.event_partitions import maintain
from faultlens.services import Services
from faultlens.store import rollup_reads, rollup_retention
from faultlens.store.rollup_shapes import FINE_MS, HOUR_MS
from faultlens.timeutil import now_ms
from faultlens.triage import overview, raw, slo
from tests.helpers import event

MINUTE = 60_000
HEALTH = ("source", "status", "failure_class", "is_actionable")  # the burn-rate shape, the one with minutes
QUESTIONS = [("source", "failure_kind", "error_code", "category"), HEALTH, ("status",)]
SHORT = {label: width for label, width in slo.RECENT_WINDOWS_MS.items() if width <= HOUR_MS}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _ingest_between(services: Services, rng: random.Random, lo: int, hi: int, n: int, prefix: str) -> None:
    batch = [
        event(
            id=f"{prefix}{i}",
            source=rng.choice(["api", "billing", "doc_sync"]),
            status=rng.choice(["failure", "failure", "success", "retry", "dead_letter"]),
            error_message=rng.choice(["failed_contact_upstream", "downstream_closed", "Invalid API key"]),
            error_code=rng.choice([None, "E1", "E2"]),
            attempt=rng.choice([None, 1, 3]),
            occurred_at=_iso(rng.randrange(lo, hi)),
        )
        for i in range(n)
    ]
    assert services.pipeline.ingest(batch, tenant="default").accepted == n


def _short_windows(conn: Connection, now: int) -> dict[tuple[str, str], tuple[int, int]]:
    recent = slo.count_recent(conn, tenant="default", now=now)
    return {
        (source, label): (c.total, c.actionable)
        for source, windows in recent.items()
        for label, c in windows.items()
        if label in SHORT
    }


def _raw_short_windows(conn: Connection, now: int) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for label, width in SHORT.items():
        rows = raw.aggregate_raw(conn, tenant="default", start=now + 1 - width, end=now + 1, by=HEALTH)
        for (source, _status, _failure_class, actionable), (n, _a) in rows.items():
            slot = out.setdefault((source, label), [0, 0])
            slot[0] += n
            slot[1] += n if actionable else 0
    return {k: (v[0], v[1]) for k, v in out.items()}


def _assert_equal_to_raw(conn: Connection, windows: list[tuple[int, int]]) -> None:
    for start, end in windows:
        for by in QUESTIONS:
            answered = raw.aggregate(conn, tenant="default", start=start, end=end, by=by)
            assert answered == raw.aggregate_raw(conn, tenant="default", start=start, end=end, by=by), (start, end, by)
        starts = [start, *(s for s in (start + 7 * MINUTE + 11, end - 3 * MINUTE - 5) if s < end)]
        counted = rollup_reads.count_since(conn, tenant="default", starts=starts, end=end, by=HEALTH)
        scanned = rollup_reads.count_since(conn, tenant="default", starts=starts, end=end, by=HEALTH, raw=True)
        assert counted == scanned, (starts, end)


def test_windows_ending_now_read_buckets_not_the_last_hour_of_events(services: Services) -> None:
    rng = random.Random(7)
    if now_ms() % HOUR_MS < MINUTE:
        # Right after an hour starts, its few events are cheaper read raw than as the hour minus the rest.
        time.sleep((MINUTE - now_ms() % HOUR_MS) / 1000 + 0.1)
    t0 = now_ms()
    _ingest_between(services, rng, t0 - 100 * MINUTE, t0, 1500, "e")
    now = now_ms()
    windows = [(now + 1 - w, now + 1) for w in (*SHORT.values(), 2 * HOUR_MS, 7 * 24 * HOUR_MS)]
    windows += [(now - 47 * MINUTE + 13, now - 3 * MINUTE - 5), (now - 95 * MINUTE + 1, now - 61 * MINUTE - 1)]
    with services.engine.connect() as conn:
        _assert_equal_to_raw(conn, windows)
        before = _short_windows(conn, now)
        assert before == _raw_short_windows(conn, now) and len(before) >= 12
        ov = overview.build_overview(conn, tenant="default", config=slo.SloConfig(), now=now)
        totals = (ov.totals.as_dict(), {name: p.as_dict() for name, p in ov.sources.items()})
    # Drop the raw events more than a minute away from every window bound (rollups keep them): the burn-rate
    # windows still count them, so they read minute rows there, and raw rows only within a minute of a bound.
    bounds = [now + 1 - w for w in SHORT.values()] + [now + 1]
    kept = " OR ".join(f"(occurred_at >= {b - MINUTE - 1} AND occurred_at < {b + MINUTE + 1})" for b in bounds)
    with services.engine.begin() as conn:
        gone = conn.execute(text(f"DELETE FROM events WHERE tenant = 'default' AND NOT ({kept})")).rowcount
    assert gone > 1000
    with services.engine.connect() as conn:
        assert _short_windows(conn, now) == before
    # Drop every raw event: the overview (a week ending now) reads whole hours and the current hour's row only.
    with services.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE tenant = 'default'"))
    with services.engine.connect() as conn:
        ov = overview.build_overview(conn, tenant="default", config=slo.SloConfig(), now=now)
        assert (ov.totals.as_dict(), {name: p.as_dict() for name, p in ov.sources.items()}) == totals
        assert totals[0]["total"] == 1500


def test_pruned_or_missing_minutes_fall_back_to_hours_and_stay_exact(services: Services) -> None:
    rng = random.Random(11)
    t0 = now_ms()
    old = t0 - 72 * HOUR_MS
    _ingest_between(services, rng, old - 2 * HOUR_MS, old + 2 * HOUR_MS, 600, "o")
    _ingest_between(services, rng, t0 - 90 * MINUTE, t0, 600, "n")
    now = now_ms()
    old_windows = [(old - 47 * MINUTE + 13, old + 29 * MINUTE - 5), (old + 3 * MINUTE + 1, old + 9 * MINUTE + 2)]
    recent_windows = [(now + 1 - w, now + 1) for w in SHORT.values()]
    with services.engine.connect() as conn:
        old_hour = old // HOUR_MS * HOUR_MS
        assert rollup_reads.complete_fine_hours(conn, tenant="default", shape=2, hours=[old_hour], where={})
        _assert_equal_to_raw(conn, old_windows + recent_windows)
    report = maintain(services.engine, retention_days=90, now=now, batch=50, fine_rollup_retention_hours=48)
    assert report.fine_rollups_deleted > 50  # several batches
    with services.engine.connect() as conn:
        left = conn.execute(
            text("SELECT min(bucket), count(*) FROM rollups WHERE grain = :g"), {"g": FINE_MS // 1000}
        ).one()
        assert left[0] >= now - 48 * HOUR_MS and left[1] > 0
        assert not rollup_reads.complete_fine_hours(conn, tenant="default", shape=2, hours=[old_hour], where={})
        _assert_equal_to_raw(conn, old_windows + recent_windows)
    # Minute rows missing from recent hours (a pass stopped halfway; events stored before minutes existed).
    with services.engine.begin() as conn:
        assert rollup_retention.delete_fine_before(conn, cutoff_ms=now + HOUR_MS, limit=7) == 7
    with services.engine.connect() as conn:
        _assert_equal_to_raw(conn, recent_windows)
        assert _short_windows(conn, now) == _raw_short_windows(conn, now)


def _statements(services: Services, run: Any) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa_event.listen(services.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa_event.remove(services.engine, "before_cursor_execute", record)
    return seen


def test_recent_windows_cost_a_fixed_number_of_queries(services: Services) -> None:
    rng = random.Random(3)
    t0 = now_ms()
    _ingest_between(services, rng, t0 - 30 * MINUTE, t0, 300, "q")
    now = now_ms()

    def run() -> None:
        with services.engine.connect() as conn:
            slo.count_recent(conn, tenant="default", now=now)

    statements = _statements(services, run)
    on_events = [s for s in statements if "FROM events" in s]
    # Readiness and minute checks, one minute-rollup read, one hourly read, raw edges: 5 start edges at most
    # (each under a minute) and the rest of the current minute.
    assert len(statements) <= 10 and len(on_events) <= 5, statements
