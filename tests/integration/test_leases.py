"""Leases on real databases: one holder at a time, renewal, hand-over on release, takeover after expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from faultlens.jobs.duty import Duty, held_leases
from faultlens.services import Services
from faultlens.store import leases
from tests.conftest import make_services


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    s: Services = make_services(db_url, start_jobs=False)
    yield s.engine
    s.engine.dispose()


def test_one_holder_until_it_expires(engine: Engine) -> None:
    with engine.begin() as conn:
        assert leases.acquire(conn, name="d", holder="a", ttl_ms=1000, now=10_000)
        assert not leases.acquire(conn, name="d", holder="b", ttl_ms=1000, now=10_500)
        assert leases.acquire(conn, name="d", holder="a", ttl_ms=1000, now=10_900)  # renewal
        first = leases.find_lease(conn, "d")
        assert first is not None and first.acquired_at == 10_000 and first.expires_at == 11_900
        assert not leases.acquire(conn, name="d", holder="b", ttl_ms=1000, now=11_800)
        assert leases.acquire(conn, name="d", holder="b", ttl_ms=1000, now=12_000)  # a's has expired
        taken = leases.find_lease(conn, "d")
        assert taken is not None and taken.holder == "b" and taken.acquired_at == 12_000
        assert not leases.release(conn, name="d", holder="a")  # no longer a's to give
        assert leases.release(conn, name="d", holder="b")
        assert leases.find_lease(conn, "d") is None


def test_two_processes_racing_for_an_expired_lease_end_with_one_holder(engine: Engine) -> None:
    with engine.begin() as conn:
        leases.acquire(conn, name="race", holder="dead", ttl_ms=1, now=1)
    wins: list[str] = []
    barrier = threading.Barrier(4)

    def race(holder: str) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                with engine.begin() as conn:
                    if leases.acquire(conn, name="race", holder=holder, ttl_ms=60_000, now=int(time.time() * 1000)):
                        wins.append(holder)
                return
            except Exception:  # SQLite: a writer busy beyond its timeout retries
                time.sleep(0.05)

    threads = [threading.Thread(target=race, args=(f"h{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(wins) == 1, wins


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_duty_runs_on_one_process_and_moves_when_its_holder_stops_or_dies(engine: Engine) -> None:
    runs = {"a": 0, "b": 0}

    def work(name: str) -> None:
        runs[name] += 1

    a = Duty(engine, "alert_evaluator", lambda: work("a"), interval_s=0.05, lease_ttl_s=0.6, holder="host/1/a")
    b = Duty(engine, "alert_evaluator", lambda: work("b"), interval_s=0.05, lease_ttl_s=0.6, holder="host/2/b")
    a.start()
    _wait(lambda: runs["a"] >= 1)
    b.start()
    _wait(lambda: runs["a"] >= 5)
    assert runs["b"] == 0 and a.held and not b.held
    a.stop()  # graceful: the lease is released, b takes it at its next period
    _wait(lambda: runs["b"] >= 3)
    assert b.held
    # b "dies": its thread stops without releasing; a new process takes over once the lease expires.
    b._stop.set()
    b._wake.set()
    assert b._thread is not None
    b._thread.join(5)
    died_at = time.monotonic()
    c = Duty(engine, "alert_evaluator", lambda: work("a"), interval_s=0.05, lease_ttl_s=0.6, holder="host/3/c")
    before = runs["a"]
    c.start()
    _wait(lambda: runs["a"] > before)
    assert time.monotonic() - died_at >= 0.3  # not before b's lease ran out
    with engine.connect() as conn:
        found = leases.find_lease(conn, "alert_evaluator")
    assert found is not None and found.holder == "host/3/c"
    assert held_leases()["alert_evaluator"] is True
    c.stop()
    assert held_leases()["alert_evaluator"] is False
    with engine.connect() as conn:
        assert leases.find_lease(conn, "alert_evaluator") is None  # released on a graceful stop


def test_a_standby_replica_shows_no_stalled_loop_for_a_duty_it_does_not_hold(engine: Engine) -> None:
    """Two processes' metrics: the holder shows the duty's loop and lease; the standby shows lease 0 and no loop, so
    the stalled-loop alert never fires on it; when the lease moves, so does the loop."""
    from prometheus_client import generate_latest

    from faultlens.metrics import Metrics

    holder_metrics, standby_metrics = Metrics(), Metrics()
    a = Duty(engine, "task_sync", lambda: None, interval_s=0.05, lease_ttl_s=0.6, holder="host/1/a")
    b = Duty(engine, "task_sync", lambda: None, interval_s=0.05, lease_ttl_s=0.6, holder="host/2/b")
    a.on_held = lambda held: holder_metrics.duty_held("task_sync", held)
    b.on_held = lambda held: standby_metrics.duty_held("task_sync", held)
    assert a.run_once() is True and b.run_once() is False

    def text(m: Metrics) -> str:
        return generate_latest(m.registry).decode()

    assert 'faultlens_background_loop_lag_seconds{loop="task_sync"}' in text(holder_metrics)
    assert 'faultlens_lease_held{lease="task_sync"} 1.0' in text(holder_metrics)
    assert 'loop="task_sync"' not in text(standby_metrics).replace('lease="task_sync"', "")
    assert 'faultlens_lease_held{lease="task_sync"} 0.0' in text(standby_metrics)
    a.stop()  # releases: the standby takes it over at its next period
    assert b.run_once() is True
    assert 'faultlens_background_loop_lag_seconds{loop="task_sync"}' in text(standby_metrics)
    assert 'faultlens_lease_held{lease="task_sync"} 0.0' in text(holder_metrics)
    b.stop()
