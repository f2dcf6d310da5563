"""Three replicas on one PostgreSQL behind HAProxy: ingest through kill -9 loses and doubles nothing, a killed lease
holder's duties move within 15 s and run once per period, a pack activated on one replica classifies on another.

Run by `make scale-test` (a step of .ci/run), not by `make test`. FAULTLENS_SCALE_SECONDS shortens the ingest
(60 s by default).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from faultlens.store import duty_runs, leases
from faultlens.store.db import create_db_engine
from faultlens.store.tables import duty_runs as duty_runs_table
from faultlens.store.tables import events
from faultlens.timeutil import now_ms
from tests.conftest import missing_service, scratch_postgres
from tests.scale.cluster import FAST_ENV, HAPROXY, Cluster, Replica, cli, cluster, create_key, wait_for
from tests.scale.conftest import MEASURED
from tests.scale.load import IngestLoad, run_ingest

SECONDS = float(os.environ.get("FAULTLENS_SCALE_SECONDS", "60"))
SENDERS = 4
TENANT = "scale"
RULES_TENANT = "scale-rules"
EVALUATOR = "alert_evaluator"
LEASE_TTL_S = float(FAST_ENV["FAULTLENS_LEASE_TTL_S"])
# Duties woken on demand (alert_sender, after an evaluation wrote notifications) may run more often than their
# interval; these run only on their clock, so two runs in one interval would be two holders or a broken lease.
CLOCKED = {
    EVALUATOR: float(FAST_ENV["FAULTLENS_ALERT_EVAL_INTERVAL_S"]),
    "task_sync": float(FAST_ENV["FAULTLENS_TASK_SYNC_INTERVAL_S"]),
}


@dataclass
class Story:
    """What happened during the ingest minute."""

    load: IngestLoad = field(default_factory=IngestLoad)
    started_ms: int = 0
    ended_ms: int = 0
    restarted: list[int] = field(default_factory=list)
    holder_killed: str = ""
    holder_after: str = ""
    # pid -> when it was killed: a run its process had not finished ended then.
    killed_ms: dict[int, int] = field(default_factory=dict)
    takeover_s: float = 0.0
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    if HAPROXY is None:
        missing_service("haproxy is not installed (apt-get install haproxy)")
    with scratch_postgres("faultlens_scale") as url:
        cli(url, "migrate")
        yield url


@pytest.fixture(scope="module")
def engine(database: str) -> Iterator[Engine]:
    eng = create_db_engine(database)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def keys(database: str) -> dict[str, str]:
    """Created before any replica starts, so no replica ever answers anonymously."""
    return {
        TENANT: create_key(database, TENANT, "ingest", "read"),
        RULES_TENANT: create_key(database, RULES_TENANT, "ingest", "read", "admin"),
    }


@pytest.fixture(scope="module")
def running(database: str, keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # No task store is configured: the Redis prefix is this run's own, so task sync reads nothing of anyone's.
    env = {"FAULTLENS_REDIS_PREFIX": f"faultlens-scale-{uuid.uuid4().hex[:8]}:tasks"}
    with cluster(database, tmp_path_factory.mktemp("scale"), replicas=3, env=env) as c:
        yield c


def _holder_pid(holder: str) -> int:
    """Leases are held as host/pid/token."""
    return int(holder.split("/")[1])


def _live_holder(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        lease = leases.find_lease(conn, name)
    return lease.holder if lease is not None and lease.expires_at > now_ms() else None


def _chaos(c: Cluster, engine: Engine, story: Story, started: float) -> None:
    """At a quarter of the ingest a replica is killed and restarted; at half, the alert evaluator's holder is."""
    try:
        at_quarter = started + SECONDS * 0.25
        threading.Event().wait(max(0.0, at_quarter - time.monotonic()))
        first = c.replicas[1]
        first.kill9()
        story.killed_ms[first.pid] = now_ms()
        first.restart()
        story.restarted.append(first.number)

        threading.Event().wait(max(0.0, started + SECONDS * 0.5 - time.monotonic()))
        holder = wait_for(lambda: _live_holder(engine, EVALUATOR), timeout_s=30, what="a holder of alert_evaluator")
        victim = c.by_pid(_holder_pid(holder))
        assert victim is not None, f"the lease holder {holder} is none of the replicas"
        victim.kill9()
        killed = time.monotonic()
        story.killed_ms[victim.pid], story.holder_killed = now_ms(), holder

        def taken_over() -> str | None:
            now = _live_holder(engine, EVALUATOR)
            return now if now is not None and _holder_pid(now) != _holder_pid(holder) else None

        story.holder_after = wait_for(taken_over, timeout_s=60, what="another replica holding alert_evaluator")
        story.takeover_s = time.monotonic() - killed
        victim.restart()
        story.restarted.append(victim.number)
    except BaseException as exc:  # handed to the test thread, which fails with it
        story.errors.append(exc)


@pytest.fixture(scope="module")
def story(running: Cluster, engine: Engine, keys: dict[str, str]) -> Story:
    """4 senders ingest through HAProxy for SECONDS while replicas are killed with kill -9 and restarted."""
    s = Story(started_ms=now_ms())
    started = time.monotonic()
    chaos = threading.Thread(target=_chaos, args=(running, engine, s, started), name="scale-chaos")
    chaos.start()
    s.load = run_ingest(running.url, keys[TENANT], senders=SENDERS, seconds=SECONDS)
    chaos.join(120)
    s.ended_ms = now_ms()
    if s.errors:
        raise s.errors[0]
    assert not chaos.is_alive(), "the kills did not finish"
    load = s.load
    MEASURED["ingest"] = (
        f"{len(load.acknowledged)} events acknowledged in {load.seconds:.1f} s ({load.rate:.0f}/s) by {SENDERS} "
        f"senders through HAProxy; {load.retries} retried batches {dict(load.retried_on)}; replicas restarted "
        f"after kill -9: {s.restarted}"
    )
    return s


def test_every_acknowledged_event_is_stored_exactly_once(story: Story, engine: Engine) -> None:
    load = story.load
    assert load.acknowledged, "nothing was acknowledged"
    assert not load.refused, f"answers that were neither 200 nor retryable: {dict(load.refused)}"
    assert load.rejected == 0 and load.abandoned == 0
    with engine.connect() as conn:
        rows, distinct = conn.execute(
            select(func.count(), func.count(events.c.id.distinct())).where(events.c.tenant == TENANT)
        ).one()
        stored = set(conn.execute(select(events.c.id).where(events.c.tenant == TENANT)).scalars())
    lost = load.acknowledged - stored
    MEASURED["events"] = (
        f"acknowledged {len(load.acknowledged)}, rows {rows}, distinct ids {distinct}, lost {len(lost)}"
    )
    assert len(lost) == 0, f"{len(lost)} acknowledged events are not stored, e.g. {sorted(lost)[:5]}"
    assert rows == distinct, f"{rows - distinct} duplicate rows"
    # A batch cut by a kill may have been stored without its answer arriving: stored, never acknowledged, still once.
    assert stored >= load.acknowledged


def test_the_killed_lease_holder_s_duty_is_held_by_another_replica_within_15_s(story: Story) -> None:
    MEASURED["lease takeover"] = (
        f"{story.takeover_s:.2f} s after kill -9 of the alert_evaluator holder (lease ttl {LEASE_TTL_S:g} s)"
    )
    assert _holder_pid(story.holder_after) != _holder_pid(story.holder_killed)
    assert story.takeover_s < 15


def _runs(engine: Engine, since: int, until: int) -> dict[str, list[tuple[str, int, int | None]]]:
    """Duty name -> its runs (holder, started_at, finished_at) that started in [since, until), in start order."""
    found: dict[str, list[tuple[str, int, int | None]]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(duty_runs_table.c.name, duty_runs_table.c.holder, duty_runs_table.c.started_at)
            .add_columns(duty_runs_table.c.finished_at)
            .where(duty_runs_table.c.started_at >= since, duty_runs_table.c.started_at < until)
            .order_by(duty_runs_table.c.started_at)
        )
        for name, holder, started_at, finished_at in rows:
            found.setdefault(name, []).append((holder, started_at, finished_at))
    return found


def test_each_periodic_duty_runs_once_per_period_across_replicas(story: Story, engine: Engine) -> None:
    runs = _runs(engine, story.started_ms, story.ended_ms)
    assert EVALUATOR in runs, f"no run of {EVALUATOR} recorded in duty_runs (recorded: {sorted(runs)})"
    for name, done in sorted(runs.items()):
        interval_ms = int(CLOCKED.get(name, 1.0) * 1000)
        # Counted per period: each window of one interval holds at most one run (clocked duties) and one holder.
        windows_with_two = holders_in_one_window = 0
        with engine.connect() as conn:
            for since in range(story.started_ms, story.ended_ms, interval_ms):
                per_holder = duty_runs.count_runs(conn, name=name, since=since, until=since + interval_ms)
                windows_with_two += sum(per_holder.values()) > 1
                holders_in_one_window += len(per_holder) > 1

        # Two runs by different holders never overlap in time (a kill -9 leaves its run unfinished: it ended then).
        def ended(run: tuple[str, int, int | None]) -> int:
            holder, _, finished_at = run
            return finished_at if finished_at is not None else story.killed_ms.get(_holder_pid(holder), story.ended_ms)

        overlaps = [(a, b) for a, b in itertools.pairwise(done) if a[0] != b[0] and b[1] < ended(a)]
        gaps = [b[1] - a[1] for a, b in itertools.pairwise(done)]
        holders = len({h for h, _, _ in done})
        MEASURED[f"runs of {name} (duty_runs)"] = (
            f"{len(done)} by {holders} holders in {(story.ended_ms - story.started_ms) / 1000:.0f} s, "
            f"{windows_with_two} periods of {interval_ms} ms with two runs, {holders_in_one_window} with two holders, "
            f"longest gap {max(gaps, default=0) / 1000:.1f} s"
        )
        assert holders_in_one_window == 0, f"{name}: two holders ran in one period"
        assert not overlaps, f"{name}: runs of two holders overlap: {overlaps[:3]}"
        if name in CLOCKED:
            assert windows_with_two == 0, f"{name} ran twice in one period ({windows_with_two} times)"
            # It kept running: the only long gap is the takeover after the kill (ttl plus a period or two).
            assert max(gaps) < 15_000, f"{name} did not run for {max(gaps) / 1000:.1f} s"


PACK_KIND = "scale_marker"


def _pack(marker: str) -> dict[str, Any]:
    return {
        "id": f"scale-marker@{time.strftime('%Y-%m-%d', time.gmtime())}",
        "rules": [
            {
                "name": "scale_marker",
                "match": {"text": [marker]},
                "failure_kind": PACK_KIND,
                "failure_class": "service_failure",
                "category": "dependency_error",
                "examples": [{"error_message": f"{marker} refused the order"}],
            }
        ],
    }


def _classified_on(replica: Replica, key: str, marker: str) -> str:
    """Post a new event naming `marker` straight to `replica`; the failure_kind it was stored with."""
    headers = {"Authorization": f"Bearer {key}"}
    event_id = f"marker-{uuid.uuid4().hex}"
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = [{"id": event_id, "source": "scale-rules", "status": "failure", "occurred_at": at, "error_message": marker}]
    with httpx.Client(base_url=replica.url, timeout=10, headers=headers) as client:
        posted = client.post("/api/v1/events", json=body)
        assert posted.status_code == 200, posted.text
        assert posted.json()["accepted"] == 1, posted.text
        read = client.get(f"/api/v1/events/{event_id}")
        assert read.status_code == 200, read.text
        return str(read.json()["failure_kind"])


def test_a_pack_activated_through_replica_1_classifies_on_replica_3_within_5_s(
    running: Cluster, keys: dict[str, str]
) -> None:
    first, third = running.replicas[0], running.replicas[2]
    key = keys[RULES_TENANT]
    marker = f"scalemarker{uuid.uuid4().hex[:10]}"
    assert _classified_on(third, key, marker) != PACK_KIND, "the marker classifies before the pack is active"
    activated = httpx.post(
        f"{first.url}/api/v1/rules/activate",
        json=_pack(marker),
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert activated.status_code == 200, activated.text
    since = time.monotonic()
    wait_for(
        lambda: _classified_on(third, key, marker) == PACK_KIND,
        timeout_s=30,
        what="replica 3 classifying with the pack activated on replica 1",
        every_s=0.1,
    )
    followed_s = time.monotonic() - since
    MEASURED["rule pack follow"] = f"activated on replica 1, classified on replica 3 after {followed_s:.2f} s"
    assert followed_s < 5
