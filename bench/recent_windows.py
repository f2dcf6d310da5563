"""Overview and alerts latency with every event in the last hour: minute rollups vs raw recent windows.

Usage: .venv/bin/python bench/recent_windows.py [--events 172000] [--pg] [--requests 30] [--senders 0]
                                                [--workdir /tmp/fl-recent]

Loads N demo events spread over the last hour through the ingest pipeline into a fresh SQLite file (and a fresh
PostgreSQL database with --pg), then times GET /api/v1/overview and GET /api/v1/alerts in-process (TestClient,
p50/p95 after two warm-up calls) twice in one process: "raw" with minute planning turned off (burn-rate windows
of 5 minutes to an hour and the window edges read raw events, as before minute rollups), and "minutes" as built.
With --senders N, N processes keep ingesting batches of 500 events stamped now while both columns are timed.
The load average is printed with the numbers: compare the ratio on a busy machine, not the milliseconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, pg_database
from faultlens import demo
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store import rollup_reads
from faultlens.store.rollup_shapes import HOUR_MS
from faultlens.timeutil import now_ms

ROUTES = {"overview": "/api/v1/overview", "alerts": "/api/v1/alerts"}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def raw_recent_windows() -> Iterator[None]:
    """Minute planning off: no hour counts as having complete minutes, edges priced by length as before."""
    module = vars(rollup_reads)
    saved = {name: module[name] for name in ("complete_fine_hours", "now_ms")}
    module.update(complete_fine_hours=lambda *a, **k: set(), now_ms=lambda: None)
    try:
        yield
    finally:
        module.update(saved)


def load(url: str, events: int) -> Any:
    services = build_services(
        Settings(database_url=url, start_jobs=False, start_alerting=False, event_partition_interval_s=0)
    )
    started = time.perf_counter()
    accepted = 0
    for result in services.pipeline.ingest_iter(demo.generate(events, days=1 / 24), tenant="default", batch_size=5000):
        accepted += result.accepted
    print(f"  loaded {accepted:,} events in {time.perf_counter() - started:,.0f} s")
    with services.engine.connect() as conn:
        hour = now_ms() // HOUR_MS * HOUR_MS
        complete = rollup_reads.complete_fine_hours(conn, tenant="default", shape=2, hours=[hour], where={})
    if not complete:
        print("  WARNING: the current hour has no complete minute rows; both columns read raw events")
    return services


def send(url: str, stop: Any, seed: int) -> None:
    """One sender: batches of 500 events over the last second, until `stop` is set."""
    services = build_services(
        Settings(database_url=url, start_jobs=False, start_alerting=False, event_partition_interval_s=0),
        run_migrations=False,
    )
    round_ = 0
    while not stop.is_set():
        batch = list(demo.generate(500, days=1 / 86_400, seed=seed * 100_000 + round_))
        services.pipeline.ingest(batch, tenant="default")
        round_ += 1
    services.engine.dispose()


def timed(call: Callable[[], None], repeats: int) -> list[float]:
    for _ in range(2):
        call()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    return samples


def run(url: str, events: int, requests: int, senders: int) -> None:
    services = load(url, events)
    loopback: dict[str, Any] = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=send, args=(url, stop, i + 1)) for i in range(senders)]
    for proc in procs:
        proc.start()
    try:
        _time_routes(services, loopback, requests, senders)
    finally:
        stop.set()
        for proc in procs:
            proc.join()
    services.engine.dispose()


def _time_routes(services: Any, loopback: dict[str, Any], requests: int, senders: int) -> None:
    if senders:
        time.sleep(3)  # the senders are writing
    print(f"  load average {os.getloadavg()[0]:.1f}, {senders} sender(s) ingesting")
    print(f"  {'route':<10}{'raw p50':>10}{'raw p95':>10}{'min p50':>10}{'min p95':>10}{'p95 ratio':>11}")
    with TestClient(create_app(services), **loopback) as client:
        for name, path in ROUTES.items():

            def call(path: str = path) -> None:
                r = client.get(path)
                if r.status_code != 200:
                    raise SystemExit(f"{path} answered {r.status_code}: {r.text[:300]}")

            with raw_recent_windows():
                before = timed(call, requests)
            after = timed(call, requests)
            b50, b95, a50, a95 = (percentile(before, 0.5), percentile(before, 0.95), percentile(after, 0.5),
                                  percentile(after, 0.95))  # fmt: skip
            print(f"  {name:<10}{b50:>8.1f}ms{b95:>8.1f}ms{a50:>8.1f}ms{a95:>8.1f}ms{b95 / a95:>10.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=172_000)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (FAULTLENS_TEST_PG admin URL)")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--senders", type=int, default=0, help="processes ingesting while the routes are timed")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fl-recent"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / "recent.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    print(f"sqlite, {args.events:,} events in the last hour")
    run(f"sqlite:///{db}", args.events, args.requests, args.senders)
    if args.pg:
        name = "faultlens_bench_recent"
        print(f"postgresql, {args.events:,} events in the last hour")
        try:
            run(pg_database(name, fresh=True), args.events, args.requests, args.senders)
        finally:
            drop_pg(name)


if __name__ == "__main__":
    main()
