"""Backfill and rollup rebuild on SQLite and PostgreSQL: exact stat moves, idempotence, kill -9 resume, locking."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from faultlens.api.app import create_app
from faultlens.classify.rules import default_pack
from faultlens.ingest import Pipeline
from faultlens.jobs import runner
from faultlens.jobs.backfill import DERIVED
from faultlens.jobs.queue import Job, JobKind, enqueue, find_job, list_jobs
from faultlens.jobs.rollup_rebuild import ensure_rollup_rebuild
from faultlens.model import decision
from faultlens.rulepacks import activation
from faultlens.services import Services
from faultlens.store import events as event_store
from faultlens.store import rollup_reads, rollup_shapes, rollup_writes
from faultlens.store.state import ACTIVE_RULE_VERSION, ROLLUPS_REBUILD_NEEDED, find_state, save_state
from faultlens.store.tables import events, jobs
from faultlens.store.tables import rollups as rollups_table
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.helpers import ago, event

OPS_PACK: dict[str, Any] = {
    "id": "ops@2026-12-01",
    "description": "we own the proxy: a closed downstream is our failure",
    "rules": [
        {
            "name": "closed_is_ours",
            "match": {"text": ["downstream_closed"]},
            "failure_kind": "proxy_closed",
            "failure_class": "service_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "downstream_closed"}],
        }
    ],
}
NEW_VERSION = "ops@2026-12-01+" + default_pack().id


@pytest.fixture
def quiet(db_url: str) -> Iterator[Services]:
    """Services without the background runner: each test decides when jobs run."""
    svc = make_services(db_url, start_jobs=False)
    ensure_rollup_rebuild(svc.engine)  # as the runner's first pass would: a fresh database needs no rebuild
    yield svc
    svc.engine.dispose()


def mixed_events(n: int, *, prefix: str = "e") -> list[dict[str, Any]]:
    """n events: a third downstream_closed (moves under OPS_PACK), a third upstream failures, a third successes;
    every other one carries rolled-up attributes, so attribute rows move with them."""
    out = []
    for i in range(n):
        when = ago(minutes=1 + i % 600)
        if i % 3 == 0:
            one = event(id=f"{prefix}{i}", occurred_at=when, error_message="downstream_closed", attempt=1 + i % 4)
        elif i % 3 == 1:
            one = event(id=f"{prefix}{i}", occurred_at=when, error_message="failed_contact_upstream", attempt=2)
        else:
            one = event(id=f"{prefix}{i}", occurred_at=when, status="success")
        if i % 2 == 0:
            one["attributes"] = {"site_id": f"s{i % 4}", "target_object": i % 3}
        out.append(one)
    return out


def ingest(services: Services, raw: list[dict[str, Any]]) -> None:
    for start in range(0, len(raw), 1000):
        result = services.pipeline.ingest(raw[start : start + 1000], tenant="default")
        assert not result.rejected, result.rejected


def rollup_counter(conn: Connection) -> tuple[Counter[Any], Counter[Any]]:
    counts: Counter[Any] = Counter()
    attempts: Counter[Any] = Counter()
    cols = [c for c in rollups_table.c if c.name not in ("count", "attempt_sum")]
    for row in conn.execute(select(*cols, rollups_table.c["count"], rollups_table.c.attempt_sum)):
        *key, n, a = row
        key[cols.index(rollups_table.c.is_actionable)] = bool(key[cols.index(rollups_table.c.is_actionable)])
        if n:
            counts[tuple(key)] = n
        if a:
            attempts[tuple(key)] = a
    return counts, attempts


def assert_rollups_exact(services: Services) -> None:
    """Every rollup row (all shapes and grains, counts and attempt sums) equals a recount of the events table."""
    with services.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(events)).mappings()]
        expected_counts, expected_attempts = rollup_writes.deltas(rows)
        counts, attempts = rollup_counter(conn)
        assert counts == +expected_counts
        assert attempts == +expected_attempts
        flt = event_store.EventFilter(start_ms=0, end_ms=now_ms() + 86_400_000)
        by = ("status", "failure_class", "failure_kind", "is_actionable")
        raw_rows = event_store.count_raw(conn, tenant="default", flt=flt, by=by)
        raw = {tuple(r[k] for k in by): r["count"] for r in raw_rows}
        agg = rollup_reads.aggregate(conn, tenant="default", start=0, end=now_ms() + 86_400_000, by=by)
        assert {k: v[0] for k, v in agg.items()} == {(s, c, k, bool(a)): n for (s, c, k, a), n in raw.items()}


def derived_by_id(services: Services) -> dict[str, tuple[Any, ...]]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(events.c.id, *(events.c[n] for n in DERIVED))).all()
    return {
        r[0]: tuple(
            bool(v) if isinstance(v, bool | int) and n in ("is_actionable", "retryable") else v
            for n, v in zip(DERIVED, r[1:], strict=True)
        )
        for r in rows
    }


def assert_classified_by(services: Services) -> None:
    """Every stored event carries the classification its tenant's rules decide for it now (rule_version aside:
    a row whose classification did not change keeps the version that wrote it)."""
    with services.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(events)).mappings()]
    assert rows
    for row in rows:
        fresh = dict(row)
        services.pipeline.classify_row(fresh)
        assert decision(fresh) == decision(row), row["id"]


def test_activation_moves_stats_exactly_and_a_second_run_changes_nothing(quiet: Services) -> None:
    with TestClient(create_app(quiet)) as client:
        r = client.post("/api/v1/events", json=mixed_events(30))
        assert r.json()["accepted"] == 30
        before = client.get("/api/v1/stats/summary").json()
        assert (before["client_abort_count"], before["service_failure_count"], before["success_count"]) == (10, 10, 10)
        assert before["actionable_failure_count"] == 10
        original = client.get("/api/v1/events/e0").json()

        r = client.post("/api/v1/rules/activate", json=OPS_PACK)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["changed"] is True and body["active_version"] == NEW_VERSION
        assert body["backfill"]["state"] == "pending" and body["backfill"]["rule_version"] == NEW_VERSION
        # New ingest is classified by the new rules at once; history waits for the backfill.
        client.post("/api/v1/events", json=[event(id="fresh", error_message="downstream_closed")])
        assert client.get("/api/v1/events/fresh").json()["failure_kind"] == "proxy_closed"
        assert client.get("/api/v1/events/e0").json()["failure_kind"] == "downstream_closed"

        ended = runner.run_until_idle(quiet)
        # Changed: only the 10 moved events. The successes keep their row (and their rule_version): their
        # classification is the same under the new stack, which rule_backfills records for them.
        assert [(j.kind, j.state, j.done, j.total, j.params["changed"]) for j in ended] == [
            ("backfill", "done", 31, 31, 10)
        ]
        after = client.get("/api/v1/stats/summary").json()
        assert after["total"] == 31 and after["success_count"] == 10
        assert (after["client_abort_count"], after["service_failure_count"]) == (0, 21)
        assert after["actionable_failure_count"] == 21
        moved = client.get("/api/v1/events/e0").json()
        assert (moved["failure_kind"], moved["failure_class"], moved["rule_name"], moved["rule_version"]) == (
            "proxy_closed",
            "service_failure",
            "closed_is_ours",
            "ops@2026-12-01",
        )
        assert moved["category"] == "dependency_error" and moved["is_actionable"] is True
        for name in ("error_message", "occurred_at", "received_at", "status", "source", "attempt", "fingerprint_id"):
            assert moved[name] == original[name], name
        assert_rollups_exact(quiet)
        assert_classified_by(quiet)

        # Activating the same pack again is a no-op; a forced backfill examines everything, changes nothing.
        again = client.post("/api/v1/rules/activate", json=OPS_PACK).json()
        assert again["changed"] is False and again["backfill"] is None
        snapshot = derived_by_id(quiet)
        # A forced global backfill: every tenant's events with that tenant's rules (here the tenant's own pack).
        job = activation.sync_rule_version(quiet.engine, quiet.pipeline.classifier.version, force=True)
        assert job is not None
        second = runner.run_until_idle(quiet, batch_size=7)
        assert [(j.id, j.state, j.done, j.params["changed"]) for j in second] == [(job.id, "done", 31, 0)]
        assert derived_by_id(quiet) == snapshot
        assert client.get("/api/v1/stats/summary").json() == after
        assert_rollups_exact(quiet)


def test_restart_keeps_the_activated_pack_and_a_new_rules_file_enqueues(db_url: str, tmp_path: Path) -> None:
    first = make_services(db_url, start_jobs=False)
    ensure_rollup_rebuild(first.engine)
    ingest(first, mixed_events(9))
    activation.activate(first, activation.parse_pack(OPS_PACK), OPS_PACK)
    runner.run_until_idle(first)
    first.engine.dispose()

    # What build_services does at start-up: the persisted activation wins while --rules is unchanged.
    second = make_services(db_url, start_jobs=False)
    packs = activation.startup_packs(second.engine, second.settings)
    assert [p.id for p in packs] == ["ops@2026-12-01", default_pack().id]
    assert activation.sync_rule_version(second.engine, "+".join(p.id for p in packs)) is None
    second.engine.dispose()

    # Started with a different --rules: that explicit choice replaces the activation and history follows.
    other = {**OPS_PACK, "id": "mine@2026-12-02"}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(other))
    third = make_services(db_url, start_jobs=False, rules_file=path)
    packs = activation.startup_packs(third.engine, third.settings)
    assert [p.id for p in packs] == ["mine@2026-12-02", default_pack().id]
    job = activation.sync_rule_version(third.engine, third.pipeline.classifier.version)
    assert job is not None and job.rule_version == "mine@2026-12-02+" + default_pack().id
    assert activation.startup_packs(third.engine, third.settings)[0].id == "mine@2026-12-02"
    with third.engine.connect() as conn:
        assert find_state(conn, ACTIVE_RULE_VERSION) == job.rule_version
    runner.run_until_idle(third)
    assert_classified_by(third)
    assert_rollups_exact(third)
    third.engine.dispose()


def test_superseded_backfill_is_never_run(quiet: Services) -> None:
    ingest(quiet, mixed_events(12))
    first = activation.activate(quiet, activation.parse_pack(OPS_PACK), OPS_PACK).job
    newer = {**OPS_PACK, "id": "ops@2026-12-03", "rules": [{**OPS_PACK["rules"][0], "failure_kind": "proxy_hangup"}]}
    second = activation.activate(quiet, activation.parse_pack(newer), newer).job
    assert first is not None and second is not None
    ended = runner.run_until_idle(quiet)
    assert [j.id for j in ended] == [second.id]
    with quiet.engine.connect() as conn:
        stale = find_job(conn, first.id)
        kinds: dict[str, int] = dict(
            conn.execute(select(events.c.failure_kind, func.count()).group_by(events.c.failure_kind)).all()
        )
    assert stale is not None and stale.state == "failed" and "superseded" in (stale.error or "")
    assert kinds == {"proxy_hangup": 4, "failed_contact_upstream": 4, "none": 4}
    assert_rollups_exact(quiet)


def _snapshot_check(services: Services) -> None:
    """In one read snapshot: rollup totals per class equal the raw counts (no batch half-applied)."""
    with services.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn.exec_driver_sql("BEGIN")  # pysqlite opens no transaction for reads by itself
        rolled = dict(
            conn.execute(
                select(rollups_table.c.failure_class, func.sum(rollups_table.c["count"]))
                .where(rollups_table.c.shape == 0, rollups_table.c.grain == 86_400)
                .group_by(rollups_table.c.failure_class)
            ).all()
        )
        raw: dict[str, int] = dict(
            conn.execute(select(events.c.failure_class, func.count()).group_by(events.c.failure_class)).all()
        )
        conn.rollback()
    assert {k: int(v) for k, v in rolled.items() if v} == raw


def test_stats_stay_consistent_while_ingest_runs_beside_the_backfill(quiet: Services) -> None:
    ingest(quiet, mixed_events(1500))
    job = activation.activate(quiet, activation.parse_pack(OPS_PACK), OPS_PACK).job
    assert job is not None
    result: list[list[Job]] = []
    worker = threading.Thread(target=lambda: result.append(runner.run_until_idle(quiet, batch_size=10, pause_s=0.002)))
    worker.start()
    checks = 0
    mid_run = 0
    with TestClient(create_app(quiet)) as client:
        while worker.is_alive() or checks < 3:
            r = client.post("/api/v1/events", json=mixed_events(6, prefix=f"live{checks}-"))
            assert r.json()["accepted"] == 6
            _snapshot_check(quiet)
            summary = client.get("/api/v1/stats/summary").json()
            with quiet.engine.connect() as conn:
                scanned = conn.execute(select(func.count()).select_from(events)).scalar()
                progress = find_job(conn, job.id)
            assert summary["total"] <= scanned
            assert progress is not None
            mid_run += 0 < progress.done < 1500
            checks += 1
        worker.join()
    assert mid_run >= 2, f"only {mid_run} of {checks} checks ran while the backfill was half-way"
    assert [(j.id, j.state) for j in result[0]] == [(job.id, "done")]
    assert_classified_by(quiet)
    assert_rollups_exact(quiet)


def test_backfill_killed_mid_way_resumes_from_its_checkpoint(db_url: str, tmp_path: Path) -> None:
    services = make_services(db_url, start_jobs=False)
    ensure_rollup_rebuild(services.engine)
    ingest(services, mixed_events(3000))
    pack_file = tmp_path / "ops.json"
    pack_file.write_text(json.dumps(OPS_PACK))
    cli = Path(sys.executable).with_name("faultlens")
    proc = subprocess.Popen(
        [
            str(cli),
            "backfill",
            "--db",
            db_url,
            "--rules",
            str(pack_file),
            "--wait",
            "--batch-size",
            "10",
            "--pause-ms",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    seen: Job | None = None
    try:
        while time.monotonic() < deadline:
            with services.engine.connect() as conn:
                found = list_jobs(conn, kind=JobKind.BACKFILL.value, limit=1)
            if found and found[0].done > 0:
                seen = found[0]
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert seen is not None, "the backfill never reported progress"
    with services.engine.connect() as conn:
        killed = find_job(conn, seen.id)
    assert killed is not None and killed.state == "running" and 0 < killed.done < killed.total == 3000
    assert killed.checkpoint == killed.done  # pks are dense here: the checkpoint is the last pk processed
    # The open batch was rolled back: the stats are exactly those of the committed batches.
    assert_rollups_exact(services)
    services.engine.dispose()

    resumed = make_services(db_url, start_jobs=False, rules_file=pack_file)
    ended = runner.run_until_idle(resumed)  # the owner's pid is gone: its job is taken over at once
    assert [(j.id, j.state, j.total, j.done) for j in ended] == [(seen.id, "done", 3000, 3000)]
    assert ended[0].params["changed"] == 1000  # each downstream_closed event rewritten once; successes never
    assert_classified_by(resumed)
    assert_rollups_exact(resumed)
    with resumed.engine.connect() as conn:
        versions = dict(
            conn.execute(
                select(events.c.failure_kind, events.c.rule_version).where(events.c.status == "failure").distinct()
            ).all()
        )
    assert versions["proxy_closed"] == "ops@2026-12-01" and "downstream_closed" not in versions
    resumed.engine.dispose()


def test_claims_are_exclusive_and_stale_jobs_are_resumed(quiet: Services) -> None:
    ingest(quiet, mixed_events(6))
    with quiet.engine.begin() as conn:
        job = enqueue(conn, JobKind.BACKFILL, rule_version=quiet.pipeline.classifier.version)
        rebuild = enqueue(conn, JobKind.ROLLUP_REBUILD)
    alive_owner = f"{runner.make_owner().rsplit('/', 1)[0]}/peer"  # this process: certainly alive
    won = [runner.claim(quiet, job, owner) for owner in (alive_owner, runner.make_owner())]
    assert won[0] is not None and won[1] is None
    # While the backfill runs, the rebuild (which rewrites the same rollups) cannot start anywhere.
    assert runner.claim(quiet, rebuild, runner.make_owner()) is None
    with quiet.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(heartbeat_at=now_ms() - 120_000))
    taker = runner.make_owner()
    with quiet.engine.connect() as conn:
        stale = find_job(conn, job.id)
    assert stale is not None
    taken = runner.claim(quiet, stale, taker, stale_s=30)
    assert taken is not None and taken.owner == taker
    finished = runner.run_job(quiet, taken, taker)
    assert finished.state == "done" and finished.done == 6
    # The presumed-dead owner wakes up: its next batch finds the fence changed and stops.
    with pytest.raises(runner.JobLost):
        runner._batch(quiet, runner.HANDLERS["backfill"], job.id, alive_owner, 10)
    assert runner.claim(quiet, rebuild, runner.make_owner()) is not None


def test_rollup_rebuild_with_concurrent_ingest_equals_a_full_scan(quiet: Services) -> None:
    ingest(quiet, mixed_events(900))
    with quiet.engine.begin() as conn:
        # A database from before rollups: most events are missing from them and a few rows are wrong.
        conn.execute(rollups_table.delete().where(rollups_table.c.failure_class != "none"))
        conn.execute(rollups_table.update().values(count=rollups_table.c["count"] + 5))
        save_state(conn, ROLLUPS_REBUILD_NEEDED, "true")
    job = ensure_rollup_rebuild(quiet.engine)
    assert job is not None and job.kind == "rollup_rebuild"
    assert ensure_rollup_rebuild(quiet.engine) is None  # queued once, however often asked
    result: list[list[Job]] = []
    worker = threading.Thread(target=lambda: result.append(runner.run_until_idle(quiet, batch_size=40, pause_s=0.002)))
    worker.start()
    sent = 0
    while worker.is_alive() or sent < 3:
        ingest(quiet, mixed_events(9, prefix=f"during{sent}-"))
        sent += 1
    worker.join()
    assert [(j.kind, j.state, j.done) for j in result[0]] == [("rollup_rebuild", "done", result[0][0].total)]
    assert result[0][0].total >= 900
    assert_rollups_exact(quiet)
    with quiet.engine.connect() as conn:
        assert find_state(conn, ROLLUPS_REBUILD_NEEDED) == "false"


def test_attribute_rows_rebuild_beside_ingest_while_filters_stay_exact(quiet: Services) -> None:
    """The upgrade path of migration 0004: attribute rows missing, the job folds them in while ingest runs,
    and an attribute filter answers exactly before, during and after (raw events until the rows are ready)."""
    ingest(quiet, mixed_events(900))
    with quiet.engine.begin() as conn:
        conn.execute(rollups_table.delete().where(rollups_table.c.shape == rollup_shapes.ATTRIBUTE_SHAPE))
        save_state(conn, rollup_reads.ATTRIBUTE_ROLLUPS_STATE, "needed")
    job = ensure_rollup_rebuild(quiet.engine)
    assert job is not None and job.params["shapes"] == [rollup_shapes.ATTRIBUTE_SHAPE]
    assert ensure_rollup_rebuild(quiet.engine) is None

    def by_site(conn: Connection) -> tuple[dict[Any, Any], dict[Any, Any]]:
        where = {"attr_name": "site_id", "attr_value": "s2"}
        answered = rollup_reads.aggregate(
            conn, tenant="default", start=0, end=now_ms() + 1, by=("status",), where=where
        )
        scanned = rollup_reads.aggregate_events(
            conn, tenant="default", start=0, end=now_ms() + 1, by=("status",), where=where
        )
        return answered, scanned

    result: list[list[Job]] = []
    worker = threading.Thread(target=lambda: result.append(runner.run_until_idle(quiet, batch_size=40, pause_s=0.002)))
    worker.start()
    sent = 0
    while worker.is_alive() or sent < 3:
        ingest(quiet, mixed_events(9, prefix=f"during{sent}-"))
        with quiet.engine.connect() as conn:
            answered, scanned = by_site(conn)
        assert answered == scanned and answered
        sent += 1
    worker.join()
    assert [(j.kind, j.state) for j in result[0]] == [("rollup_rebuild", "done")]
    assert_rollups_exact(quiet)
    with quiet.engine.connect() as conn:
        assert rollup_reads.attribute_rollups_ready(conn)
        assert find_state(conn, ROLLUPS_REBUILD_NEEDED) != "queued"
        answered, scanned = by_site(conn)
    assert answered == scanned


def test_concurrent_writers_on_shared_rollup_keys_neither_deadlock_nor_lose_counts(quiet: Services) -> None:
    """Two threads ingest batches that hit the same rollup rows in different orders; every count lands."""
    batches = [mixed_events(300, prefix=f"w{w}b{b}-")[:: 1 if w else -1] for w in range(2) for b in range(4)]
    errors: list[BaseException] = []

    def write(mine: list[list[dict[str, Any]]]) -> None:
        try:
            for batch in mine:
                ingest(quiet, batch)
        except BaseException as exc:  # surfaced below with its type
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batches[w::2],)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with quiet.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == 8 * 300
    assert_rollups_exact(quiet)


def test_rebuild_request_on_an_empty_database_needs_no_job(quiet: Services) -> None:
    with quiet.engine.begin() as conn:
        save_state(conn, ROLLUPS_REBUILD_NEEDED, "true")
    assert ensure_rollup_rebuild(quiet.engine) is None
    with quiet.engine.connect() as conn:
        assert find_state(conn, ROLLUPS_REBUILD_NEEDED) == "false"
        assert list_jobs(conn) == []


def test_background_runner_works_an_activation_without_blocking_the_api(quiet: Services) -> None:
    ingest(quiet, mixed_events(60))
    stop = runner.start_runner(quiet, poll_interval_s=0.05)
    try:
        with TestClient(create_app(quiet)) as client:
            job = client.post("/api/v1/rules/activate", json=OPS_PACK).json()["backfill"]
            deadline = time.monotonic() + 30
            state = job["state"]
            while state != "done" and time.monotonic() < deadline:
                assert client.get("/healthz").status_code == 200
                state = client.get(f"/api/v1/jobs/{job['id']}").json()["state"]
                time.sleep(0.02)
            assert state == "done"
            summary = client.get("/api/v1/stats/summary").json()
            assert (summary["client_abort_count"], summary["service_failure_count"]) == (0, 40)
    finally:
        stop()
    assert_rollups_exact(quiet)


def test_rows_classified_before_the_swap_but_stored_after_the_claim_are_caught(quiet: Services) -> None:
    ingest(quiet, mixed_events(12))
    old_classifier = quiet.pipeline.classifier
    job = activation.activate(quiet, activation.parse_pack(OPS_PACK), OPS_PACK).job
    assert job is not None
    owner = runner.make_owner()
    claimed = runner.claim(quiet, job, owner)
    assert claimed is not None and claimed.total == 12
    # A slow ingest batch: classified with the old rules, committed after the job fixed its end.
    late = Pipeline(quiet.engine, quiet.settings, old_classifier, quiet.fingerprinters)
    assert late.ingest(mixed_events(6, prefix="late"), tenant="default").accepted == 6
    finished = runner.run_job(quiet, claimed, owner, batch_size=5)
    assert (finished.state, finished.done, finished.total) == ("done", 18, 18)
    assert_classified_by(quiet)
    assert_rollups_exact(quiet)


def test_a_second_process_adopts_the_activated_pack_and_can_work_its_backfill(db_url: str) -> None:
    """Two services on one database stand for two replicas: one activates, the other's runner follows."""
    first = make_services(db_url, start_jobs=False)
    second = make_services(db_url, start_jobs=False)
    try:
        ingest(first, mixed_events(60))
        before = second.pipeline.classifier.version
        job = activation.activate(first, activation.parse_pack(OPS_PACK), OPS_PACK).job
        assert job is not None and job.rule_version == NEW_VERSION
        assert runner.HANDLERS["backfill"].blocked(job, second) is not None  # still on the old rules
        stop = runner.start_runner(second, poll_interval_s=0.05)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with second.engine.connect() as conn:
                    found = find_job(conn, job.id)
                if found is not None and found.state == "done":
                    break
                time.sleep(0.05)
        finally:
            stop()
        assert before != NEW_VERSION and second.pipeline.classifier.version == NEW_VERSION
        assert found is not None and found.state == "done", "only the follower's runner could have worked it"
        row = second.pipeline.ingest([event(id="late", error_message="downstream_closed")], tenant="default")
        assert row.accepted == 1
        with second.engine.connect() as conn:
            kind = conn.execute(select(events.c.failure_kind).where(events.c.id == "late")).scalar()
        assert kind == "proxy_closed", "the follower classifies new events with the adopted pack"
        assert not activation.follow_activation(second), "nothing new to adopt"
        assert_classified_by(second)
        assert_rollups_exact(second)
    finally:
        first.engine.dispose()
        second.engine.dispose()
