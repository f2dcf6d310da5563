"""Columnar prototype: the 90-day questions on raw events in chDB (in-process ClickHouse) against PostgreSQL.

Not part of `make bench`: the measurement behind docs/scaling.md. chDB is a prototype dependency, kept out of
pyproject.toml and requirements.lock; install it into the virtualenv first:

    .venv/bin/pip install chdb
    .venv/bin/python bench/columnar.py [--events 10000000] [--runs 7] [--api-runs 20]
                                       [--workdir /tmp/faultlens-columnar] [--skip-pg-copy]

What it does, in order:
1. PostgreSQL database `faultlens_columnar_<N>` on FAULTLENS_TEST_PG's server: built with
   `faultlens demo --db URL --events N --days 90` (the whole pipeline: classification, fingerprints, rollups),
   reused when it already holds exactly N events.
2. The stored events are exported once with `COPY ... TO STDOUT (FORMAT csv)` into the workdir, so both stores
   load the very same classified rows.
3. Load time: the file into a chDB ReplacingMergeTree table (the schema below), and, unless --skip-pg-copy, the
   same file with `COPY FROM` into a copy of faultlens' own `events` table with all its indexes (then dropped).
4. Query time, p50/p95 over --runs each after one warm-up: the same questions as one SQL statement over raw
   events in chDB and in PostgreSQL, and faultlens' own answer on PostgreSQL (rollups first) through the ASGI
   app in-process, as bench/query.py does (--api-runs each after one warm-up). The three take turns run by run,
   so the machine's other load falls on each alike. Each raw answer is checked against the other store's (the
   same count totals, the same page of rows). Beside wall time, the CPU time of the chDB query (in-process, all
   its threads) and of the PostgreSQL backend (read from /proc: the server must run on this machine; the raw
   side runs without parallel workers so that the backend's CPU time is the whole query's), which a busy
   machine does not inflate.

The questions: summary (by status and class), errors (by kind, scope service), trends (per day), overview (by
source, status, class, kind, category, code), by site (the overview of one site_id), page 2000 (failures of one
source, rows 99,951-100,000 newest first); then summary F (the summary reading only merged rows, chDB `FINAL`),
templates (events per fingerprint, as /api/v1/fingerprints counts them) and search (messages containing a word:
faultlens has no route for it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pg_database
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store.db import normalise_url
from faultlens.timeutil import now_ms
from query import build, percentile

try:
    from chdb import session as chdb_session
except ImportError:  # pragma: no cover - the prototype's own dependency
    chdb_session = None  # type: ignore[assignment]

DAYS = 90
DAY_MS = 86_400_000

# The columns exported from PostgreSQL, in file order; booleans as 0/1 so both stores read them back.
COLUMNS = (
    "pk, tenant, id, source, operation, item_type, status, occurred_at, received_at, started_at, duration_ms, "
    "http_status, error_code, error_message, attempt, max_attempts, trace_id, span_id, correlation_id, "
    "request_id, job_id, release, environment, attributes, failure_kind, failure_class, is_actionable, "
    "category, retryable, rule_name, rule_version, fingerprint_id"
)
_EXPORT = COLUMNS.replace("is_actionable,", "is_actionable::int,").replace("retryable,", "retryable::int,")

# The file as ClickHouse reads it (absent text is '' in the table, as in faultlens' rollups).
FILE_STRUCTURE = (
    "pk UInt64, tenant String, id String, source String, operation String, item_type String, status String, "
    "occurred_at Int64, received_at Int64, started_at Nullable(Int64), duration_ms Nullable(Float64), "
    "http_status Nullable(UInt16), error_code String, error_message String, attempt Nullable(UInt16), "
    "max_attempts Nullable(UInt16), trace_id String, span_id String, correlation_id String, request_id String, "
    "job_id String, release String, environment String, attributes String, failure_kind String, "
    "failure_class String, is_actionable UInt8, category String, retryable UInt8, rule_name String, "
    "rule_version String, fingerprint_id String"
)

# The ClickHouse table: sorted for the triage questions (one tenant, a source or all, a time range), days as
# partitions so retention drops whole days, repeated text as dictionaries (LowCardinality), and `version` so a
# re-delivered or reclassified row replaces the older copy of the same pk when parts merge.
SCHEMA = """
CREATE TABLE events
(
    pk             UInt64,
    tenant         LowCardinality(String),
    id             String,
    source         LowCardinality(String),
    operation      LowCardinality(String),
    item_type      LowCardinality(String),
    status         LowCardinality(String),
    occurred_at    Int64 CODEC(Delta, ZSTD(1)),
    received_at    Int64 CODEC(Delta, ZSTD(1)),
    started_at     Nullable(Int64),
    duration_ms    Nullable(Float64),
    http_status    Nullable(UInt16),
    error_code     LowCardinality(String),
    error_message  String CODEC(ZSTD(3)),
    attempt        Nullable(UInt16),
    max_attempts   Nullable(UInt16),
    trace_id       String,
    span_id        String,
    correlation_id String,
    request_id     String,
    job_id         String,
    release        LowCardinality(String),
    environment    LowCardinality(String),
    attributes     Map(LowCardinality(String), String),
    failure_kind   LowCardinality(String),
    failure_class  LowCardinality(String),
    is_actionable  Bool,
    category       LowCardinality(String),
    retryable      Bool,
    rule_name      LowCardinality(String),
    rule_version   LowCardinality(String),
    fingerprint_id LowCardinality(String),
    version        UInt64,
    day            Date MATERIALIZED toDate(fromUnixTimestamp64Milli(occurred_at, 'UTC')),
    INDEX ix_trace trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(fromUnixTimestamp64Milli(occurred_at, 'UTC'))
ORDER BY (tenant, source, occurred_at, pk)
"""

LOAD = f"""
INSERT INTO events
SELECT pk, tenant, id, source, operation, item_type, status, occurred_at, received_at, started_at, duration_ms,
       http_status, error_code, error_message, attempt, max_attempts, trace_id, span_id, correlation_id,
       request_id, job_id, release, environment,
       CAST(JSONExtractKeysAndValues(attributes, 'String'), 'Map(LowCardinality(String), String)'),
       failure_kind, failure_class, is_actionable, category, retryable, rule_name, rule_version, fingerprint_id,
       0
FROM file('{{path}}', 'CSVWithNames', '{FILE_STRUCTURE}')
"""

_WHERE = "WHERE tenant = {tenant} AND occurred_at >= {start} AND occurred_at < {end}"
_OVERVIEW = (
    "SELECT source, status, failure_class, is_actionable, failure_kind, category, {code}, count(*), "
    "sum(coalesce(attempt, 0)) FROM events " + _WHERE + "{extra} GROUP BY 1, 2, 3, 4, 5, 6, 7"
)
_PAGE = (
    "SELECT {cols} FROM events " + _WHERE + " AND source = 'doc_sync' AND failure_class <> 'none' "
    "ORDER BY occurred_at DESC, pk DESC LIMIT 50 OFFSET 99950"
)


@dataclass(frozen=True)
class Question:
    """One 90-day question: faultlens' route (None when it has none) and one raw SQL statement per store."""

    name: str
    route: tuple[str, dict[str, Any]] | None
    pg: str
    ch: str


def _both(sql: str) -> tuple[str, str]:
    return sql, sql


QUESTIONS = [
    Question(
        "summary",
        ("/api/v1/stats/summary", {"window": "90d"}),
        *_both(f"SELECT status, failure_class, is_actionable, count(*) FROM events {_WHERE} GROUP BY 1, 2, 3"),
    ),
    Question(
        "errors",
        ("/api/v1/stats/errors", {"window": "90d", "scope": "service"}),
        *_both(
            f"SELECT failure_kind, count(*) FROM events {_WHERE} AND failure_class = 'service_failure' "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
    ),
    Question(
        "trends",
        ("/api/v1/trends", {"window_days": DAYS, "bucket": "1d"}),
        f"SELECT occurred_at / 86400000, status, failure_class, is_actionable, count(*) FROM events {_WHERE} "
        "GROUP BY 1, 2, 3, 4",
        f"SELECT day, status, failure_class, is_actionable, count(*) FROM events {_WHERE} GROUP BY 1, 2, 3, 4",
    ),
    Question(
        "overview",
        ("/api/v1/overview", {"window_days": DAYS}),
        _OVERVIEW.format(code="coalesce(error_code, '')", extra="", tenant="{tenant}", start="{start}", end="{end}"),
        _OVERVIEW.format(code="error_code", extra="", tenant="{tenant}", start="{start}", end="{end}"),
    ),
    Question(
        "by site",
        ("/api/v1/overview", {"window_days": DAYS, "site_id": "site-3"}),
        _OVERVIEW.format(
            code="coalesce(error_code, '')",
            extra=" AND attributes::jsonb ->> 'site_id' = 'site-3'",
            tenant="{tenant}",
            start="{start}",
            end="{end}",
        ),
        _OVERVIEW.format(
            code="error_code",
            extra=" AND attributes['site_id'] = 'site-3'",
            tenant="{tenant}",
            start="{start}",
            end="{end}",
        ),
    ),
    Question(
        "page 2000",
        ("/api/v1/failures", {"window_days": DAYS, "source": "doc_sync", "page": 2000, "page_size": 50}),
        _PAGE.replace("{cols}", "*"),
        _PAGE.replace("{cols}", "*"),
    ),
    # What reading only merged rows costs: FINAL collapses copies of a pk not merged yet (a re-sent batch).
    Question(
        "summary F",
        None,
        f"SELECT status, failure_class, is_actionable, count(*) FROM events {_WHERE} GROUP BY 1, 2, 3",
        f"SELECT status, failure_class, is_actionable, count(*) FROM events FINAL {_WHERE} GROUP BY 1, 2, 3",
    ),
    # Beyond the rollups: questions only raw events answer.
    Question(
        "templates",
        ("/api/v1/fingerprints", {"window": "90d", "limit": 50}),
        f"SELECT fingerprint_id, failure_class, failure_kind, rule_name, count(*) FROM events {_WHERE} "
        "AND fingerprint_id IS NOT NULL GROUP BY 1, 2, 3, 4",
        f"SELECT fingerprint_id, failure_class, failure_kind, rule_name, count(*) FROM events {_WHERE} "
        "AND fingerprint_id <> '' GROUP BY 1, 2, 3, 4",
    ),
    Question(
        "search",
        None,
        *_both(f"SELECT source, count(*) FROM events {_WHERE} AND error_message ILIKE '%timeout%' GROUP BY 1"),
    ),
]


def export(url: str, path: Path) -> float:
    """Write the events of `url` to `path` as CSV with a header; returns the seconds it took."""
    started = time.perf_counter()
    sql = f"COPY (SELECT {_EXPORT} FROM events ORDER BY pk) TO STDOUT (FORMAT csv, HEADER)"
    with psycopg.connect(url, connect_timeout=5) as conn, path.open("wb") as out, conn.cursor().copy(sql) as cp:
        for chunk in cp:
            out.write(chunk)
    return time.perf_counter() - started


def pg_copy(url: str, path: Path) -> float:
    """COPY the file into a copy of `events` with all its indexes and constraints; returns the seconds (the
    copy is dropped afterwards)."""
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS events_columnar_load")
        conn.execute("CREATE TABLE events_columnar_load (LIKE events INCLUDING ALL)")
        started = time.perf_counter()
        sql = f"COPY events_columnar_load ({COLUMNS}) FROM STDIN (FORMAT csv, HEADER)"
        with conn.cursor().copy(sql) as cp, path.open("rb") as src:
            while chunk := src.read(1 << 20):
                cp.write(chunk)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE events_columnar_load")
    return seconds


def pg_size(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_total_relation_size('events')").fetchone()
    return int(row[0]) if row else 0


class Columnar:
    """The chDB side: one session on a directory of the workdir."""

    def __init__(self, path: Path) -> None:
        assert chdb_session is not None
        self.session = chdb_session.Session(str(path))  # type: ignore[no-untyped-call]

    def query(self, sql: str) -> list[list[str]]:
        out = self.session.query(sql, "TabSeparated").bytes().decode()  # type: ignore[no-untyped-call]
        return [line.split("\t") for line in out.splitlines()]

    def load(self, path: Path) -> float:
        self.query("DROP TABLE IF EXISTS events SYNC")
        self.query(SCHEMA)
        started = time.perf_counter()
        self.query(LOAD.format(path=path))
        return time.perf_counter() - started

    def count(self) -> int:
        return int(self.query("SELECT count() FROM events")[0][0])

    def storage(self) -> tuple[int, int]:
        """(bytes on disk, active parts) of the events table."""
        row = self.query("SELECT sum(bytes_on_disk), count() FROM system.parts WHERE table = 'events' AND active")
        return int(row[0][0]), int(row[0][1])

    def close(self) -> None:
        self.session.close()  # type: ignore[no-untyped-call]


def total(rows: list[Any], name: str) -> int:
    """What two stores' answers must share: the sum of the page's pks, or of the counts (the overview's
    rows end with count and attempt sum)."""
    column = {"page 2000": 0, "overview": -2, "by site": -2}.get(name, -1)
    return sum(int(r[column]) for r in rows)


def pg_all(conn: Connection, sql: str) -> None:
    conn.execute(text(sql)).all()


def answer(client: TestClient, path: str, params: dict[str, Any]) -> None:
    r = client.get(path, params=params)
    if r.status_code != 200:
        raise SystemExit(f"{path} answered {r.status_code}: {r.text[:300]}")


@dataclass(frozen=True)
class Arm:
    """One side of a question: the call, how many timed runs, and a reader of the CPU seconds it spends."""

    call: Callable[[], Any]
    runs: int
    cpu: Callable[[], float] = time.process_time


def interleaved(arms: dict[str, Arm]) -> dict[str, list[float]]:
    """Milliseconds of each arm's call over its runs after one warm-up, the arms taking turns so that the
    machine's other work weighs on every side alike; "<name> cpu" holds the CPU milliseconds of each run."""
    for arm in arms.values():
        arm.call()  # warm-up
    out: dict[str, list[float]] = {}
    for i in range(max(arm.runs for arm in arms.values())):
        for name, arm in arms.items():
            if i < arm.runs:
                started, cpu = time.perf_counter(), arm.cpu()
                arm.call()
                out.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                out.setdefault(f"{name} cpu", []).append((arm.cpu() - cpu) * 1000)
    return out


def backend_cpu(pid: int) -> Callable[[], float]:
    """A reader of the CPU seconds PostgreSQL backend `pid` has used (the server runs on this machine)."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    return read


def stats(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5):>9.1f}{percentile(samples, 0.95):>9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each raw statement per store")
    parser.add_argument("--api-runs", type=int, default=20, help="timed requests of each faultlens route")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/faultlens-columnar"))
    parser.add_argument("--skip-pg-copy", action="store_true", help="skip the bare PostgreSQL COPY load")
    args = parser.parse_args()
    if chdb_session is None:
        raise SystemExit("chdb is not installed: `.venv/bin/pip install chdb` (a prototype dependency, not locked)")
    n = args.events
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    url = pg_database(f"faultlens_columnar_{n}")
    print(f"PostgreSQL {n:,}: {build(url, n)}")
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")  # as autovacuum would have done after a load

    csv = args.workdir / f"events-{n}.csv"
    seconds = export(url, csv)
    print(f"exported {n:,} events to {csv} ({csv.stat().st_size / 2**20:,.0f} MiB) in {seconds:.1f} s")
    ch = Columnar(args.workdir / f"chdb-{n}")
    seconds = ch.load(csv.resolve())
    if ch.count() != n:
        raise SystemExit(f"chDB holds {ch.count():,} events, not {n:,}")
    disk, parts = ch.storage()
    print(
        f"load into chDB: {seconds:.1f} s, {n / seconds:,.0f} events/s; {disk / 2**20:,.0f} MiB on disk, {parts} parts"
    )
    if not args.skip_pg_copy:
        seconds = pg_copy(url, csv)
        print(f"load into PostgreSQL (COPY into events with its indexes): {seconds:.1f} s, {n / seconds:,.0f} events/s")
    print(f"PostgreSQL events table with indexes: {pg_size(url) / 2**20:,.0f} MiB")

    services = build_services(Settings(database_url=url, start_jobs=False))
    raw_pg = create_engine(normalise_url(url))  # the driver's defaults (faultlens' engine turns JIT off)
    end = now_ms() + 1
    bind = {"tenant": f"'{services.settings.default_tenant}'", "start": end - DAYS * DAY_MS, "end": end}
    print(f"\n{n:,} events, {DAYS}-day window; raw: {args.runs} runs each, faultlens: {args.api_runs} requests each")
    print(f"p50 and p95 in ms (with {args.runs} runs p95 is the slowest); load: 1-minute load average after it")
    print("cpu: CPU ms (p50) of the chDB query (all its threads) and of the PostgreSQL backend; waiting for a core")
    print("on a busy machine inflates wall time, not these. PG/chDB and chDB/faultlens: ratios of wall p50")
    head = f"{'question':<11}{'chDB raw':>18}{'PG raw':>18}{'faultlens (PG)':>18}{'chDB cpu':>9}{'PG cpu':>8}"
    print(f"{head}{'PG/chDB':>9}{'chDB/fl':>8}{'load':>6}")
    app = create_app(services)
    # A loopback client of a loopback server: served anonymously, as the local dashboard is.
    loopback = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}
    with TestClient(app, **loopback) as client, raw_pg.connect() as conn:  # type: ignore[arg-type]
        # One backend without parallel workers, so that its CPU time is all the query's (workers would shorten the
        # wall time, not the work; bench/query.py's naive side allows them).
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))
        pg_cpu = backend_cpu(int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))
        for q in QUESTIONS:
            ch_sql, pg_sql = q.ch.format(**bind), q.pg.format(**bind)
            ch_rows, pg_rows = ch.query(ch_sql), conn.execute(text(pg_sql)).all()
            if total(ch_rows, q.name) != total(list(pg_rows), q.name) or len(ch_rows) != len(pg_rows):
                raise SystemExit(f"{q.name}: chDB and PostgreSQL disagree ({len(ch_rows)} and {len(pg_rows)} rows)")

            arms = {
                "ch": Arm(partial(ch.query, ch_sql), args.runs),
                "pg": Arm(partial(pg_all, conn, pg_sql), args.runs, pg_cpu),
            }
            if q.route:
                arms["api"] = Arm(partial(answer, client, *q.route), args.api_runs)
            ms = interleaved(arms)
            api, ratio = "-", "-"
            if "api" in ms:
                api, ratio = stats(ms["api"]), f"{percentile(ms['ch'], 0.5) / percentile(ms['api'], 0.5):.2f}x"
            speedup = percentile(ms["pg"], 0.5) / percentile(ms["ch"], 0.5)
            load = os.getloadavg()[0]
            cpu = f"{percentile(ms['ch cpu'], 0.5):>9.0f}{percentile(ms['pg cpu'], 0.5):>8.0f}"
            print(f"{q.name:<11}{stats(ms['ch'])}{stats(ms['pg'])}{api:>18}{cpu}{speedup:>8.1f}x{ratio:>8}{load:>6.1f}")
    ch.close()
    services.engine.dispose()
    raw_pg.dispose()


if __name__ == "__main__":
    main()
