"""Ingest events/s and query p95 through HAProxy for 1, 2 and 3 `faultlens serve` replicas on one PostgreSQL.

Usage: .venv/bin/python bench/scale.py [--replicas 1,2,3] [--senders 4] [--readers 4] [--ingest-seconds 20]
                                       [--query-seconds 15] [--seed-events 100000]

One seeded database (`faultlens demo --events N --days 7` and an API key) is copied fresh for each replica count,
so every count answers queries over the same data. Per count: the replicas start behind HAProxy (round-robin,
/healthz checks, tests/scale/cluster.py), --readers threads alternate GET /api/v1/overview (7d) and
GET /api/v1/failures (24h, 50 a page) for --query-seconds (p50/p95 per endpoint), then --senders threads post
batches of 200 new events for --ingest-seconds (acknowledged events/s, 5xx retried as the scale test does).
The 1-replica row is the baseline the others are divided by. Every process shares this machine's cores with
PostgreSQL and the load generators, so on 2 cores little gain is expected; the table says what was measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The cluster and the senders are the scale test's (tests/scale), so the bench measures what the test proves.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.scale.cluster import cli, cluster, create_key
from tests.scale.load import run_ingest

from _common import drop_pg, machine, pg_database

TENANT = "bench"
SEED_DB = "faultlens_bench_scale_seed"
QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "overview": ("/api/v1/overview", {"window": "7d"}),
    "failures": ("/api/v1/failures", {"window": "24h", "page_size": 50}),
}
# The production defaults (the scale test shortens them): background duties cost what they cost in production.
SERVE_ENV = {
    "FAULTLENS_LEASE_TTL_S": "15",
    "FAULTLENS_ALERT_EVAL_INTERVAL_S": "30",
    "FAULTLENS_ALERT_DELIVERY_INTERVAL_S": "1",
    "FAULTLENS_TASK_SYNC_INTERVAL_S": "0",
    "FAULTLENS_FINGERPRINT_SAVE_INTERVAL_S": "5",
    "FAULTLENS_FINGERPRINT_FOLLOW_INTERVAL_S": "2",
    "FAULTLENS_API_USAGE_FLUSH_INTERVAL_S": "5",
    "FAULTLENS_LOG_LEVEL": "WARNING",
}


def seed(events: int) -> str:
    """The seeded database's API key (the database is rebuilt each run)."""
    url = pg_database(SEED_DB, fresh=True)
    started = time.perf_counter()
    print(f"seeding {SEED_DB} with {events:,} demo events over 7 days ...", flush=True)
    cli(url, "migrate")
    cli(url, "demo", "--events", str(events), "--days", "7", "--tenant", TENANT)
    key = create_key(url, TENANT, "ingest", "read")
    print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
    return key


def query_load(url: str, key: str, *, readers: int, seconds: float) -> tuple[dict[str, list[float]], int]:
    """Latencies (s) per query name, and how many answers were not 200."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    lock = threading.Lock()
    stop = threading.Event()

    def reader(number: int) -> None:
        nonlocal errors
        names = list(QUERIES)
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
            i = number
            while not stop.is_set():
                name = names[i % len(names)]
                i += 1
                path, params = QUERIES[name]
                started = time.perf_counter()
                status = client.get(path, params=params).status_code
                took = time.perf_counter() - started
                with lock:
                    if status == 200:
                        latencies[name].append(took)
                    else:
                        errors += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    return latencies, errors


def pct(values: list[float], q: int) -> float:
    """The q-th percentile in ms."""
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def measure(replicas: int, key: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    name = f"faultlens_bench_scale_{replicas}"
    url = pg_database(name, fresh=True, template=SEED_DB)
    try:
        with cluster(url, work / f"r{replicas}", replicas=replicas, env=SERVE_ENV) as c:
            # Warm-up: each replica's caches and connection pools, outside the measurement.
            query_load(c.url, key, readers=args.readers, seconds=2)
            latencies, errors = query_load(c.url, key, readers=args.readers, seconds=args.query_seconds)
            load = run_ingest(c.url, key, senders=args.senders, seconds=args.ingest_seconds)
    finally:
        drop_pg(name)
    row: dict[str, Any] = {
        "replicas": replicas,
        "ingest": load.rate,
        "retried": load.retries,
        "query_errors": errors,
        "queries": sum(len(v) for v in latencies.values()),
    }
    for q in QUERIES:
        row[f"{q}_p50"] = pct(latencies[q], 50)
        row[f"{q}_p95"] = pct(latencies[q], 95)
    print(
        f"{replicas} replica(s): {load.rate:,.0f} events/s, overview p95 {row['overview_p95']:.1f} ms, "
        f"failures p95 {row['failures_p95']:.1f} ms",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--ingest-seconds", type=float, default=20)
    parser.add_argument("--query-seconds", type=float, default=15)
    parser.add_argument("--seed-events", type=int, default=100_000)
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]
    # The cores are shared with whatever else runs on the machine: said beside the numbers.
    load_before = os.getloadavg()

    key = seed(args.seed_events)
    try:
        with tempfile.TemporaryDirectory(prefix="faultlens-bench-scale-") as tmp:
            rows = [measure(n, key, args, Path(tmp)) for n in counts]
    finally:
        drop_pg(SEED_DB)

    base = rows[0]
    print()
    print(f"machine: {machine()}; load average before the run {load_before[0]:.1f}")
    print(
        f"PostgreSQL, HAProxy round-robin, {args.senders} senders x 200-event batches for {args.ingest_seconds:g} s, "
        f"{args.readers} readers for {args.query_seconds:g} s over {args.seed_events:,} seeded events"
    )
    head = (
        f"{'replicas':>8} | {'ingest ev/s':>11} | {'x base':>6} | {'overview p50/p95 ms':>19} | "
        f"{'failures p50/p95 ms':>19} | {'p95 x base':>14} | {'queries':>7} | {'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r["ingest"] / base["ingest"] if base["ingest"] else float("nan")
        p95_ratio = f"{r['overview_p95'] / base['overview_p95']:.2f} / {r['failures_p95'] / base['failures_p95']:.2f}"
        print(
            f"{r['replicas']:>8} | {r['ingest']:>11,.0f} | {ratio:>6.2f} | "
            f"{r['overview_p50']:>8.1f} / {r['overview_p95']:>8.1f} | "
            f"{r['failures_p50']:>8.1f} / {r['failures_p95']:>8.1f} | {p95_ratio:>14} | {r['queries']:>7} | "
            f"{r['query_errors']:>6}"
        )
    retried = ", ".join(str(r["retried"]) for r in rows)
    print("x base: ingest events/s over 1 replica's; p95 x base: overview / failures p95 over 1 replica's (lower is")
    print(f"better). Retried ingest batches (5xx or no answer, sent again): {retried}")


if __name__ == "__main__":
    main()
