"""A batch whose ids are partly stored already: only the new events reach the rollups, releases and templates."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, select

from faultlens.services import Services
from faultlens.store import rollup_writes
from faultlens.store.tables import ROLLUP_KEY, events, fingerprints, releases_seen, rollups
from faultlens.timeutil import ms_to_rfc3339, now_ms


def _event(i: int, at: int, **extra: Any) -> dict[str, Any]:
    failed = i % 2 == 0
    return {
        "id": f"p-{i}",
        "source": "checkout-api",
        "operation": "POST /orders",
        "status": "failure" if failed else "success",
        "occurred_at": ms_to_rfc3339(at),
        "http_status": 504 if failed else 200,
        "error_message": f"upstream timeout after {1000 + i}ms (order ORD-{9000 + i})" if failed else None,
        "release": "2026.12.1",
        "environment": "production",
        "attempt": i % 3,
        "attributes": {"site_id": f"s{i % 2}", "customer_id": f"c{i}"},
        **extra,
    }


def _rollup_counts(conn: Connection) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    attempts: Counter[tuple[Any, ...]] = Counter()
    for row in conn.execute(select(rollups)).mappings():
        key = tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)
        counts[key] += row["count"]
        attempts[key] += row["attempt_sum"]
    return +counts, +attempts


def test_a_partly_stored_batch_adds_only_its_new_events(quiet: Services) -> None:
    start = now_ms() - 3 * 3_600_000
    pipeline = quiet.pipeline
    first = pipeline.ingest([_event(i, start + i * 60_000) for i in range(6)], tenant="default")
    assert (first.accepted, first.duplicates) == (6, 0)
    # Ids 3..5 again (sent later, with other times: the stored events stay as they were), 6..11 new, 7 twice.
    again = [_event(i, start + 7_200_000 + i * 60_000) for i in range(3, 12)] + [_event(7, start)]
    second = pipeline.ingest(again, tenant="default")
    assert (second.accepted, second.duplicates) == (6, 4)
    with quiet.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(select(events)).mappings()]
        assert sorted(r["id"] for r in stored) == sorted(f"p-{i}" for i in range(12))
        # Rollups hold exactly what the stored events add up to (the resent ones counted once, at their first time).
        counts, attempts = rollup_writes.deltas(stored)
        assert _rollup_counts(conn) == (+counts, +attempts)
        seen = conn.execute(select(releases_seen.c.first_seen, releases_seen.c.last_seen)).one()
        assert tuple(seen) == (start, start + 7_200_000 + 11 * 60_000)
        templates = conn.execute(select(fingerprints.c.id, fingerprints.c.last_seen)).all()
        failed = [r for r in stored if r["fingerprint_id"]]
        assert {fid for fid, _ in templates} == {r["fingerprint_id"] for r in failed}
        last = max(r["occurred_at"] for r in failed)
        assert max(at for _, at in templates) == last
