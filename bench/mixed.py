"""Reads under ingest: read latency idle vs while senders post 1,000-event batches, on one real server.

Usage: .venv/bin/python bench/mixed.py [--duration 60] [--idle 20] [--senders 4] [--readers 2] [--batch 1000]
                                       [--seed-batches 20] [--spread-hours 168] [--idle-after] [--pg]
                                       [--env NAME=VALUE ...]
Starts `faultlens serve` on a fresh SQLite file (or, with --pg, a fresh PostgreSQL database on the FAULTLENS_TEST_PG
server), seeds it with --seed-batches batches, then measures the reads on the same server: idle (no ingest, --idle
seconds), under load (--duration seconds) and, with --idle-after, idle again over the data the load left. Each time
--readers readers cycle GET /api/v1/overview, /api/v1/stats/summary, /api/v1/alerts and /metrics back to back.
During the load --senders sender processes post --batch-event batches back to back (realistic messages with unique
ids in them, 30% failures, occurred over the last --spread-hours); an answer 429 or 503 (the server's ingest bound)
is retried as a real client does: after its Retry-After, with growing jittered backoff. Reported: p50/p95 per route
idle and under load and their ratio, events/s accepted during the load, every non-2xx answer, and the accepted
count checked against the events stored. Goal: read p95 under load < 200 ms.
--env passes a FAULTLENS_* setting to the server (e.g. --env FAULTLENS_INGEST_CONCURRENCY=2). The default spread
(7 days, as bench/ingest.py's demo data) measures contention; --spread-hours 1 (every event in the current hour)
also measures the reads' raw scans of the last hour, which grow with the ingest rate: compare with --idle-after.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, free_port, machine, pg_database, wait_healthy
from faultlens.store.db import normalise_url

GOAL_P95_MS = 200.0
READS = {
    "overview": "/api/v1/overview",
    "summary": "/api/v1/stats/summary",
    "alerts": "/api/v1/alerts",
    "metrics": "/metrics",
}
FAILURE_SHARE = 0.3
SOURCES = ("checkout-web", "billing-api", "codex-proxy", "doc_sync", "embedder-worker", "workflow_actions")
OPERATIONS = ("POST /v1/orders", "GET /v1/invoices/{id}", "sync_document", "embed_batch", "run_flow", "charge_card")
# Failure messages as services write them: ids, addresses, durations and paths vary from one event to the next.
FAILURES = (
    (502, "upstream_error", "failed_contact_upstream: dial tcp 10.0.{a}.{b}:443: connect: connection refused"),
    (504, None, "upstream request timeout after {ms} ms (request_id={rid})"),
    (500, "57014", "canceling statement due to statement timeout: UPDATE invoices SET state='paid' WHERE id={n}"),
    (500, "40P01", "deadlock detected: process {n} waits for ShareLock on transaction {m}"),
    (409, "23505", 'duplicate key value violates unique constraint "invoices_pkey" DETAIL: Key (id)=({n}) exists.'),
    (422, "validation_error", "validation error: order {rid}: amount must be a positive number, got -{n}"),
    (None, None, "TimeoutError: timed out waiting for approval service (flow {rid}, step {n})"),
    (None, None, "OSError: [Errno 28] No space left on device: '/var/spool/jobs/{rid}.json'"),
    (None, None, "redis.exceptions.ConnectionError: Error 111 connecting to 10.0.{a}.{b}:6379. Connection refused."),
    (401, "token_expired", "JWT expired at 2026-11-{d}T10:{a}:00Z for user {rid}"),
    (None, None, "MemoryError: Unable to allocate {n} MiB for an array with shape ({m},) (job {rid})"),
    (503, "UF", "upstream connect error or disconnect/reset before headers. reset reason: connection failure {rid}"),
)


def make_batch(rng: random.Random, size: int, now: datetime, spread_s: float) -> bytes:
    """`size` events over the last `spread_s` seconds: unique ids, 30% failures with varying ids in their messages."""
    events: list[dict[str, Any]] = []
    for _ in range(size):
        event: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "source": rng.choice(SOURCES),
            "operation": rng.choice(OPERATIONS),
            "occurred_at": (now - timedelta(seconds=rng.uniform(0, spread_s))).isoformat(timespec="milliseconds"),
            "duration_ms": round(rng.expovariate(1 / 120), 2),
            "attributes": {"region": rng.choice(("eu-west-1", "us-east-1")), "attempt_id": uuid.uuid4().hex[:12]},
        }
        if rng.random() < FAILURE_SHARE:
            http_status, code, template = rng.choice(FAILURES)
            event["status"] = rng.choice(("failure", "failure", "failure", "retry", "dead_letter"))
            event["error_message"] = template.format(
                a=rng.randint(0, 255),
                b=rng.randint(1, 254),
                ms=rng.randint(1000, 60000),
                rid=uuid.uuid4().hex[:16],
                n=rng.randint(1, 10**7),
                m=rng.randint(1, 10**7),
                d=rng.randint(10, 28),
            )
            if http_status is not None:
                event["http_status"] = http_status
            if code is not None:
                event["error_code"] = code
        else:
            event["status"] = "success"
            event["http_status"] = 200
        events.append(event)
    return orjson.dumps(events)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def retry_after(response: httpx.Response) -> float:
    """The Retry-After header in seconds, else the error body's details.retry_after_s, else 1."""
    header = response.headers.get("retry-after")
    if header and header.strip().isdigit():
        return float(header)
    try:
        details = response.json().get("error", {}).get("details", {})
        return float(details.get("retry_after_s", 1))
    except (ValueError, AttributeError, TypeError):
        return 1.0


def sender(base: str, seed: int, batch: int, spread_s: float, stop_at: float, out: Any) -> None:
    """Post batches back to back until stop_at; retry a 429/503 after Retry-After with jittered backoff."""
    rng = random.Random(seed)
    accepted = posted = 0
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=120) as client:
        while time.monotonic() < stop_at:
            body = make_batch(rng, batch, datetime.now(UTC), spread_s)
            tries = 0
            while True:
                try:
                    r = client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
                except httpx.TransportError:
                    statuses[-1] += 1
                    break
                statuses[r.status_code] += 1
                if r.status_code in (429, 503) and time.monotonic() < stop_at:
                    tries += 1
                    # Never before Retry-After; later tries back off further, with jitter so senders spread out.
                    time.sleep(max(retry_after(r), min(5.0, 0.25 * 2**tries)) * rng.uniform(1.0, 1.5))
                    continue
                if r.is_success:
                    accepted += r.json()["accepted"]
                    posted += 1
                break
    out.put((accepted, posted, dict(statuses)))


def reader(
    base: str, stop: threading.Event, samples: dict[str, list[float]], statuses: Counter[tuple[str, int]]
) -> None:
    with httpx.Client(base_url=base, timeout=120) as client:
        while not stop.is_set():
            for name, path in READS.items():
                started = time.perf_counter()
                try:
                    status = client.get(path).status_code
                except httpx.TransportError:
                    status = -1
                elapsed = (time.perf_counter() - started) * 1000
                statuses[(name, status)] += 1
                if 200 <= status < 300:
                    samples[name].append(elapsed)
                if stop.is_set():
                    break


def read_phase(base: str, readers: int, seconds: float) -> tuple[dict[str, list[float]], Counter[tuple[str, int]]]:
    samples: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[tuple[str, int]] = Counter()
    stop = threading.Event()
    threads = [threading.Thread(target=reader, args=(base, stop, samples, statuses)) for _ in range(readers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return samples, statuses


def stored_events(url: str) -> int:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


def run(url: str, args: argparse.Namespace, workdir: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FAULTLENS_DATABASE_URL": url,
        "FAULTLENS_START_JOBS": "false",
        "FAULTLENS_START_ALERTING": "false",
        **dict(item.split("=", 1) for item in args.env),
    }
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faultlens.cli", "serve", "--port", str(port), "--db", url],
            env=env,
            stdout=log,
            stderr=log,
        )
    wait_healthy(proc, port, failure=lambda: f"the server did not start; see {log_path}")
    base = f"http://127.0.0.1:{port}"
    print(f"server pid {proc.pid} on {base}; log {log_path}", flush=True)
    try:
        rng = random.Random(7)
        seeded = 0
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(args.seed_batches):
                r = client.post(
                    "/api/v1/events",
                    content=make_batch(rng, args.batch, datetime.now(UTC), args.spread_hours * 3600),
                    headers={"content-type": "application/json"},
                )
                r.raise_for_status()
                seeded += r.json()["accepted"]
            for path in READS.values():  # warm-up
                client.get(path).raise_for_status()
        idle, idle_statuses = read_phase(base, args.readers, args.idle)
        out: Any = mp.Queue()
        stop_at = time.monotonic() + args.duration
        spread_s = args.spread_hours * 3600
        senders = [
            mp.Process(target=sender, args=(base, 100 + i, args.batch, spread_s, stop_at, out))
            for i in range(args.senders)
        ]
        started = time.monotonic()
        for p in senders:
            p.start()
        load, load_statuses = read_phase(base, args.readers, args.duration)
        results = [out.get(timeout=300) for _ in senders]
        elapsed = time.monotonic() - started
        for p in senders:
            p.join()
        load_avg = os.getloadavg()
        after, after_statuses = read_phase(base, args.readers, args.idle) if args.idle_after else ({}, Counter())
        idle_statuses += after_statuses
        accepted = sum(r[0] for r in results)
        batches = sum(r[1] for r in results)
        ingest_statuses: Counter[int] = Counter()
        for r in results:
            ingest_statuses.update({int(k): v for k, v in r[2].items()})
        stored = stored_events(url)
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(30)
    report(args, idle, load, after, idle_statuses, load_statuses, ingest_statuses, accepted, batches, elapsed)
    print(f"events accepted: {seeded:,} seeded + {accepted:,} under load; stored: {stored:,}", end="")
    print("  (ok)" if stored == seeded + accepted else "  (MISMATCH: accepted events were lost)")
    print(f"load average at the end: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}")


def report(
    args: argparse.Namespace,
    idle: dict[str, list[float]],
    load: dict[str, list[float]],
    after: dict[str, list[float]],
    idle_statuses: Counter[tuple[str, int]],
    load_statuses: Counter[tuple[str, int]],
    ingest_statuses: Counter[int],
    accepted: int,
    batches: int,
    elapsed: float,
) -> None:
    print()
    print(f"machine: {machine()}")
    print(
        f"database: {'PostgreSQL' if args.pg else 'SQLite'}; {args.senders} senders x {args.batch}-event batches, "
        f"{args.readers} readers; events over the last {args.spread_hours:g} h; idle {args.idle:.0f} s, "
        f"load {args.duration:.0f} s; server env: {args.env or '-'}"
    )
    print()
    head = "| route | idle p50 ms | idle p95 ms | load p50 ms | load p95 ms | p95 load/idle | reads under load |"
    print(head + (" idle-after p95 ms (the load's data) |" if after else ""))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if after else ""))
    worst = 0.0
    for name, path in READS.items():
        i95, l95 = percentile(idle[name], 0.95), percentile(load[name], 0.95)
        worst = max(worst, l95)
        print(
            f"| GET {path} | {percentile(idle[name], 0.5):.1f} | {i95:.1f} | {percentile(load[name], 0.5):.1f} "
            f"| {l95:.1f} | {l95 / i95:.1f}x | {len(load[name])} |"
            + (f" {percentile(after[name], 0.95):.1f} |" if after else "")
        )
    print()
    rate = accepted / elapsed
    print(f"ingest during the load: {accepted:,} events accepted in {batches} batches, {rate:,.0f} events/s")
    shed = {code: n for code, n in ingest_statuses.items() if code in (429, 503)}
    other = {code: n for code, n in ingest_statuses.items() if not 200 <= code < 300 and code not in (429, 503)}
    print(f"ingest answers: {dict(sorted(ingest_statuses.items()))}; refused by the bound (retried): {shed or 0}")
    bad_reads = {f"{name} {code}": n for (name, code), n in (idle_statuses + load_statuses).items() if code != 200}
    print(f"non-2xx answers: reads {bad_reads or 'none'}; ingest (besides 429/503) {other or 'none'}")
    print(f"worst read p95 under load: {worst:.1f} ms (goal < {GOAL_P95_MS:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle reads before the load")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed-batches", type=int, default=20, help="batches stored before the idle reads")
    parser.add_argument(
        "--spread-hours",
        type=float,
        default=168.0,
        help="events occurred over this many hours before now (168: as bench/ingest.py's demo data; 1: all live)",
    )
    parser.add_argument(
        "--idle-after", action="store_true", help="idle reads again after the load (same data as its end)"
    )
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE passed to the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faultlens-mixed-") as tmp:
        if args.pg:
            name = "faultlens_bench_mixed"
            try:
                run(pg_database(name, fresh=True), args, Path(tmp))
            finally:
                drop_pg(name)
        else:
            run(f"sqlite:///{Path(tmp) / 'mixed.db'}", args, Path(tmp))


if __name__ == "__main__":
    main()
