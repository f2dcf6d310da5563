"""Replicas sharing one database: duties recorded and run once per period, the task sync as a duty, archives in the
database, rule activations and fingerprint templates reaching every process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis
from sqlalchemy import Engine, func, select, text

from faultlens.connectors import native, registry, retention, sync
from faultlens.fingerprinters import TenantFingerprinters, state_key, version_key
from faultlens.jobs.duty import KEEP_RUNS_MS, Duty
from faultlens.rulepacks import activation
from faultlens.rulepacks.follower import start_rule_follower
from faultlens.services import Services, load_state, save_fingerprinter_state, swap_fingerprinter_state
from faultlens.store import duty_runs, leases
from faultlens.store.tables import duty_runs as duty_runs_table
from faultlens.store.tables import events
from faultlens.store.task_archive import list_archived
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.helpers import event
from tests.integration.task_support import build_task_services, task_redis

__all__ = ["task_redis"]  # fixture, imported for pytest

T = TypeVar("T")
DAY = 86_400_000


def _poll(check: Callable[[], T], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() >= deadline:
            assert found, f"timed out after {timeout}s waiting for {what} (last value: {found!r})"
            return found
        time.sleep(0.02)


@pytest.fixture
def replicas(db_url: str) -> Iterator[tuple[Services, Services]]:
    a = make_services(db_url, start_jobs=False)
    b = make_services(db_url, start_jobs=False)
    yield a, b
    a.engine.dispose()
    b.engine.dispose()


def _runs(engine: Engine, name: str) -> list[tuple[str, bool | None, bool]]:
    """(holder, ok, finished) of every recorded run of `name`, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(duty_runs_table.c.holder, duty_runs_table.c.ok, duty_runs_table.c.finished_at)
            .where(duty_runs_table.c.name == name)
            .order_by(duty_runs_table.c.pk)
        )
        return [(holder, ok, finished is not None) for holder, ok, finished in rows]


# --- duties -----------------------------------------------------------------------------------------------------


def test_every_run_is_recorded_and_old_runs_are_pruned(replicas: tuple[Services, Services]) -> None:
    engine = replicas[0].engine
    outcomes: list[Callable[[], bool | None]] = [lambda: None, lambda: False, lambda: 1 // 0 > 0]

    def work() -> bool | None:
        return outcomes.pop(0)()

    with engine.begin() as conn:  # a run of last week, and one of yesterday
        duty_runs.record_start(conn, name="task_sync", holder="gone/1/x", started_at=now_ms() - KEEP_RUNS_MS - 1)
        duty_runs.record_start(conn, name="task_sync", holder="gone/1/x", started_at=now_ms() - DAY)
    duty = Duty(engine, "task_sync", work, interval_s=60, lease_ttl_s=5, holder="host/1/a")
    assert [duty.run_once(), duty.run_once(), duty.run_once()] == [True, False, False]
    # The first run pruned last week's; yesterday's stays; the failed ones are recorded as such.
    assert _runs(engine, "task_sync") == [
        ("gone/1/x", None, False),
        ("host/1/a", True, True),
        ("host/1/a", False, True),
        ("host/1/a", False, True),
    ]
    with engine.connect() as conn:
        assert duty_runs.count_runs(conn, name="task_sync", since=now_ms() - 60_000, until=now_ms() + 1) == {
            "host/1/a": 3
        }
        assert duty_runs.count_runs(conn, name="task_sync", since=0, until=now_ms() + 1) == {
            "gone/1/x": 1,
            "host/1/a": 3,
        }
    with engine.begin() as conn:
        duty_runs.record_start(conn, name="task_sync", holder="gone/1/x", started_at=now_ms() - KEEP_RUNS_MS - 1)
    outcomes.append(lambda: None)
    assert duty.run_once()
    assert len(_runs(engine, "task_sync")) == 6  # pruned at most once an hour: the old run stays until then
    duty.stop()


def test_two_processes_run_a_duty_once_per_period_between_them(replicas: tuple[Services, Services]) -> None:
    a_svc, b_svc = replicas
    interval = 0.25
    a = Duty(a_svc.engine, "task_sync", lambda: None, interval_s=interval, lease_ttl_s=1.5, holder="host/1/a")
    b = Duty(b_svc.engine, "task_sync", lambda: None, interval_s=interval, lease_ttl_s=1.5, holder="host/2/b")
    since = now_ms()
    started = time.monotonic()
    a.start()
    b.start()

    def count() -> dict[str, int]:
        with a_svc.engine.connect() as conn:
            return duty_runs.count_runs(conn, name="task_sync", since=since, until=now_ms() + 1)

    try:
        _poll(lambda: sum(count().values()) >= 8, timeout=30, what="8 runs")
        first = next(d for d in (a, b) if d.held)
        first.stop()  # graceful: the other takes the lease at its next period
        _poll(lambda: len(count()) == 2 and min(count().values()) >= 4, timeout=30, what="4 runs by the other")
    finally:
        a.stop()
        b.stop()
    elapsed = time.monotonic() - started
    runs = count()
    # Never both in one period: at most one run per interval of the whole time, plus one at the hand-over.
    assert sum(runs.values()) <= elapsed / interval + 2, (runs, elapsed)
    assert set(runs) == {"host/1/a", "host/2/b"}


def _events(services: Services) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)


def test_the_task_sync_runs_on_the_lease_holder_and_moves_without_resending(
    db_url: str, tmp_path: Path, task_redis: redis.Redis
) -> None:
    prefix = f"fltest:{uuid.uuid4().hex[:8]}"
    one = build_task_services(db_url, tmp_path, redis_prefix=prefix, lease_ttl_s=1.5)
    two = build_task_services(db_url, tmp_path, redis_prefix=prefix, lease_ttl_s=1.5)
    for i in range(3):
        native.record_failure(task_redis, prefix=prefix, task_id=f"t{i}", task_type="embedding", error_message="boom")
    since = now_ms()
    stops = {"one": sync.start_sync(one, interval_s=0.2), "two": sync.start_sync(two, interval_s=0.2)}
    try:
        _poll(lambda: _events(one) == 3, timeout=30, what="3 synced events")

        def held() -> dict[str, float | None]:
            return {
                name: svc.metrics.registry.get_sample_value("faultlens_lease_held", {"lease": "task_sync"})
                for name, svc in (("one", one), ("two", two))
            }

        # Exactly one process holds it, and says so.
        _poll(lambda: sorted(map(str, held().values())) == ["0.0", "1.0"], timeout=10, what="one holder")
        holder = next(name for name, v in held().items() if v == 1.0)
        with one.engine.connect() as conn:
            runs = duty_runs.count_runs(conn, name="task_sync", since=since, until=now_ms() + 1)
            lease = leases.find_lease(conn, "task_sync")
        assert lease is not None and list(runs) == [lease.holder]  # every round so far by the holder alone
        stops.pop(holder)()
        other = two if holder == "one" else one
        native.record_failure(task_redis, prefix=prefix, task_id="late", task_type="embedding", error_message="boom")
        _poll(lambda: _events(other) == 4, timeout=30, what="the 4th event, synced by the other process")
        with other.engine.connect() as conn:
            taken = leases.find_lease(conn, "task_sync")
        assert taken is not None and taken.holder != lease.holder
        assert other.metrics.registry.get_sample_value("faultlens_lease_held", {"lease": "task_sync"}) == 1.0
        # The new holder asked the database what it had: nothing was ingested twice.
        accepted = other.metrics.registry.get_sample_value("faultlens_ingest_events_total", {"outcome": "accepted"})
        duplicates = other.metrics.registry.get_sample_value("faultlens_ingest_events_total", {"outcome": "duplicate"})
        assert (accepted, duplicates) == (1.0, 0.0)
    finally:
        for stop in stops.values():
            stop()
        one.engine.dispose()
        two.engine.dispose()
        registry.close_clients()
    assert _events(one) == 4


# --- archives ---------------------------------------------------------------------------------------------------


def test_archives_go_to_the_database_on_postgresql(postgres_url: str, tmp_path: Path, task_redis: redis.Redis) -> None:
    svc = build_task_services(postgres_url, tmp_path)
    prefix = svc.settings.redis_prefix
    old = now_ms() - 40 * DAY
    day = datetime.fromtimestamp(old / 1000, tz=UTC).strftime("%Y-%m-%d")
    for task_id, at in (("old-1", old), ("old-2", old + 1000), ("new-1", now_ms() - DAY)):
        native.record_failure(
            task_redis, prefix=prefix, task_id=task_id, task_type="embedding", error_message="boom", failed_at_ms=at
        )
    try:
        # The table is gone: the archive cannot be written, so nothing may be deleted.
        with svc.engine.begin() as conn:
            conn.execute(text("ALTER TABLE task_archive RENAME TO task_archive_away"))
        with pytest.raises(Exception, match="task_archive"):
            retention.archive_failed_tasks(svc, older_than_days=30, stores=["native"])
        assert task_redis.zcard(native.failed_key(prefix)) == 3
        with svc.engine.begin() as conn:
            conn.execute(text("ALTER TABLE task_archive_away RENAME TO task_archive"))

        result = retention.archive_failed_tasks(svc, older_than_days=30, stores=["native"])
        assert (result.archived, result.deleted, result.archived_to, result.days, result.files) == (
            2,
            2,
            "database",
            [day],
            [],
        )
        with svc.engine.connect() as conn:
            archived = list_archived(conn, tenant="default", day=day)
            assert list_archived(conn, tenant="other", day=day) == []
        assert [(a.store, a.task_key, a.record["task_id"], a.record["error_message"]) for a in archived] == [
            ("native", "native:old-2", "old-2", "boom"),
            ("native", "native:old-1", "old-1", "boom"),
        ]
        assert all(a.record["archived_at"] and a.record["traceback"] is not None for a in archived)
        assert task_redis.zrange(native.failed_key(prefix), 0, -1) == [b"new-1"]
        assert not svc.settings.task_archive_dir.exists()  # no replica's disk
    finally:
        svc.engine.dispose()
        registry.close_clients()


def test_archives_go_to_the_directory_when_configured_so(
    postgres_url: str, tmp_path: Path, task_redis: redis.Redis
) -> None:
    svc = build_task_services(postgres_url, tmp_path, task_archive_to="directory")
    prefix = svc.settings.redis_prefix
    native.record_failure(
        task_redis, prefix=prefix, task_id="old", task_type="x", error_message="boom", failed_at_ms=now_ms() - 40 * DAY
    )
    try:
        result = retention.archive_failed_tasks(svc, older_than_days=30, stores=["native"])
        assert (result.archived_to, len(result.files)) == ("directory", 1)
        lines = Path(result.files[0]).read_text().splitlines()
        assert [orjson.loads(line)["task_id"] for line in lines] == ["old"]
    finally:
        svc.engine.dispose()
        registry.close_clients()


# --- rule activations -------------------------------------------------------------------------------------------

TENANT_PACK: dict[str, Any] = {
    "id": "replicas@2026-12-06",
    "rules": [
        {
            "name": "upstream_is_theirs",
            "match": {"text": ["failed_contact_upstream"]},
            "failure_kind": "upstream_refused",
            "failure_class": "client_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "failed_contact_upstream"}],
        }
    ],
}


def test_a_tenant_activation_reaches_another_process_within_5_s(replicas: tuple[Services, Services]) -> None:
    a, b = replicas
    stop = start_rule_follower(b)  # every process runs one (background.start_all), at the default interval
    try:
        result = activation.activate(a, activation.parse_pack(TENANT_PACK), TENANT_PACK, tenant="globex")
        activated = time.monotonic()
        _poll(
            lambda: b.classifier_for("globex").version == result.active_version,
            timeout=5.0,
            what="the other process to adopt the tenant's pack",
        )
        assert time.monotonic() - activated < 5.0
    finally:
        stop()
    ingested = b.pipeline.ingest(
        [
            event(id="u1", error_message="failed_contact_upstream"),
            event(id="u2", error_message="failed_contact_upstream"),
        ],
        tenant="globex",
    )
    b.pipeline.ingest([event(id="u1", error_message="failed_contact_upstream")], tenant="acme")
    assert ingested.accepted == 2
    with b.engine.connect() as conn:
        kinds = dict(conn.execute(select(events.c.tenant, events.c.failure_kind).where(events.c.id == "u1")).all())
    assert kinds["globex"] == "upstream_refused" and kinds["acme"] != "upstream_refused"


# --- fingerprint templates --------------------------------------------------------------------------------------

MISSING = "user {} not found in directory eu-west"
PAYMENT = "payment gateway refused charge for merchant {} region eu order {}"
# Messages whose first words differ: each founds a group of its own.
WORDS = [
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"),
    *("mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey"),
    *("xray", "yankee", "zulu", "amber", "basalt", "cobalt", "dune", "ember", "fjord", "granite", "harbor"),
    *("ivory", "jasper", "kelp", "lagoon", "meadow"),
]


def _registry(services: Services, *, follow_interval_s: float = 0.0) -> TenantFingerprinters:
    """A process's fingerprinters on the database, wired as build_services wires them."""
    engine = services.engine
    return TenantFingerprinters(
        lambda key: load_state(engine, key),
        lambda key, value: save_fingerprinter_state(engine, key, value),
        default_tenant="default",
        version=lambda tenant: load_state(engine, version_key(tenant)),
        follow_interval_s=follow_interval_s,
        swap=lambda key, value, expected: swap_fingerprinter_state(engine, key, value, expected),
    )


def _stored_ids(services: Services, tenant: str) -> set[str]:
    saved = orjson.loads(load_state(services.engine, state_key(tenant)) or "null")
    return {g["id"] for g in saved["groups"]}


def test_two_processes_saving_merge_their_templates(replicas: tuple[Services, Services]) -> None:
    svc = replicas[0]
    one, two = _registry(svc), _registry(svc)
    a, b = one.for_tenant("acme"), two.for_tenant("acme")  # both loaded before either saved
    missing = a.add(MISSING.format("alice")).id
    payment = b.add(PAYMENT.format("m1", 1)).id
    one.save_all()
    two.save_all()  # a last-writer-wins save would drop `missing` here
    assert _stored_ids(svc, "acme") == {missing, payment}
    assert {t.id for t in b.templates()} == {missing, payment}
    assert one.for_tenant("acme") is a  # follows two's save: merged into the same instance
    assert {t.id for t in a.templates()} == {missing, payment}
    # Ids are stable on both sides: new messages of each shape join the group the other process founded.
    for fp in (a, b):
        assert fp.add(MISSING.format("bob")).id == missing
        assert fp.add(PAYMENT.format("m2", 2)).id == payment


def test_concurrent_saves_lose_no_template(replicas: tuple[Services, Services]) -> None:
    one, two = _registry(replicas[0], follow_interval_s=3600), _registry(replicas[1], follow_interval_s=3600)
    learnt: dict[str, set[str]] = {"one": set(), "two": set()}
    start = threading.Barrier(2)

    def learn(name: str, registry: TenantFingerprinters, words: list[str]) -> None:
        fp = registry.for_tenant("acme")
        start.wait(timeout=30)
        for word in words:
            learnt[name].add(fp.add(f"{word} handler crashed while serving request").id)
            registry.save_all()

    threads = [
        threading.Thread(target=learn, args=("one", one, WORDS[::2])),
        threading.Thread(target=learn, args=("two", two, WORDS[1::2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(learnt["one"] | learnt["two"]) == len(WORDS)
    assert _stored_ids(replicas[0], "acme") == learnt["one"] | learnt["two"]
