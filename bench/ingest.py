"""Ingest throughput: events/s through POST /api/v1/events (1,000-event batches) vs raw inserts of the same rows.

Usage: .venv/bin/python bench/ingest.py [--events 100000] [--batch 1000] [--clients 2] [--pg]
SQLite by default, against sqlite3.executemany; with --pg, PostgreSQL (FAULTLENS_TEST_PG admin URL, fresh
databases) against psycopg executemany. Both sides store the same rows in the same run; the ratio is
API / raw (goal: >= 0.5).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, free_port, machine, pg_database, start_server
from faultlens import demo
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store.tables import events as events_table


def run_api(url: str, batches: list[bytes], clients: int) -> float:
    """Batches POSTed by `clients` concurrent senders (each its own keep-alive connection)."""
    port = free_port()
    proc = start_server(port, {"FAULTLENS_DATABASE_URL": url, "FAULTLENS_START_JOBS": "false"})
    headers = {"content-type": "application/json"}
    base = f"http://127.0.0.1:{port}"

    def send(share: list[bytes]) -> int:
        stored = 0
        with httpx.Client(base_url=base, timeout=60) as client:
            for body in share:
                r = client.post("/api/v1/events", content=body, headers=headers)
                r.raise_for_status()
                stored += r.json()["accepted"]
        return stored

    try:
        with httpx.Client(base_url=base, timeout=60) as client:  # warm-up: its events count as duplicates later
            client.post("/api/v1/events", content=batches[0], headers=headers).raise_for_status()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            stored = sum(pool.map(send, [batches[i::clients] for i in range(clients)]))
        elapsed = time.perf_counter() - started
        return (stored + len(orjson.loads(batches[0]))) / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def prepared_rows(url: str, raw_events: list[dict[str, object]]) -> tuple[list[str], list[tuple[object, ...]]]:
    """The rows as the pipeline would store them (validated, classified, fingerprinted; not timed), in a
    database migrated to the same schema."""
    services = build_services(Settings(database_url=url, start_jobs=False))
    rows = []
    for raw in raw_events:
        row = services.pipeline.validate(raw, tenant="default", now=int(time.time() * 1000))
        services.pipeline.classify_row(row)
        services.pipeline.fingerprint_row(row)
        rows.append(row)
    services.engine.dispose()
    cols = [c.name for c in events_table.c if c.name != "pk"]
    return cols, [tuple(r[c] for c in cols) for r in rows]


def run_raw_pg(url: str, raw_events: list[dict[str, object]], batch: int) -> float:
    """The same rows inserted with psycopg executemany, a transaction per batch."""
    cols, tuples = prepared_rows(url, raw_events)
    sql = f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for i in range(0, len(tuples), batch):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, tuples[i : i + batch])
        elapsed = time.perf_counter() - started
    return len(tuples) / elapsed


def run_raw(workdir: Path, raw_events: list[dict[str, object]], batch: int) -> float:
    """The same rows inserted with sqlite3.executemany, a transaction per batch."""
    cols, tuples = prepared_rows(f"sqlite:///{workdir / 'raw.db'}", raw_events)
    sql = f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    conn = sqlite3.connect(workdir / "raw.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    for i in range(0, len(tuples), batch):
        with conn:
            conn.executemany(sql, tuples[i : i + batch])
    elapsed = time.perf_counter() - started
    conn.close()
    return len(tuples) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent senders (one connection each)")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    raw = list(demo.generate(args.events, days=7, seed=11))
    batches = [orjson.dumps(raw[i : i + args.batch]) for i in range(0, len(raw), args.batch)]
    if args.pg:
        names = ("faultlens_bench_ingest_api", "faultlens_bench_ingest_raw")
        try:
            api = run_api(pg_database(names[0], fresh=True), batches, args.clients)
            base = run_raw_pg(pg_database(names[1], fresh=True), raw, args.batch)
        finally:
            for name in names:
                drop_pg(name)
        baseline = "raw  psycopg executemany "
    else:
        with tempfile.TemporaryDirectory() as tmp:
            api = run_api(f"sqlite:///{Path(tmp) / 'api.db'}", batches, args.clients)
            base = run_raw(Path(tmp), raw, args.batch)
        baseline = "raw  sqlite3 executemany "
    print(f"machine: {machine()}")
    print(f"events: {args.events}, batch: {args.batch}, concurrent senders: {args.clients}")
    print(f"API  POST /api/v1/events : {api:12,.0f} events/s")
    print(f"{baseline}: {base:12,.0f} events/s")
    print(f"ratio API/raw            : {api / base:.2f}  (goal >= 0.50)")


if __name__ == "__main__":
    main()
