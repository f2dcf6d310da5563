"""faultlens through pgbouncer in transaction mode (Debian's package): everything works with database_pooler=True;
without it, pgbouncer refuses the start-up options, and once those are let through, prepared statements break."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url

from faultlens.api.app import create_app
from faultlens.jobs import runner
from faultlens.store import leases
from faultlens.store.db import Deadlines, create_db_engine
from faultlens.timeutil import now_ms
from tests.conftest import make_services, missing_service
from tests.helpers import event
from tests.integration.test_backfill import NEW_VERSION, OPS_PACK, mixed_events
from tests.live_server import LiveServer

# Debian installs it in /usr/sbin, which a non-root PATH may not list.
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# What a server connection that ran someone else's prepared statement says: it does not exist there, it exists
# already, or (worse) a statement of the same name is another query.
PREPARED_STATEMENT_STATES = {"26000", "42P05", "08P01"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def pgbouncer(tmp_path: Path, postgres_url: str, *, extra: str = "") -> Iterator[str]:
    """pgbouncer in transaction mode in front of `postgres_url`'s database; yields the URL through it."""
    if not os.access(PGBOUNCER, os.X_OK):
        missing_service("pgbouncer is not installed (Debian package pgbouncer)")
    name = make_url(postgres_url).database
    port = _free_port()
    userlist = tmp_path / "userlist.txt"
    userlist.write_text('"postgres" ""\n')
    ini = tmp_path / f"pgbouncer-{port}.ini"
    ini.write_text(
        f"[databases]\n{name} = host=127.0.0.1 port=5432 dbname={name}\n\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {userlist}\n"
        "pool_mode = transaction\n"
        # Fewer server connections than faultlens' pool: the pooler multiplexes transactions onto them.
        "default_pool_size = 4\nmax_client_conn = 100\n"
        f"{extra}"
    )
    # pgbouncer refuses to run as root; -u drops to postgres after reading the ini. Its log goes to stderr: a
    # logfile would have to be writable by postgres, and pytest's tmp_path is not.
    command = [PGBOUNCER, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(ini)]
    log = (tmp_path / f"pgbouncer-{port}.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"postgresql://postgres@127.0.0.1:{port}/{name}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (tmp_path / f"pgbouncer-{port}.log").read_text()
            try:
                psycopg.connect(url, connect_timeout=2, prepare_threshold=None).close()
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "pgbouncer did not start"
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        r = conn.getresponse()
        return r.status, orjson.loads(r.read())
    finally:
        conn.close()


def test_faultlens_works_through_pgbouncer_in_transaction_mode(tmp_path: Path, empty_postgres_url: str) -> None:
    with pgbouncer(tmp_path, empty_postgres_url) as url:
        # The migrations run through the pooler too: env.py runs them all in one transaction, and nothing in
        # them needs a session (no CONCURRENTLY, no session-level SET or advisory lock).
        services = make_services(url, database_pooler=True, start_jobs=False, database_pool_size=6)
        try:
            with LiveServer(create_app(services)) as server:
                port = server.port
                # Ingest from several threads at once, each repeating its statements past psycopg's prepare
                # threshold (5): with prepared statements on, these would land on other server connections.
                problems: list[str] = []

                def send(sender: int) -> None:
                    for batch in range(8):
                        events = [event(id=f"s{sender}-b{batch}-{i}") for i in range(10)]
                        status, result = _call(port, "POST", "/api/v1/events", events)
                        if status != 200 or result["accepted"] != 10:
                            problems.append(f"{status} {result}")

                threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=120)
                assert problems == []
                status, batch = _call(port, "POST", "/api/v1/events", mixed_events(30))
                assert status == 200 and batch["accepted"] == 30, batch

                for _ in range(6):
                    status, overview = _call(port, "GET", "/api/v1/overview?window=24h")
                    assert status == 200, overview
                    status, failures = _call(port, "GET", "/api/v1/failures?window=24h&page_size=500")
                    assert status == 200, failures
                    status, page = _call(port, "GET", "/api/v1/events?window=24h&limit=500")
                    assert status == 200, page
                assert len(page["items"]) == 350
                assert overview["totals"]["total"] == 350 and overview["totals"]["success_count"] == 10
                assert failures["items"] and all(f["status"] == "failure" for f in failures["items"])

                # A rule-pack activation, then the job runner claims and runs its backfill.
                status, activated = _call(port, "POST", "/api/v1/rules/activate", OPS_PACK)
                assert status == 200 and activated["active_version"] == NEW_VERSION, activated
                ended = runner.run_until_idle(services)
                assert [(j.kind, j.state, j.params["changed"]) for j in ended] == [("backfill", "done", 10)]
                status, moved = _call(port, "GET", "/api/v1/events/e0")
                assert status == 200 and moved["failure_kind"] == "proxy_closed", moved

                # Leases: one holder at a time, renewed by its holder.
                now = now_ms()
                with services.engine.begin() as conn:
                    assert leases.acquire(conn, name="task_sync", holder="one", ttl_ms=15_000, now=now)
                with services.engine.begin() as conn:
                    assert not leases.acquire(conn, name="task_sync", holder="two", ttl_ms=15_000, now=now + 1)
                with services.engine.begin() as conn:
                    assert leases.acquire(conn, name="task_sync", holder="one", ttl_ms=15_000, now=now + 2)
                    held = leases.find_lease(conn, "task_sync")
                assert held is not None and held.holder == "one"

                status, ready = _call(port, "GET", "/readyz")
                assert status == 200 and ready["checks"]["database"]["status"] == "ok", ready
        finally:
            services.engine.dispose()


def test_without_database_pooler_pgbouncer_refuses_the_start_up_options(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    with pgbouncer(tmp_path, empty_postgres_url) as url:
        engine = create_db_engine(url, Deadlines(pooler=False))
        try:
            with pytest.raises(exc.OperationalError, match="unsupported startup parameter: options"), engine.connect():
                pass
        finally:
            engine.dispose()


def test_without_database_pooler_prepared_statements_break(tmp_path: Path, postgres_url: str) -> None:
    # An operator who lets the options through (a common pgbouncer setting) meets the next problem: psycopg
    # prepares a statement run 5 times on one server connection, and runs it later on another.
    with pgbouncer(tmp_path, postgres_url, extra="ignore_startup_parameters = options\n") as url:
        errors = _prepared_statement_errors(create_db_engine(url, Deadlines(pooler=False)))
        assert errors & PREPARED_STATEMENT_STATES, errors
        # The same traffic with database_pooler=True: no error at all.
        assert _prepared_statement_errors(create_db_engine(url, Deadlines(pooler=True))) == set()


def _prepared_statement_errors(engine: Any) -> set[str]:
    """SQLSTATEs seen while one connection repeats a query and another holds a transaction in between (the
    pooler then hands the first a different server connection)."""
    states: set[str] = set()
    sql = text("SELECT count(*) FROM events WHERE tenant = :tenant")

    def attempt(conn: Any, *, commit: bool = True) -> None:
        try:
            conn.execute(sql, {"tenant": uuid.uuid4().hex}).scalar_one()
            if commit:
                conn.commit()
        except (exc.DBAPIError, psycopg.Error) as error:
            # The per-transaction settings run on the raw cursor: their failure is psycopg's own exception.
            orig = error.orig if isinstance(error, exc.DBAPIError) else error
            states.add(str(getattr(orig, "sqlstate", None)))
            conn.rollback()

    try:
        with engine.connect() as first, engine.connect() as second:
            for _ in range(12):
                attempt(first)
                attempt(second, commit=False)  # holds its transaction, and so a server connection, open
                attempt(first)
                second.rollback()
    finally:
        engine.dispose()
    return states
