"""Deadlines: a dead, black-holed, locked or slow database answers 503 in time; a slow sender gets a 408."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store.db import Deadlines, create_db_engine
from tests.conftest import make_services
from tests.helpers import event
from tests.live_server import LiveServer


def refused_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def point_at(services: Services, url: str, deadlines: Deadlines) -> None:
    """The database goes away after start: every new connection goes to `url`."""
    services.engine.dispose()
    engine = create_db_engine(url, deadlines)
    services.engine = engine
    services.pipeline.engine = engine


def assert_unavailable(response: object, *, within_s: float, started: float) -> None:
    elapsed = time.monotonic() - started
    r = response
    assert r.status_code == 503, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == "database_unavailable"
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and set(body["error"]) == {
        "code",
        "message",
        "details",
    }
    assert r.headers["retry-after"] == "5"  # type: ignore[attr-defined]
    assert elapsed < within_s, f"answered after {elapsed:.1f} s"


def test_a_refused_database_answers_503_with_retry_after_on_every_route(postgres_url: str) -> None:
    services = make_services(postgres_url, start_jobs=False)
    with TestClient(create_app(services)) as client:
        assert client.get("/api/v1/events").status_code == 200
        url = str(make_url(postgres_url).set(port=refused_port(), password="hunter2"))
        point_at(services, url, Deadlines(connect_s=2))
        for method, path in (
            ("GET", "/api/v1/events"),
            ("GET", "/api/v1/overview"),
            ("POST", "/api/v1/events"),
        ):
            started = time.monotonic()
            r = client.request(method, path, json=[event(id="x1")] if method == "POST" else None)
            assert_unavailable(r, within_s=5, started=started)
            assert "connection refused" in r.json()["error"]["message"]
            assert "hunter2" not in r.text
        assert client.get("/healthz").status_code == 200  # liveness does not depend on the database
        point_at(services, postgres_url, Deadlines())  # back, so the shutdown can save its state
    services.engine.dispose()


def test_a_black_holed_database_answers_503_within_the_connect_timeout(postgres_url: str, blackhole_port: int) -> None:
    services = make_services(postgres_url, start_jobs=False)
    with TestClient(create_app(services)) as client:
        point_at(services, str(make_url(postgres_url).set(port=blackhole_port)), Deadlines(connect_s=2))
        started = time.monotonic()
        r = client.get("/api/v1/events")
        assert_unavailable(r, within_s=6, started=started)
        assert "timed out" in r.json()["error"]["message"]
        point_at(services, postgres_url, Deadlines())
    services.engine.dispose()


def _hold_write_lock(url: str) -> tuple[object, str]:
    """Another session holds the events table: PostgreSQL ACCESS EXCLUSIVE, SQLite the file's write lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(parsed.database), isolation_level=None, timeout=0)
        conn.execute("BEGIN IMMEDIATE")
        return conn, "locked"
    pg = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    pg.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    return pg, "lock"


def test_a_locked_table_answers_503_within_the_lock_timeout(db_url: str) -> None:
    services = make_services(
        db_url,
        start_jobs=False,
        database_lock_timeout_s=0.5,
        database_statement_timeout_s=1.0,
        sqlite_busy_timeout_s=0.5,
    )
    with TestClient(create_app(services)) as client:
        assert client.post("/api/v1/events", json=[event(id="before")]).status_code == 200
        holder, word = _hold_write_lock(db_url)
        try:
            started = time.monotonic()
            r = client.post("/api/v1/events", json=[event(id="during")])
            assert_unavailable(r, within_s=5, started=started)
            assert word in r.json()["error"]["message"]
        finally:
            holder.close()  # type: ignore[attr-defined]
        r = client.post("/api/v1/events", json=[event(id="after")])
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    services.engine.dispose()


def test_a_long_statement_is_cancelled_by_the_statement_timeout(postgres_url: str) -> None:
    from sqlalchemy import text

    from faultlens.store.db import unavailable_reason, without_deadlines

    engine = create_db_engine(postgres_url, Deadlines(statement_s=0.3))
    started = time.monotonic()
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 3
    assert unavailable_reason(caught.value) == "the statement timed out"
    # Migrations and verification scans opt out; the pooled connection keeps no session-level setting.
    with without_deadlines(engine).connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        assert conn.execute(text("SHOW jit")).scalar() == "off"
    engine.dispose()


def test_behind_a_pooler_timeouts_travel_with_each_transaction(postgres_url: str) -> None:
    from sqlalchemy import text

    engine = create_db_engine(postgres_url, Deadlines(statement_s=2, lock_s=1, pooler=True))
    with engine.connect() as conn:
        values = conn.execute(text("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"))
        assert tuple(values.one()) == ("2s", "1s")
        assert conn.execute(text("SHOW jit")).scalar() == "off"
        raw = conn.connection.dbapi_connection
        assert raw is not None and raw.prepare_threshold is None
        conn.commit()
        # Outside the transaction the session keeps the server's defaults: nothing leaks to a pooled neighbour.
        raw.autocommit = True
        assert raw.execute("SHOW statement_timeout").fetchone()[0] == "0"
        raw.autocommit = False
    engine.dispose()


# The slow sender: a real server over a real socket (the ASGI TestClient cannot trickle bytes).


def _request(port: int, head: bytes, chunks: list[bytes], pause_s: float) -> tuple[bytes, float]:
    """Send the head, then the chunks `pause_s` apart (the sender's pace); return the response and the time."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(head)
        for chunk in chunks:
            try:
                conn.sendall(chunk)
            except OSError:
                break  # the server answered and closed: stop sending
            time.sleep(pause_s)
        received = b""
        while True:
            try:
                part = conn.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            received += part
    return received, time.monotonic() - started


def _head(length: int) -> bytes:
    return (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: slow-sender-1\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n"
    )


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Services]]:
    services = make_services(f"sqlite:///{tmp_path / 'f.db'}", start_jobs=False, request_body_timeout_s=1.0)
    with LiveServer(create_app(services)) as server:
        yield server, services
    services.engine.dispose()


def test_a_trickling_sender_gets_408_after_the_whole_body_deadline(slow_server: tuple[LiveServer, Services]) -> None:
    server, services = slow_server
    body = orjson.dumps([event(id="slow")])
    # Each chunk arrives well within a second, but the whole body would take ~4 s: the deadline is for all of it.
    chunks = [body[i : i + 4] for i in range(0, len(body), 4)][:20]
    response, elapsed = _request(server.port, _head(len(body)), chunks, pause_s=0.2)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", response[:300]
    payload = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert payload["error"]["code"] == "request_body_read_timeout"
    assert payload["request_id"] == "slow-sender-1"
    assert set(payload["error"]) == {"code", "message", "details"}
    # The one body's ids, as api/context.RequestIds answered them in the headers.
    assert set(payload) == {"error", "request_id", "correlation_id", "trace_id"} and payload["trace_id"] is None
    assert f"x-correlation-id: {payload['correlation_id']}".encode() in rest.lower(), rest[:300]
    assert elapsed < 4, f"answered after {elapsed:.1f} s"
    registry = services.metrics.registry
    assert registry.get_sample_value("faultlens_http_body_read_timeouts_total") == 1.0
    with services.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 0


def test_a_stalled_sender_does_not_hold_the_server(slow_server: tuple[LiveServer, Services]) -> None:
    server, services = slow_server
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    stalled.sendall(_head(1000) + b"[{")
    try:
        # Meanwhile others are served, and a prompt sender's body is accepted.
        body = orjson.dumps([event(id="fast")])
        response, _ = _request(server.port, _head(len(body)), [body], pause_s=0)
        assert response.startswith(b"HTTP/1.1 200 "), response[:300]
        assert orjson.loads(response.split(b"\r\n\r\n", 1)[1])["accepted"] == 1
        stalled.settimeout(10)
        answer = stalled.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
        assert stalled.recv(65536) == b""  # the server closed the connection
    finally:
        stalled.close()
    assert services.metrics.registry.get_sample_value("faultlens_http_body_read_timeouts_total") == 1.0


def test_a_failure_setting_a_transaction_s_deadlines_is_sqlalchemy_s_error_not_the_driver_s(postgres_url: str) -> None:
    """The deadlines are set on the raw cursor when a transaction begins; a failure there (a database gone between
    checkout and first statement, a pooler that refuses) must reach the API as SQLAlchemy's error, which answers
    503, not as the driver's, which would be a 500."""
    import psycopg
    from sqlalchemy import exc, text

    from faultlens.store.db import STATEMENT_TIMEOUT_OPTION

    engine = create_db_engine(postgres_url, Deadlines(statement_s=2, lock_s=1))
    try:
        # A statement timeout PostgreSQL refuses (beyond its range) makes the SET at the transaction's start fail.
        with pytest.raises(exc.DBAPIError) as raised, engine.connect() as conn:
            conn.execution_options(**{STATEMENT_TIMEOUT_OPTION: 10**13}).execute(text("SELECT 1"))
        assert isinstance(raised.value.orig, psycopg.Error)
    finally:
        engine.dispose()
