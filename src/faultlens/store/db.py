"""Database engines: URL normalisation, connect/statement/lock deadlines, SQLite pragmas, and the schema head."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.pool import QueuePool

from faultlens.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and point them at psycopg 3; create SQLite parent folders."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


# Execution option naming a transaction's statement timeout in ms (0 = none), overriding the engine's.
STATEMENT_TIMEOUT_OPTION = "faultlens_statement_timeout_ms"
LOCK_TIMEOUT_OPTION = "faultlens_lock_timeout_ms"


_DEFAULTS = Settings.model_fields


@dataclass(frozen=True)
class Deadlines:
    """How long the database may take before a caller gets an error instead of a hang (docs/limits.md), and the
    PostgreSQL pool those deadlines apply to: its size and whether a pooler stands in front."""

    # The defaults are Settings' own, so the two never disagree.
    connect_s: float = _DEFAULTS["database_connect_timeout_s"].default
    statement_s: float = _DEFAULTS["database_statement_timeout_s"].default
    lock_s: float = _DEFAULTS["database_lock_timeout_s"].default
    pool_s: float = _DEFAULTS["database_pool_timeout_s"].default
    sqlite_busy_s: float = _DEFAULTS["sqlite_busy_timeout_s"].default
    pooler: bool = _DEFAULTS["database_pooler"].default
    pool_size: int = _DEFAULTS["database_pool_size"].default
    max_overflow: int = _DEFAULTS["database_max_overflow"].default

    @classmethod
    def of(cls, settings: Settings) -> Deadlines:
        return cls(
            connect_s=settings.database_connect_timeout_s,
            statement_s=settings.database_statement_timeout_s,
            lock_s=settings.database_lock_timeout_s,
            pool_s=settings.database_pool_timeout_s,
            sqlite_busy_s=settings.sqlite_busy_timeout_s,
            pooler=settings.database_pooler,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )


def _sqlite_pragmas(dbapi_conn: object, _record: object, *, busy_ms: int) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets readers run beside the single writer; NORMAL is durable across application crashes in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA cache_size=-65536")
    # Checkpoint every 64 MB of WAL instead of every 4 MB: ingest spends far less time copying pages back.
    cur.execute("PRAGMA wal_autocheckpoint=16384")
    cur.close()


def exc_from_driver(sql: str, params: Any, error: psycopg.Error) -> exc.StatementError:
    """The SQLAlchemy error SQLAlchemy itself would raise for this driver error (OperationalError, DataError ...)."""
    return exc.DBAPIError.instance(sql, params, error, psycopg.Error)


def _transaction_deadlines(conn: Connection, *, statement_ms: int, lock_ms: int, jit_off: bool) -> None:
    """SET LOCAL the timeouts at the start of every transaction: they hold behind pgbouncer in transaction mode."""
    options = conn.get_execution_options()
    statement = int(options.get(STATEMENT_TIMEOUT_OPTION, statement_ms))
    lock = int(options.get(LOCK_TIMEOUT_OPTION, lock_ms))
    sql = "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)"
    if jit_off:
        sql += ", set_config('jit', 'off', true)"
    params = (f"{statement}ms", f"{lock}ms")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
    except psycopg.Error as error:
        # Raised from an event on the raw cursor, the driver's error would escape SQLAlchemy's wrapping and reach
        # the API as a 500; wrapped, a database that went away answers 503 like any other statement's failure.
        raise exc_from_driver(sql, params, error) from error
    finally:
        cursor.close()


class CountedPool(QueuePool):
    """A QueuePool that tells `on_timeout` of every checkout given up after pool_timeout.

    SQLAlchemy raises that TimeoutError before any statement runs, so no engine event (handle_error included)
    sees it; observe_calls counts it through this hook as reason db_pool_timeout.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_timeout: list[Callable[[], None]] = []

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except exc.TimeoutError:
            for listener in self.on_timeout:
                listener()
            raise

    def recreate(self) -> CountedPool:
        # engine.dispose() swaps in a recreated pool: the listeners go with it.
        pool = super().recreate()
        assert isinstance(pool, CountedPool)
        pool.on_timeout = self.on_timeout
        return pool


def create_db_engine(url: str, deadlines: Deadlines | None = None) -> Engine:
    url = normalise_url(url)
    limits = deadlines or Deadlines()
    if url.startswith("sqlite"):
        busy_s = limits.sqlite_busy_s
        engine = create_engine(
            url, pool_timeout=limits.pool_s, connect_args={"check_same_thread": False, "timeout": busy_s}
        )
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_ms=int(busy_s * 1000)))
        return engine
    connect_args: dict[str, Any] = {
        # libpq counts whole seconds, at least 2; it covers the TCP handshake and the start-up exchange.
        "connect_timeout": max(2, math.ceil(limits.connect_s)),
        # A peer that stops acknowledging (host gone, packets dropped) fails the connection instead of hanging.
        "tcp_user_timeout": int(max(limits.connect_s, 1.0) * 1000),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if limits.pooler:
        # pgbouncer in transaction mode hands each transaction any server connection: no prepared statements,
        # and no start-up options (it refuses unknown ones), so jit=off travels with the per-transaction settings.
        connect_args["prepare_threshold"] = None
    else:
        # JIT compiles plans for queries PostgreSQL thinks are big; faultlens asks short, selective ones, and on a
        # 10M-event table a misestimated page of failures spent 0.67 s of 1.36 s compiling.
        connect_args["options"] = "-c jit=off"
    engine = create_engine(
        url,
        poolclass=CountedPool,
        pool_size=limits.pool_size,
        max_overflow=limits.max_overflow,
        pool_pre_ping=True,
        pool_timeout=limits.pool_s,
        connect_args=connect_args,
    )
    event.listen(
        engine,
        "begin",
        partial(
            _transaction_deadlines,
            statement_ms=int(limits.statement_s * 1000),
            lock_ms=int(limits.lock_s * 1000),
            jit_off=limits.pooler,
        ),
    )
    return engine


def engine_for(settings: Settings) -> Engine:
    """The engine for Settings.database_url with the configured deadlines."""
    return create_db_engine(settings.database_url, Deadlines.of(settings))


# The first keyword of a statement -> the `operation` label of database_call_duration_seconds (metric dictionary).
_OPERATIONS = {
    "select": "select",
    "with": "select",
    "pragma": "select",
    "insert": "insert",
    "copy": "insert",
    "update": "update",
    "delete": "delete",
    "create": "ddl",
    "alter": "ddl",
    "drop": "ddl",
    "begin": "transaction",
    "commit": "transaction",
    "rollback": "transaction",
    "savepoint": "transaction",
    "release": "transaction",
    "set": "transaction",
}
_STARTED = "faultlens_statement_started"


def statement_operation(statement: str) -> str:
    """The kind of a SQL statement (select, insert, ...; "other" for the rest)."""
    head = statement.lstrip()[:12].split(None, 1)
    return _OPERATIONS.get(head[0].lower(), "other") if head else "other"


def error_reason(error: BaseException) -> str:
    """The `reason` label of a database error: db_busy, db_unreachable, db_timeout, db_pool_timeout, ..."""
    if isinstance(error, exc.TimeoutError):
        return "db_pool_timeout"
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    if isinstance(orig, psycopg.Error):
        state = orig.sqlstate or ""
        if state == "57014":
            return "db_timeout"
        if state in ("55P03", "40P01", "40001"):
            return "db_busy"
        if state.startswith("23"):
            return "db_integrity"
        if state.startswith(_RETRYABLE_STATES) or (not state and isinstance(orig, psycopg.OperationalError)):
            return "db_unreachable"
        return "db_error"
    if isinstance(orig, sqlite3.IntegrityError):
        return "db_integrity"
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig)
        if "locked" in text or "busy" in text:
            return "db_busy"
        if "unable to open" in text:
            return "db_unreachable"
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "db_unreachable"
    return "db_error"


def observe_calls(engine: Engine, *, seconds: Callable[[str, float], None], error: Callable[[str], None]) -> None:
    """Report each statement's duration (by operation) and each failure (by reason) through the callbacks."""

    def before(_conn: Connection, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        if context is not None:
            setattr(context, _STARTED, time.perf_counter())

    def after(_conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        started = getattr(context, _STARTED, None)
        if started is not None:
            seconds(statement_operation(statement), time.perf_counter() - started)

    def failed(context: ExceptionContext) -> None:
        error(error_reason(context.sqlalchemy_exception or context.original_exception))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)
    if isinstance(engine.pool, CountedPool):
        engine.pool.on_timeout.append(lambda: error("db_pool_timeout"))


def without_deadlines(engine: Engine) -> Engine:
    """The same engine and pool, with no statement or lock timeout: migrations and full verification scans."""
    return engine.execution_options(**{STATEMENT_TIMEOUT_OPTION: 0, LOCK_TIMEOUT_OPTION: 0})


def mask_url(url: str) -> str:
    """The URL as it may be printed or logged: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(not a database URL)"


# SQLSTATEs a retry may cure: connection exceptions, cancelled by statement_timeout, lock_timeout, server
# shutting down or starting, too many connections.
_RETRYABLE_STATES = ("08", "57014", "55P03", "57P01", "57P02", "57P03", "53300")


def unavailable_reason(error: BaseException) -> str | None:
    """Why the database did not answer, for failures a retry may cure (refused, timed out, lost); else None."""
    if isinstance(error, exc.TimeoutError):
        return "no database connection became free in time"
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    if isinstance(orig, psycopg.Error):
        state = orig.sqlstate
        if state is None and isinstance(error, exc.DBAPIError) and error.connection_invalidated:
            return connect_failure_reason(orig)
        if state is None:
            if not isinstance(orig, psycopg.OperationalError):
                return None
            return connect_failure_reason(orig)
        if state == "57014":
            return "the statement timed out"
        if state == "55P03":
            return "a lock was not granted in time"
        if state.startswith(_RETRYABLE_STATES):
            return _first_line(str(orig))
        return None
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig)
        if "locked" in text or "busy" in text:
            return "the database file is locked by another writer"
        if "unable to open" in text:
            return "the database file cannot be opened"
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "the connection was lost"
    return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line.removeprefix("connection failed: ")


def connect_failure_reason(error: BaseException) -> str:
    """A short reason for a failed connection: 'connection refused', 'timed out', 'unknown host' ..."""
    text = str(error)
    lowered = text.lower()
    if isinstance(error, psycopg.errors.ConnectionTimeout) or "timeout expired" in lowered:
        return "connection timed out"
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("failed to resolve host", "unknown host"),
        ("could not translate host name", "unknown host"),
        ("password authentication failed", "password authentication failed"),
        ("no password supplied", "a password is required"),
        ("server closed the connection unexpectedly", "the server closed the connection"),
        ("the database system is starting up", "the database is starting up"),
        ("the database system is shutting down", "the database is shutting down"),
    ):
        if needle in lowered:
            return reason
    return _first_line(text).split("failed: ", 1)[-1].strip()


def missing_database(error: BaseException) -> str | None:
    """The database name when the server said the database does not exist."""
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    text = str(orig)
    marker = 'database "'
    if isinstance(orig, psycopg.OperationalError) and "does not exist" in text and marker in text:
        return text.split(marker, 1)[1].split('"', 1)[0]
    return None


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema. 0002 builds indexes over events and 0004 rewrites the (far smaller) rollups table.

    Index builds may take minutes on a large table, so migrations run without the statement timeout.
    """
    command.upgrade(alembic_config(without_deadlines(engine)), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
