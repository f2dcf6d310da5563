"""Ingest throughput: events/s through POST /api/v1/events (1,000-event batches) vs raw inserts of the same rows.

Usage: .venv/bin/python bench/ingest.py [--events 100000] [--batch 1000] [--clients 2] [--pg]
                                        [--mix realistic,repeating] [--no-in-process]

Mixes (one row each, the first is the headline):
  realistic  30% failed events whose messages carry request ids, order numbers, timestamps, addresses and
             durations (almost every failure text is unique), a trace_id and a request_id on every event,
             several sources with their own operations, item types, statuses and releases;
  repeating  the demo data set (faultlens.demo, 7 days): few distinct messages, about 7% failures.

Baselines, in the same run and on the same rows (validated, classified and fingerprinted beforehand, not timed):
SQLite: sqlite3.executemany into a table with the events table's columns and two indexes (the unique
(tenant, id) key and (tenant, occurred_at)), a transaction per batch; with --pg, PostgreSQL (FAULTLENS_TEST_PG
admin URL, fresh databases): psycopg COPY into such a table, a transaction per batch. The ratio is API / raw
(goal: >= 0.5). Unless --no-in-process, Pipeline.ingest (one thread, no HTTP) is measured on the same batches too.
On SQLite the same rows also go into the migrated events table with all its indexes (no rollups): the floor of
this schema. The API arm also reports the server's CPU microseconds per event, which a loaded machine moves far
less than events/s.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint, create_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, free_port, machine, pg_database, start_server
from faultlens import demo
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store.tables import events as events_table
from faultlens.timeutil import now_ms

# --- the realistic mix --------------------------------------------------------------------------------------

Rng = random.Random


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _order(r: Rng) -> str:
    return f"ORD-{r.randint(10_000_000, 99_999_999)}"


def _ip(r: Rng) -> str:
    return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _hex(r: Rng, n: int) -> str:
    return f"{r.getrandbits(4 * n):0{n}x}"


def _uuid(r: Rng) -> str:
    return str(uuid.UUID(int=r.getrandbits(128)))


# (message maker, http_status, error_code, status, weight) per source; a maker gets (rng, occurred_at ms).
Failure = tuple[Callable[[Rng, int], str], int | None, str | None, str, int]
_REALISTIC: dict[str, tuple[str, list[str], list[Failure], int]] = {
    "checkout-api": (
        "request",
        ["POST /api/v2/orders", "GET /api/v2/orders/{id}", "POST /api/v2/payments", "GET /api/v2/cart"],
        [
            (
                lambda r, t: (
                    f"upstream request timeout after {r.randint(5000, 30000)}ms: POST "
                    f"http://payments.internal:8080/v1/charges (request_id={_uuid(r)})"
                ),
                504,
                "upstream_timeout",
                "failure",
                8,
            ),
            (
                lambda r, t: f"Payment declined for order {_order(r)}: card_declined (charge ch_{_hex(r, 24)})",
                402,
                "card_declined",
                "failure",
                10,
            ),
            (
                lambda r, t: (
                    f"Order {_order(r)} could not be reserved: insufficient stock for SKU "
                    f"SKU-{r.randint(100000, 999999)} (requested {r.randint(2, 9)}, available {r.randint(0, 1)})"
                ),
                409,
                "out_of_stock",
                "failure",
                6,
            ),
            (
                lambda r, t: (
                    f"validation failed for order {_order(r)}: field 'shipping.postcode' value "
                    f"'{r.randint(10000, 99999)}-{r.randint(100, 999)}' does not match pattern"
                ),
                422,
                "validation_error",
                "failure",
                7,
            ),
            (
                lambda r, t: f"client closed request after {r.randint(100, 60000)}ms (request_id={_uuid(r)})",
                499,
                None,
                "cancelled",
                6,
            ),
            (
                lambda r, t: f"[{_iso(t)}] ERROR request {_uuid(r)} failed: connection reset by peer ({_ip(r)}:5432)",
                502,
                None,
                "failure",
                4,
            ),
            (
                lambda r, t: (
                    "psycopg.errors.DeadlockDetected: deadlock detected DETAIL: Process "
                    f"{r.randint(1000, 99999)} waits for ShareLock on transaction {r.randint(10**6, 10**8)}; "
                    f"blocked by process {r.randint(1000, 99999)}. HINT: See server log. order={_order(r)}"
                ),
                500,
                "40P01",
                "failure",
                2,
            ),
        ],
        30,
    ),
    "auth-service": (
        "request",
        ["POST /oauth/token", "GET /userinfo", "POST /sessions"],
        [
            (
                lambda r, t: (
                    f"JWT expired at {_iso(t - r.randint(1000, 86_400_000))} for user "
                    f"u_{r.randint(10**5, 10**7)} (token id {_hex(r, 16)})"
                ),
                401,
                "token_expired",
                "failure",
                10,
            ),
            (
                lambda r, t: (
                    f"Rate limit exceeded for client cl_{_hex(r, 10)}: {r.randint(1001, 5000)} requests "
                    f"in 60s (limit 1000), retry after {r.randint(1, 60)}s"
                ),
                429,
                "rate_limited",
                "failure",
                6,
            ),
            (
                lambda r, t: f"invalid_grant: refresh token rt_{_hex(r, 20)} was revoked at {_iso(t - 3_600_000)}",
                400,
                "invalid_grant",
                "failure",
                4,
            ),
            (
                lambda r, t: (
                    f"Authorization failed for api_key=sk_live_{_hex(r, 24)} on account acct_{r.randint(10**5, 10**6)}"
                ),
                401,
                "invalid_api_key",
                "failure",
                1,
            ),
        ],
        20,
    ),
    "search-gateway": (
        "request",
        ["GET /search", "GET /suggest", "GET /products/{id}"],
        [
            (
                lambda r, t: (
                    f"Elasticsearch query timed out after {r.randint(1000, 9000)}ms on index "
                    f"products-{_iso(t)[:10]} shard {r.randint(0, 11)} (request {_uuid(r)})"
                ),
                504,
                "search_timeout",
                "failure",
                6,
            ),
            (
                lambda r, t: f"404 Not Found: /products/{r.randint(10**5, 10**7)}",
                404,
                None,
                "failure",
                8,
            ),
            (
                lambda r, t: (
                    f"no healthy upstream for cluster search-{r.randint(1, 4)} "
                    f"(last attempt {_ip(r)}:9200 at {_iso(t)})"
                ),
                503,
                "UH",
                "failure",
                2,
            ),
        ],
        15,
    ),
    "billing-worker": (
        "task",
        ["charge_invoice", "send_receipt", "reconcile_ledger"],
        [
            (
                lambda r, t: (
                    'Traceback (most recent call last):\n  File "/app/billing/charge.py", line 212, in '
                    "charge_invoice\n    resp = client.post(url, json=payload, timeout=30)\n  File "
                    '"/usr/local/lib/python3.12/site-packages/httpx/_client.py", line 1145, in post\n'
                    f"httpx.ReadTimeout: timed out (invoice INV-{r.randint(10**6, 10**7)}, request {_uuid(r)})"
                ),
                None,
                None,
                "retry",
                6,
            ),
            (
                lambda r, t: (
                    f"KeyError: 'customer_{r.randint(10**5, 10**7)}' while rendering receipt for "
                    f"invoice INV-{r.randint(10**6, 10**7)}"
                ),
                None,
                None,
                "failure",
                4,
            ),
            (
                lambda r, t: (
                    f"redis.exceptions.ConnectionError: Error 111 connecting to {_ip(r)}:6379. "
                    f"Connection refused. (job {_uuid(r)})"
                ),
                None,
                None,
                "retry",
                5,
            ),
            (
                lambda r, t: (
                    f"ledger mismatch for account acct_{r.randint(10**5, 10**6)}: expected "
                    f"{r.randint(100, 99999)}.{r.randint(10, 99)} EUR, found "
                    f"{r.randint(100, 99999)}.{r.randint(10, 99)} EUR at {_iso(t)}"
                ),
                None,
                "ledger_mismatch",
                "dead_letter",
                2,
            ),
        ],
        15,
    ),
    "inventory-sync": (
        "job",
        ["sync_sku", "reserve_stock", "import_feed"],
        [
            (
                lambda r, t: (
                    f"Task inventory.sync_sku[{_uuid(r)}] raised unexpected: TimeoutError('timed out "
                    f"after {r.randint(30, 300)}s')"
                ),
                None,
                None,
                "failure",
                6,
            ),
            (
                lambda r, t: (
                    f"feed row {r.randint(1, 500000)}: could not parse price '{r.randint(1, 999)},"
                    f"{r.randint(0, 99):02d}.{r.randint(0, 9)}' for SKU-{r.randint(100000, 999999)}"
                ),
                None,
                "bad_data",
                "failure",
                5,
            ),
            (
                lambda r, t: (
                    f"WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL) Job: {r.randint(10**6, 10**7)}."
                ),
                None,
                None,
                "dead_letter",
                1,
            ),
        ],
        10,
    ),
    "notification-svc": (
        "message",
        ["send_email", "send_push", "send_sms"],
        [
            (
                lambda r, t: (
                    f"SMTP 421 4.7.0 Try again later, closing connection. (mx{r.randint(1, 9)}"
                    f".mail.example.net) message_id=<{_uuid(r)}@mail.example.com>"
                ),
                None,
                "smtp_421",
                "retry",
                6,
            ),
            (
                lambda r, t: f"APNs rejected device token {_hex(r, 64)}: BadDeviceToken",
                None,
                "BadDeviceToken",
                "failure",
                4,
            ),
            (
                lambda r, t: (
                    f"Twilio error 21211: The 'To' number +1{r.randint(2000000000, 9999999999)} is not "
                    "a valid phone number."
                ),
                400,
                "21211",
                "failure",
                3,
            ),
        ],
        10,
    ),
}
_REALISTIC_FAILURE_SHARE = 0.30
_RELEASES = ["2026.11.3", "2026.11.4", "2026.12.1"]
_ENVIRONMENTS = (["production", "staging"], [9, 1])
_REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2"]


def realistic(n: int, *, days: float = 1.0, seed: int = 11, end_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """`n` events over the last `days` days, oldest first: 30% failed with unique ids in their messages."""
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else now_ms()
    span = int(days * 86_400_000)
    sources = list(_REALISTIC)
    weights = [spec[3] for spec in _REALISTIC.values()]
    run = _hex(rng, 8)
    for i in range(n):
        source = sources[rng.choices(range(len(sources)), weights)[0]]
        item_type, operations, failures, _ = _REALISTIC[source]
        at = end - span + int((i + rng.random()) * span / n)
        event: dict[str, Any] = {
            "id": f"evt-{run}-{i}",
            "source": source,
            "operation": rng.choice(operations),
            "item_type": item_type,
            "occurred_at": _iso(at),
            "duration_ms": round(rng.lognormvariate(4.0, 1.0), 1),
            "trace_id": _hex(rng, 32),
            "span_id": _hex(rng, 16),
            "request_id": _uuid(rng),
            "release": rng.choice(_RELEASES),
            "environment": rng.choices(*_ENVIRONMENTS)[0],
        }
        if rng.random() < 0.4:
            event["attributes"] = {"region": rng.choice(_REGIONS), "customer_id": f"c_{rng.randint(1, 10**6)}"}
        if rng.random() < _REALISTIC_FAILURE_SHARE:
            make, http_status, code, status, _ = rng.choices(failures, [f[4] for f in failures])[0]
            event["status"] = status
            event["error_message"] = make(rng, at)
            if http_status is not None:
                event["http_status"] = http_status
            if code is not None:
                event["error_code"] = code
            if item_type != "request":
                event["attempt"] = rng.randint(1, 5)
                event["max_attempts"] = 5
        else:
            event["status"] = "success"
            if item_type == "request":
                event["http_status"] = rng.choice([200, 200, 200, 201, 204])
            else:
                event["attempt"] = 1
        yield event


MIXES: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "realistic": lambda n: list(realistic(n, days=1, seed=11)),
    "repeating": lambda n: list(demo.generate(n, days=7, seed=11)),
}

# --- the measured arms --------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_api(url: str, batches: list[bytes], clients: int) -> tuple[float, float | None]:
    """Batches POSTed by `clients` concurrent senders (each its own keep-alive connection): events/s, and the
    server's CPU microseconds per event (a shared machine's load changes the first far more than the second)."""
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
        cpu_before = cpu_seconds(proc.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            stored = sum(pool.map(send, [batches[i::clients] for i in range(clients)]))
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(proc.pid)
        events = stored + len(orjson.loads(batches[0]))
        cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) * 1e6 / events
        return events / elapsed, cpu
    finally:
        proc.terminate()
        proc.wait(10)


def run_pipeline(url: str, batches: list[bytes]) -> float:
    """The same batches through Pipeline.ingest in this process (decoded beforehand, one thread, no HTTP)."""
    services = build_services(Settings(database_url=url, start_jobs=False))
    decoded = [orjson.loads(b) for b in batches]
    try:
        services.pipeline.ingest(decoded[0], tenant="default")  # warm-up, as over HTTP
        started = time.perf_counter()
        stored = sum(services.pipeline.ingest(batch, tenant="default").accepted for batch in decoded)
        elapsed = time.perf_counter() - started
    finally:
        services.engine.dispose()
    return (stored + len(decoded[0])) / elapsed


def prepared_rows(raw_events: list[dict[str, Any]]) -> tuple[list[str], list[tuple[object, ...]]]:
    """The rows as the pipeline would store them (validated, classified, fingerprinted; not timed)."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(database_url=f"sqlite:///{Path(tmp) / 'prep.db'}", start_jobs=False))
        pipeline = services.pipeline
        now = now_ms()
        rows = []
        for raw in raw_events:
            row = pipeline.validate(raw, tenant="default", now=now)
            pipeline.classify_row(row)
            pipeline.fingerprint_row(row)
            rows.append(row)
        services.engine.dispose()
    cols = [c.name for c in events_table.c if c.name != "pk"]
    return cols, [tuple(r[c] for c in cols) for r in rows]


def create_raw_table(url: str) -> None:
    """A table `raw_events` with the events table's columns (types and nullability) and two indexes."""
    meta = MetaData()
    Table(
        "raw_events",
        meta,
        *(Column(c.name, c.type, nullable=c.nullable) for c in events_table.c if c.name != "pk"),
        UniqueConstraint("tenant", "id"),
        Index("ix_raw_events_tenant_time", "tenant", "occurred_at"),
    )
    engine = create_engine(url)
    meta.create_all(engine)
    engine.dispose()


def run_raw_pg(url: str, cols: list[str], tuples: list[tuple[object, ...]], batch: int) -> float:
    """The rows COPied with psycopg, a transaction per batch."""
    create_raw_table(url.replace("postgresql://", "postgresql+psycopg://", 1))
    copy_sql = f"COPY raw_events ({', '.join(cols)}) FROM STDIN"
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for i in range(0, len(tuples), batch):
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in tuples[i : i + batch]:
                    copy.write_row(row)
        elapsed = time.perf_counter() - started
    return len(tuples) / elapsed


def run_raw(
    path: Path, cols: list[str], tuples: list[tuple[object, ...]], batch: int, *, table: str = "raw_events"
) -> float:
    """The rows inserted with sqlite3.executemany, a transaction per batch (WAL, synchronous=NORMAL as served).

    `table` "events": into the migrated events table with all its indexes (no rollups, no de-duplication), the
    floor any ingest into this schema stands on."""
    if table == "events":
        build_services(Settings(database_url=f"sqlite:///{path}", start_jobs=False)).engine.dispose()
    else:
        create_raw_table(f"sqlite:///{path}")
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    for i in range(0, len(tuples), batch):
        with conn:
            conn.executemany(sql, tuples[i : i + batch])
    elapsed = time.perf_counter() - started
    conn.close()
    return len(tuples) / elapsed


def measure(mix: str, args: argparse.Namespace) -> dict[str, float | None]:
    """API, raw and in-process pipeline events/s (and the server's CPU per event) for one mix, fresh databases."""
    raw = MIXES[mix](args.events)
    batches = [orjson.dumps(raw[i : i + args.batch]) for i in range(0, len(raw), args.batch)]
    cols, tuples = prepared_rows(raw)
    out: dict[str, float | None] = {"inproc": None, "schema": None}
    if args.pg:
        names = ("faultlens_bench_ingest_api", "faultlens_bench_ingest_raw", "faultlens_bench_ingest_inproc")
        try:
            out["api"], out["cpu"] = run_api(pg_database(names[0], fresh=True), batches, args.clients)
            out["raw"] = run_raw_pg(pg_database(names[1], fresh=True), cols, tuples, args.batch)
            if args.in_process:
                url = pg_database(names[2], fresh=True).replace("postgresql://", "postgresql+psycopg://", 1)
                out["inproc"] = run_pipeline(url, batches)
        finally:
            for name in names:
                drop_pg(name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out["api"], out["cpu"] = run_api(f"sqlite:///{Path(tmp) / 'api.db'}", batches, args.clients)
            out["raw"] = run_raw(Path(tmp) / "raw.db", cols, tuples, args.batch)
            out["schema"] = run_raw(Path(tmp) / "schema.db", cols, tuples, args.batch, table="events")
            if args.in_process:
                out["inproc"] = run_pipeline(f"sqlite:///{Path(tmp) / 'inproc.db'}", batches)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent senders (one connection each)")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--mix", default="realistic,repeating", help="comma-separated: realistic, repeating (one row each)"
    )
    parser.add_argument("--no-in-process", dest="in_process", action="store_false", help="skip Pipeline.ingest")
    args = parser.parse_args()
    mixes = [m.strip() for m in args.mix.split(",") if m.strip()]
    unknown = [m for m in mixes if m not in MIXES]
    if unknown or not mixes:
        parser.error(f"--mix takes {', '.join(MIXES)}; got {args.mix!r}")
    results = {mix: measure(mix, args) for mix in mixes}
    baseline = "psycopg COPY" if args.pg else "sqlite3 executemany"
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    print(f"database: {'PostgreSQL' if args.pg else 'SQLite'}; events: {args.events}, batch: {args.batch}, "
          f"senders: {args.clients}; raw: {baseline} into a table of the same columns, 2 indexes")  # fmt: skip
    print(f"{'mix':<10} {'API events/s':>13} {'server CPU us/event':>20} {'raw events/s':>13} {'API/raw':>8} "
          f"{'Pipeline.ingest/s':>18} {'/raw':>5}")  # fmt: skip
    for mix, r in results.items():
        api, raw_rate, cpu, inproc = r["api"] or 0.0, r["raw"] or 1.0, r["cpu"], r["inproc"]
        line = f"{mix:<10} {api:>13,.0f} {'-' if cpu is None else f'{cpu:.1f}':>20} {raw_rate:>13,.0f} "
        line += f"{api / raw_rate:>8.2f}"
        if inproc is not None:
            line += f" {inproc:>18,.0f} {inproc / raw_rate:>5.2f}"
        print(line)
    for mix, r in results.items():
        if r["schema"]:
            print(f"{mix}: raw sqlite3 executemany into the migrated events table (all its indexes, no rollups): "
                  f"{r['schema']:,.0f} events/s, API/that {(r['api'] or 0.0) / r['schema']:.2f}")  # fmt: skip
    print("goal: API/raw >= 0.50 (realistic mix)")


if __name__ == "__main__":
    main()
