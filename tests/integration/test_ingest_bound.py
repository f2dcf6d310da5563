"""The ingest bound over a real server, on SQLite and PostgreSQL: with its one ingest place taken by a batch that
cannot write (the database's write lock held outside the server) and its queue full, reads still answer, one more
batch answers 503 server_busy with Retry-After at once, a queued batch past its wait answers the same, and every
batch answered 200 is stored while no refused one is."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from faultlens.api.app import create_app
from faultlens.api.concurrency import IngestSlots
from faultlens.services import Services
from faultlens.store.tables import events as events_table
from tests.conftest import make_services
from tests.helpers import ago, event
from tests.live_server import LiveServer

RETRY_AFTER_S = 2
# Generous: the machine running the suite may be loaded; what matters is that nothing waits for the held write.
READ_BOUND_S = 5.0


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """The database's write path blocked from outside the server: SQLite's one write lock, or PostgreSQL's EXCLUSIVE
    lock on events (readers' ACCESS SHARE still passes; an insert waits)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(url, connect_timeout=5) as pg:
        pg.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


@pytest.fixture
def bound(db_url: str) -> Iterator[tuple[Services, LiveServer, str]]:
    services = make_services(
        db_url,
        start_jobs=False,
        ingest_concurrency=1,
        ingest_queue=1,
        ingest_queue_timeout_s=30,
        busy_retry_after_s=RETRY_AFTER_S,
        api_usage_flush_interval_s=0,
        # The held batch waits on the lock for longer than the test holds it (a write timeout would be a 503 too).
        sqlite_busy_timeout_s=60,
        database_lock_timeout_s=60,
        database_statement_timeout_s=60,
    )
    with LiveServer(create_app(services)) as server:
        yield services, server, db_url
    services.engine.dispose()


def batch(n: int) -> list[dict[str, Any]]:
    return [
        event(id=uuid.uuid4().hex, source="bound", error_message=f"upstream timeout {uuid.uuid4().hex}")
        if i % 3 == 0
        else event(id=uuid.uuid4().hex, source="bound", status="success", occurred_at=ago(minutes=1))
        for i in range(n)
    ]


class Post(threading.Thread):
    """One batch POSTed from its own thread; `response` once answered."""

    def __init__(self, url: str, events: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events = events
        self.response: httpx.Response | None = None

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            self.response = client.post("/api/v1/events", json=self.events)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def stored_ids(services: Services) -> set[str]:
    with services.engine.connect() as conn:
        return {row[0] for row in conn.execute(select(events_table.c.id).where(events_table.c.source == "bound"))}


def slots_of(server: LiveServer) -> IngestSlots:
    app: Any = server.server.config.app
    slots: IngestSlots = app.state.ingest_slots
    return slots


def test_saturated_ingest_leaves_reads_fast_refuses_the_excess_and_loses_nothing(
    bound: tuple[Services, LiveServer, str],
) -> None:
    services, server, url = bound
    slots = slots_of(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = batch(50)
        assert client.post("/api/v1/events", json=first).json()["accepted"] == 50  # no contention: admitted at once
        with writes_held(url):
            held, queued = Post(server.url, batch(200)), Post(server.url, batch(200))
            held.start()
            wait_until(lambda: slots.in_flight == 1, "the first batch holds the ingest place")
            queued.start()
            wait_until(lambda: len(slots.waiters) == 1, "the second batch waits in the queue")

            # Reads do not wait for the ingest place nor for the held write.
            for path in ("/api/v1/stats/summary", "/api/v1/overview", "/api/v1/alerts", "/metrics"):
                started = time.monotonic()
                r = client.get(path)
                elapsed = time.monotonic() - started
                assert r.status_code == 200, (path, r.text)
                assert elapsed < READ_BOUND_S, f"{path} took {elapsed:.2f} s while ingest was saturated"
            summary = client.get("/api/v1/stats/summary", params={"window": "24h"}).json()
            assert summary["total"] == 50

            # One more batch: the place and the queue are taken, so it is refused at once, in the one error body.
            excess = batch(10)
            started = time.monotonic()
            r = client.post("/api/v1/events", json=excess)
            assert time.monotonic() - started < READ_BOUND_S
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == str(RETRY_AFTER_S)
            body = r.json()
            assert set(body) == {"error", "request_id", "correlation_id", "trace_id"}
            assert body["error"]["code"] == "server_busy"
            assert body["error"]["details"] == {"ingest_concurrency": 1, "ingest_queue": 1, "retry_after_s": 2}
            assert r.headers["x-request-id"] == body["request_id"]
            assert held.response is None and queued.response is None  # still waiting on the held write
        held.join(60)
        queued.join(60)
        assert held.response is not None and held.response.status_code == 200, held.response
        assert queued.response is not None and queued.response.status_code == 200, queued.response
        assert held.response.json()["accepted"] == 200 and queued.response.json()["accepted"] == 200
        wait_until(lambda: slots.in_flight == 0 and not slots.waiters, "the ingest place is free again")

        # Everything answered 200 is stored; nothing of the refused batch is.
        ids = stored_ids(services)
        assert ids == {e["id"] for e in first + held.events + queued.events}
        assert not ids & {e["id"] for e in excess}
        assert client.get("/api/v1/stats/summary", params={"window": "24h"}).json()["total"] == 450
        # The refused batch, sent again as a client does after Retry-After, is stored once.
        again = client.post("/api/v1/events", json=excess)
        assert again.status_code == 200 and again.json()["accepted"] == 10
    with services.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events_table)).scalar_one() == 460


def test_a_queued_batch_past_its_wait_answers_503_and_is_not_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wait.db'}"
    services = make_services(
        url,
        start_jobs=False,
        ingest_concurrency=1,
        ingest_queue=4,
        ingest_queue_timeout_s=0.5,
        busy_retry_after_s=RETRY_AFTER_S,
        api_usage_flush_interval_s=0,
        sqlite_busy_timeout_s=60,
    )
    with LiveServer(create_app(services)) as server:
        slots = slots_of(server)
        with writes_held(url):
            held = Post(server.url, batch(20))
            held.start()
            wait_until(lambda: slots.in_flight == 1, "the first batch holds the ingest place")
            late = batch(20)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                started = time.monotonic()
                r = client.post("/api/v1/events", json=late)
            waited = time.monotonic() - started
            assert r.status_code == 503 and r.json()["error"]["code"] == "server_busy", r.text
            assert r.headers["retry-after"] == str(RETRY_AFTER_S)
            assert 0.4 <= waited < READ_BOUND_S + 0.5, f"answered after {waited:.2f} s"
            assert not slots.waiters
        held.join(60)
        assert held.response is not None and held.response.status_code == 200
        assert stored_ids(services) == {e["id"] for e in held.events}
    services.engine.dispose()


def test_otlp_exports_share_the_bound_and_answer_in_their_contract(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'otlp.db'}"
    services = make_services(
        url,
        start_jobs=False,
        ingest_concurrency=1,
        ingest_queue=0,
        busy_retry_after_s=RETRY_AFTER_S,
        api_usage_flush_interval_s=0,
        sqlite_busy_timeout_s=60,
    )
    with LiveServer(create_app(services)) as server:
        slots = slots_of(server)
        with writes_held(url):
            held = Post(server.url, batch(5))
            held.start()
            wait_until(lambda: slots.in_flight == 1, "the batch holds the ingest place")
            with httpx.Client(base_url=server.url, timeout=30) as client:
                r = client.post("/v1/traces", content=b"{}", headers={"content-type": "application/json"})
                assert r.status_code == 503 and r.headers["retry-after"] == str(RETRY_AFTER_S)
                assert r.json()["details"][0]["reason"] == "server_busy"
                # Reads are never bound: /api/v1/events lists while the one place is taken.
                assert client.get("/api/v1/events").status_code == 200
        held.join(60)
        assert held.response is not None and held.response.status_code == 200
    services.engine.dispose()


def test_zero_means_no_bound(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'open.db'}"
    services = make_services(url, start_jobs=False, ingest_concurrency=0, api_usage_flush_interval_s=0)
    with LiveServer(create_app(services)) as server:
        posts = [Post(server.url, batch(20)) for _ in range(4)]
        for post in posts:
            post.start()
        for post in posts:
            post.join(60)
        assert all(p.response is not None and p.response.status_code == 200 for p in posts)
        assert slots_of(server).in_flight == 0
        assert len(stored_ids(services)) == 80
    services.engine.dispose()
