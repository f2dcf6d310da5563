"""Events by day partition on PostgreSQL: the fresh schema, idempotent ingest through event_ids, partition pruning,
the resumable conversion of a filled table, retention by partition drop (rollups kept), SQLite batched deletes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, MetaData, Table, insert, select, text

from faultlens.api.app import create_app
from faultlens.jobs import runner
from faultlens.jobs.backfill import DERIVED
from faultlens.jobs.event_partitions import NAME as DUTY_NAME
from faultlens.jobs.event_partitions import PassReport, maintain
from faultlens.jobs.queue import Job, JobKind, JobState, list_jobs
from faultlens.jobs.rollup_rebuild import ensure_rollup_rebuild
from faultlens.services import Services
from faultlens.store import events as event_store
from faultlens.store import partitions, rollup_shapes, rollup_writes
from faultlens.store.db import create_db_engine, migrate
from faultlens.store.tables import ROLLUP_KEY, event_ids, events, leases, rollups
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.helpers import ago, event

DAY_MS = partitions.DAY_MS


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Services]:
    svc = make_services(postgres_url, start_jobs=False)
    ensure_rollup_rebuild(svc.engine)
    yield svc
    svc.engine.dispose()


def _ingest(services: Services, batch: list[dict[str, Any]], tenant: str = "default") -> tuple[int, int]:
    result = services.pipeline.ingest(batch, tenant=tenant)
    assert not result.rejected, result.rejected
    return result.accepted, result.duplicates


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _scanned(plan: str) -> set[str]:
    """The partitions an EXPLAIN output reads."""
    return set(re.findall(r"\bon (events_p\d{8}|events_default)\b", plan))


def _partition_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")).all()
    return {name: int(n) for name, n in rows}


def _rollup_counts(conn: Connection) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in conn.execute(select(rollups)).mappings():
        key = tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)
        counts[key] += row["count"]
    return +counts


def _recount_rows(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    counts, _attempts = rollup_writes.deltas(rows)
    return +counts


def _recount(conn: Connection) -> Counter[tuple[Any, ...]]:
    return _recount_rows([dict(r) for r in conn.execute(select(events)).mappings()])


def test_a_fresh_database_is_partitioned_by_day_with_a_default(pg: Services) -> None:
    with pg.engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        strategy = conn.execute(
            text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'events'::regclass")
        ).scalar()
        children = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'events'::regclass"
                )
            ).scalars()
        )
        unique_on_events = conn.execute(
            text("SELECT count(*) FROM pg_index WHERE indrelid = 'events'::regclass AND indisunique")
        ).scalar()
    today = partitions.day_of(now_ms())
    assert strategy == "r"
    assert partitions.DEFAULT_PARTITION in children
    assert {partitions.partition_name(today + d) for d in range(0, 4)} <= children
    assert unique_on_events == 1  # the primary key (pk, occurred_at) alone: event_ids holds the id key


def test_ingest_is_idempotent_and_events_land_in_their_day(pg: Services) -> None:
    batch = [event(id=f"d{d}-{i}", occurred_at=ago(days=d, minutes=i)) for d in (0, 1, 3) for i in range(5)]
    assert _ingest(pg, batch) == (15, 0)
    assert _ingest(pg, batch) == (0, 15)  # the re-send stores nothing
    assert _ingest(pg, batch[:3], tenant="other") == (3, 0)  # ids are per tenant
    with pg.engine.connect() as conn:
        assert conn.execute(select(text("count(*)")).select_from(events)).scalar() == 18
        assert conn.execute(select(text("count(*)")).select_from(event_ids)).scalar() == 18
        found = event_store.get_event(conn, tenant="default", event_id="d3-2")
        placed = _partition_counts(conn)
    maintain(pg.engine, retention_days=90)  # day 3 back may predate the partitions: moved out of the default
    with pg.engine.connect() as conn:
        moved = _partition_counts(conn)
    assert found["id"] == "d3-2"
    assert sum(placed.values()) == sum(moved.values()) == 18
    today = partitions.day_of(now_ms())
    expected: Counter[str] = Counter()
    for one in batch:
        occurred = _ms(one["occurred_at"])
        expected[partitions.partition_name(partitions.day_of(occurred))] += 1
    for one in batch[:3]:
        expected[partitions.partition_name(partitions.day_of(_ms(one["occurred_at"])))] += 1
    assert moved == dict(expected)
    assert partitions.partition_name(today) in moved


def test_a_two_day_query_over_ten_days_scans_two_partitions(pg: Services) -> None:
    today = partitions.day_of(now_ms())
    batch = [event(id=f"p{d}-{i}", occurred_at=ago(days=d, minutes=i)) for d in range(10) for i in range(20)]
    _ingest(pg, batch)
    maintain(pg.engine, retention_days=90)
    first = (today - 6) * DAY_MS
    with pg.engine.connect() as conn:
        have = set(partitions.list_day_partitions(conn))
        assert set(range(today - 9, today + 1)) <= have
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT count(*) FROM events WHERE tenant = 'default' "
                    "AND occurred_at >= :start AND occurred_at < :end"
                ),
                {"start": first, "end": first + 2 * DAY_MS},
            ).scalars()
        )
    assert _scanned(plan) == {partitions.partition_name(today - 6), partitions.partition_name(today - 5)}, plan


def _old_row(i: int, occurred_at: int) -> dict[str, Any]:
    return {
        "tenant": "default" if i % 3 else "other",
        "id": f"old-{i}",
        "source": "codex-proxy",
        "operation": "POST /v1/responses",
        "item_type": "request",
        "status": "failure" if i % 2 else "success",
        "occurred_at": occurred_at,
        "received_at": occurred_at + 100,
        "started_at": None,
        "duration_ms": 1.5,
        "http_status": 502 if i % 2 else 200,
        "error_code": "failed_contact_upstream" if i % 2 else None,
        "error_message": f"failed_contact_upstream #{i}" if i % 2 else None,
        "attempt": 1,
        "max_attempts": 3,
        "trace_id": f"t{i}",
        "span_id": None,
        "correlation_id": None,
        "request_id": None,
        "job_id": None,
        "release": (None, "1.4.0", "1.5.0")[i % 5 % 3],
        "environment": "prod",
        "attributes": None,
        "failure_kind": "failed_contact_upstream" if i % 2 else "none",
        "failure_class": "service_failure" if i % 2 else "none",
        "is_actionable": bool(i % 2),
        "category": "dependency_error" if i % 2 else "none",
        "retryable": bool(i % 2),
        "rule_name": None,
        "rule_version": "default@2026-11-22",
        "fingerprint_id": None,
    }


def _fill_at_0009(engine: Engine, n: int) -> list[dict[str, Any]]:
    """Events (and their rollups, as ingest would have written them) in a database at migration 0009."""
    now = now_ms()
    rows = [_old_row(i, now - (i % 6) * DAY_MS - i * 1000) for i in range(n)]
    # The rollups of that revision: no release shape, no release and environment columns (migration 0012).
    shapes = [s for s in rollup_shapes.ALL_SHAPES if s != rollup_shapes.RELEASE_SHAPE]
    counts, attempts = rollup_writes.deltas(rows, shapes=shapes)
    old_key = ROLLUP_KEY[:-2]
    with engine.begin() as conn:
        conn.execute(insert(events), rows)
        conn.execute(
            insert(Table("rollups", MetaData(), autoload_with=conn)),
            [
                {**dict(zip(old_key, k, strict=False)), "count": n, "attempt_sum": attempts.get(k, 0)}
                for k, n in counts.items()
            ],
        )
    return rows


def _without_release_rows(counts: Counter[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    """The counts of every shape but the release rows (which migration 0012 leaves to the rebuild job)."""
    return Counter({k: n for k, n in counts.items() if k[1] != rollup_shapes.RELEASE_SHAPE})


def _snapshot(conn: Connection) -> dict[int, dict[str, Any]]:
    """Every event by pk, without the fields a backfill to the current rules may rewrite."""
    return {r["pk"]: {k: v for k, v in r.items() if k not in DERIVED} for r in conn.execute(select(events)).mappings()}


def test_a_filled_database_is_converted_by_a_resumable_job_while_ingest_goes_on(empty_postgres_url: str) -> None:
    engine = create_db_engine(empty_postgres_url)
    migrate(engine, "0009")
    _fill_at_0009(engine, 600)
    started = time.monotonic()
    migrate(engine)  # queues the conversion, copies nothing
    assert time.monotonic() - started < 10
    services = make_services(empty_postgres_url, start_jobs=False)
    ensure_rollup_rebuild(services.engine)
    with services.engine.connect() as conn:
        assert not partitions.is_partitioned(conn)
        queued = list_jobs(conn, kind=JobKind.PARTITION_EVENTS.value)
        before = _snapshot(conn)
        rollups_before = _rollup_counts(conn)
        recount_before = _recount(conn)
    assert [j.state for j in queued] == [JobState.PENDING]
    assert len(before) == 600 and rollups_before == _without_release_rows(recount_before)
    # Until the conversion is done, the duty leaves events alone (no retention on the table being copied); minute
    # rollups are kept here so that the rollups below still equal a recount.
    assert maintain(services.engine, retention_days=1, fine_rollup_retention_hours=10**6) == PassReport()
    with services.engine.connect() as conn:
        assert len(list_jobs(conn, kind=JobKind.PARTITION_EVENTS.value)) == 1
        assert len(_snapshot(conn)) == 600

    # A re-send of a stored id during the conversion is still a duplicate (event_ids is not filled yet).
    assert _ingest(services, [event(id="old-1", occurred_at=ago(minutes=1))]) == (0, 1)

    # A runner stops after 3 batches (a graceful stop); the copy stays half done and ingest goes on.
    owner = runner.make_owner()
    claimed = runner.claim(services, queued[0], owner)
    assert claimed is not None
    stop = threading.Event()
    batches: list[Job] = []

    def count(job: Job) -> None:
        batches.append(job)
        if len(batches) >= 3:
            stop.set()

    stopped = runner.run_job(services, claimed, owner, stop=stop, batch_size=50, pause_s=0, on_progress=count)
    assert stopped.state == JobState.PENDING and 0 < stopped.checkpoint < max(before)
    with services.engine.connect() as conn:
        assert not partitions.is_partitioned(conn)
        assert partitions.table_exists(conn, partitions.STAGED_TABLE)
    during = [event(id=f"new-{i}", occurred_at=ago(minutes=i)) for i in range(40)]
    assert _ingest(services, during[:20]) == (20, 0)

    # Resumed from the checkpoint, with a second writer ingesting while it copies.
    writer_done = threading.Event()

    def write() -> None:
        for i in range(20, 40, 4):
            _ingest(services, during[i : i + 4])
        writer_done.set()

    writer = threading.Thread(target=write)
    writer.start()
    ended = runner.run_until_idle(services, batch_size=50, pause_s=0.005)
    writer.join(timeout=60)
    assert writer_done.is_set()
    runner.run_until_idle(services, batch_size=50)  # nothing left to do; a finished conversion is not redone
    assert [(j.kind, j.state) for j in ended if j.kind == JobKind.PARTITION_EVENTS] == [
        (JobKind.PARTITION_EVENTS.value, JobState.DONE)
    ]
    with services.engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        assert not partitions.table_exists(conn, partitions.STAGED_TABLE)
        after = _snapshot(conn)
        ids = {(r[0], r[1]) for r in conn.execute(select(event_ids.c.tenant, event_ids.c.id))}
        rollups_after = _rollup_counts(conn)
        recount = _recount(conn)
        next_pk = conn.execute(text("SELECT nextval(pg_get_serial_sequence('events', 'pk'))")).scalar()
    assert {pk: row for pk, row in after.items() if pk in before} == before  # every old row, pk and value
    assert {r["id"] for r in after.values()} - {r["id"] for r in before.values()} == {e["id"] for e in during}
    assert ids == {(r["tenant"], r["id"]) for r in after.values()}
    assert rollups_after == recount  # the old rollups untouched, the new events added once
    assert next_pk is not None and next_pk > max(after)  # pks keep coming from the same sequence
    # Idempotency holds across the swap, for old and new ids alike.
    assert _ingest(services, [event(id="old-1"), event(id="new-3"), event(id="fresh")]) == (1, 2)
    services.engine.dispose()
    engine.dispose()


def test_retention_drops_old_partitions_and_keeps_rollups(pg: Services) -> None:
    today = partitions.day_of(now_ms())
    batch = [event(id=f"r{d}-{i}", occurred_at=ago(days=d, minutes=i)) for d in range(12) for i in range(10)]
    _ingest(pg, batch)
    maintain(pg.engine, retention_days=0)  # keep forever: every day gets its partition
    with pg.engine.connect() as conn:
        rollups_before = _rollup_counts(conn)
        assert set(range(today - 11, today + 1)) <= set(partitions.list_day_partitions(conn))
    # A crash between detaching a day and dropping it: the next pass finishes the drop.
    with pg.engine.begin() as conn:
        partitions.detach_day(conn, today - 11)
    report = maintain(pg.engine, retention_days=5, batch=4)
    first_kept = partitions.day_of(now_ms() - 5 * DAY_MS)
    with pg.engine.connect() as conn:
        days = set(partitions.list_day_partitions(conn))
        kept = {r["id"] for r in conn.execute(select(events.c.id)).mappings()}
        ids = {r[0] for r in conn.execute(select(event_ids.c.id))}
        leftovers = partitions.list_detached_days(conn)
        rollups_after = _rollup_counts(conn)
    assert sorted(report.dropped) == list(range(today - 11, first_kept))
    assert not {d for d in days if d < first_kept} and leftovers == []
    want = {e["id"] for e in batch if partitions.day_of(_ms(e["occurred_at"])) >= first_kept}
    assert kept == ids == want
    assert rollups_after == rollups_before  # rollups outlive raw events
    assert report.batches > len(report.dropped)  # ids forgotten in batches of 4 (10 per day)
    # A forgotten id is new again: nothing of it is stored any more.
    assert _ingest(pg, [event(id="r11-0", occurred_at=ago(days=1))]) == (1, 0)


def test_retention_on_sqlite_deletes_in_batches(sqlite_url: str) -> None:
    services = make_services(sqlite_url, start_jobs=False)
    ensure_rollup_rebuild(services.engine)
    _ingest(services, [event(id=f"old{i}", occurred_at=ago(days=10, minutes=i)) for i in range(30)])
    _ingest(services, [event(id=f"new{i}", occurred_at=ago(days=1, minutes=i)) for i in range(5)])
    with services.engine.connect() as conn:
        rollups_before = _rollup_counts(conn)
    report = maintain(services.engine, retention_days=5, batch=7)
    with services.engine.connect() as conn:
        kept = sorted(r[0] for r in conn.execute(select(events.c.id)))
        rollups_after = _rollup_counts(conn)
    assert report.deleted == 30 and report.batches == 5  # 7 + 7 + 7 + 7 + 2
    assert kept == sorted(f"new{i}" for i in range(5))
    # Rollups outlive the events, but for minute rows past their retention (48 hours: those of the old events).
    cutoff = now_ms() - 48 * rollup_shapes.HOUR_MS
    gone = {k for k in rollups_before if k[2] == rollup_shapes.FINE_MS // 1000 and k[5] < cutoff}
    assert rollups_after == Counter({k: n for k, n in rollups_before.items() if k not in gone})
    assert report.fine_rollups_deleted == len(gone) > 0
    assert maintain(services.engine, retention_days=0).deleted == 0  # 0 keeps events forever
    services.engine.dispose()


def test_the_duty_starts_with_the_server_under_its_lease(postgres_url: str) -> None:
    services = make_services(postgres_url, event_partition_interval_s=3600)
    with TestClient(create_app(services)):
        deadline = time.monotonic() + 20
        holder = None
        while holder is None and time.monotonic() < deadline:
            with services.engine.connect() as conn:
                holder = conn.execute(select(leases.c.holder).where(leases.c.name == DUTY_NAME)).scalar()
            time.sleep(0.05)
    assert holder is not None
    services.engine.dispose()


_RUN_JOBS = """
import sys
from faultlens.jobs.runner import run_until_idle
from faultlens.services import build_services
from faultlens.settings import Settings

settings = Settings(database_url=sys.argv[1], start_jobs=False, start_alerting=False, task_sync_interval_s=0)
run_until_idle(build_services(settings), batch_size=20, pause_s=0.02)
"""


def test_a_conversion_killed_mid_way_resumes_from_its_checkpoint(empty_postgres_url: str) -> None:
    engine = create_db_engine(empty_postgres_url)
    migrate(engine, "0009")
    _fill_at_0009(engine, 600)
    migrate(engine)
    with engine.connect() as conn:
        before = _snapshot(conn)
    proc = subprocess.Popen([sys.executable, "-c", _RUN_JOBS, empty_postgres_url], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    seen: Job | None = None
    try:
        while seen is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                found = list_jobs(conn, kind=JobKind.PARTITION_EVENTS.value, limit=1)
            if found and found[0].checkpoint > 0:
                seen = found[0]
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert seen is not None, "the conversion never reported progress"
    with engine.connect() as conn:
        killed = list_jobs(conn, kind=JobKind.PARTITION_EVENTS.value, limit=1)[0]
        staged = conn.execute(text(f"SELECT count(*) FROM {partitions.STAGED_TABLE}")).scalar()
        assert not partitions.is_partitioned(conn)
    assert killed.state == JobState.RUNNING and 0 < killed.checkpoint < max(before)
    assert staged == killed.done  # the open batch rolled back: the copy is exactly the committed batches

    services = make_services(empty_postgres_url, start_jobs=False)
    ended = runner.run_until_idle(services, batch_size=50)  # the owner's pid is gone: taken over at once
    assert (killed.id, JobState.DONE) in [(j.id, j.state) for j in ended]
    with services.engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        after = _snapshot(conn)
        ids = {(r[0], r[1]) for r in conn.execute(select(event_ids.c.tenant, event_ids.c.id))}
    assert after == before
    assert ids == {(r["tenant"], r["id"]) for r in before.values()}
    services.engine.dispose()
    engine.dispose()
