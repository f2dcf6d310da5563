"""Query latency: 90-day summary, errors, trends and overview through the ASGI app vs a naive GROUP BY on raw events.

Usage: .venv/bin/python bench/query.py [--sizes 1000000,10000000] [--pg] [--requests 30] [--naive-requests 5]
                                       [--workdir /tmp/faultlens-bench]
Each data set is built with `faultlens demo --db URL --events N --days 90` (reused when the workdir already holds
one with N events). API requests go through the app in-process (TestClient); p50/p95 over --requests each after
two warm-up calls. The naive side answers the same question with one GROUP BY over the events table.
Goal: p95 < 50 ms for summary, errors, trends and overview on 10M events; `by site` (the overview filtered
by one site_id) and `page 2000` (a deep page of one source's failures) are reported beside them, and the release
questions: `release 30m` (the actionable failure rate of one release in production over the last 30 minutes, the
release gates' question: raw edges of the window) and `release 7d` (the same over 7 days: release rollups).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pg_database
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.store.db import create_db_engine, normalise_url
from faultlens.timeutil import now_ms

DAYS = 90
GOAL_P95_MS = 50.0
RELEASE = {"release": "2026.11.2", "environment": "production"}  # one of the demo's two releases
RECENT_MS = 30 * 60_000


def _last_30_minutes() -> dict[str, Any]:
    since = datetime.fromtimestamp((now_ms() - RECENT_MS) / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return {**RELEASE, "since": since}


API: dict[str, tuple[str, Mapping[str, Any] | Callable[[], dict[str, Any]]]] = {
    "summary": ("/api/v1/stats/summary", {"window": "90d"}),
    "errors": ("/api/v1/stats/errors", {"window": "90d", "scope": "all"}),
    "trends": ("/api/v1/trends", {"window_days": DAYS, "bucket": "1d"}),
    "overview": ("/api/v1/overview", {"window_days": DAYS}),
    # Not under the goal, but the parallel-ops document's everyday question: one site's partitions.
    "by site": ("/api/v1/overview", {"window_days": DAYS, "site_id": "site-3"}),
    # Also without a goal: a deep page of one source's failures (rows 99,951-100,000, newest first).
    "page 2000": ("/api/v1/failures", {"window_days": DAYS, "source": "doc_sync", "page": 2000, "page_size": 50}),
    # Release gates: one release in production, the last 30 minutes (raw events) and 7 days (release rollups).
    "release 30m": ("/api/v1/overview", _last_30_minutes),
    "release 7d": ("/api/v1/overview", {**RELEASE, "window": "7d"}),
}
# The window each naive query scans, when not the whole DAYS.
NAIVE_SPAN_MS = {"release 30m": RECENT_MS, "release 7d": 7 * 86_400_000}
_WHERE = "WHERE tenant = :tenant AND occurred_at >= :start AND occurred_at < :end"
NAIVE = {
    "summary": f"SELECT status, failure_class, is_actionable, count(*) FROM events {_WHERE} GROUP BY 1, 2, 3",
    "errors": f"SELECT failure_class, failure_kind, count(*) FROM events {_WHERE} GROUP BY 1, 2",
    "trends": f"SELECT occurred_at / 86400000, status, failure_class, is_actionable, count(*) FROM events {_WHERE} "
    "GROUP BY 1, 2, 3, 4",
    "overview": "SELECT source, status, failure_class, is_actionable, failure_kind, category, "
    f"coalesce(error_code, ''), count(*), sum(coalesce(attempt, 0)) FROM events {_WHERE} "
    "GROUP BY 1, 2, 3, 4, 5, 6, 7",
}
_SITE = {"sqlite": "json_extract(attributes, '$.site_id')", "postgresql": "attributes::jsonb ->> 'site_id'"}


def naive_sql(name: str, dialect: str) -> str:
    if name == "page 2000":
        return (
            f"SELECT * FROM events {_WHERE} AND source = 'doc_sync' AND failure_class <> 'none' "
            "ORDER BY occurred_at DESC, pk DESC LIMIT 50 OFFSET 99950"
        )
    if name == "by site":
        return NAIVE["overview"].replace("GROUP BY", f"AND {_SITE[dialect]} = 'site-3' GROUP BY")
    if name.startswith("release"):
        where = " AND ".join(f"{k} = '{v}'" for k, v in RELEASE.items())
        return NAIVE["overview"].replace("GROUP BY", f"AND {where} GROUP BY")
    return NAIVE[name]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def timed(call: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def event_count(url: str) -> int | None:
    """How many events `url` holds; None when it has no events table yet."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
    except DBAPIError:
        return None
    finally:
        engine.dispose()


def build(url: str, events: int) -> str:
    """Load the demo data set unless `url` already holds exactly `events` events; returns what happened."""
    found = event_count(url)
    if found == events:
        return f"reused an existing data set of {events:,} events"
    if found:
        raise SystemExit(f"{url} holds {found:,} events, not {events:,}; remove it or use another --workdir")
    cli = Path(sys.executable).with_name("faultlens")
    started = time.perf_counter()
    subprocess.run(
        [str(cli), "demo", "--db", url, "--events", str(events), "--days", str(DAYS)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    return f"built with `faultlens demo` in {seconds:,.0f} s ({events / seconds:,.0f} events/s)"


def run(url: str, events: int, requests: int, naive_requests: int) -> None:
    services = build_services(Settings(database_url=url, start_jobs=False))
    engine: Engine = services.engine
    # The naive side runs on the driver's defaults (faultlens turns PostgreSQL's JIT off for its own queries).
    naive_engine = create_engine(normalise_url(url))
    print(f"\n{engine.dialect.name}, {events:,} events over {DAYS} days")
    print(f"{'query':<12}{'API p50':>10}{'API p95':>10}{'naive p50':>12}{'naive p95':>12}{'naive/API':>11}  goal")
    # A loopback client of a loopback server: served anonymously, as the local dashboard is (the Host guard
    # refuses the test client's default "testserver").
    loopback: dict[str, Any] = {"base_url": "http://127.0.0.1", "client": ("127.0.0.1", 50000)}
    with TestClient(create_app(services), **loopback) as client:
        for name, (path, params) in API.items():

            def call(path: str = path, params: Any = params) -> None:
                r = client.get(path, params=params() if callable(params) else params)
                if r.status_code != 200:
                    raise SystemExit(f"{path} answered {r.status_code}: {r.text[:300]}")

            api = timed(call, requests, warmup=2)
            end = now_ms() + 1
            span = NAIVE_SPAN_MS.get(name, DAYS * 86_400_000)
            bind = {"tenant": services.settings.default_tenant, "start": end - span, "end": end}
            with naive_engine.connect() as conn:

                def scan(sql: str = naive_sql(name, engine.dialect.name), bind: dict[str, Any] = bind) -> None:
                    conn.execute(text(sql), bind).all()

                naive = timed(scan, naive_requests, warmup=1)
            a50, a95, n50, n95 = (
                percentile(api, 0.5),
                percentile(api, 0.95),
                percentile(naive, 0.5),
                percentile(naive, 0.95),
            )
            verdict = "ok" if a95 < GOAL_P95_MS else f"MISSED (p95 >= {GOAL_P95_MS:.0f} ms)"
            if name not in NAIVE and not name.startswith("release"):
                verdict = "(no goal)"
            print(f"{name:<12}{a50:>8.1f}ms{a95:>8.1f}ms{n50:>10.1f}ms{n95:>10.1f}ms{n50 / a50:>10.1f}x  {verdict}")
    services.engine.dispose()
    naive_engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated event counts")
    parser.add_argument("--pg", action="store_true", help="also run on PostgreSQL (FAULTLENS_TEST_PG admin URL)")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--naive-requests", type=int, default=5, help="naive scans are slow on 10M; fewer of them")
    parser.add_argument("--workdir", type=Path, default=Path("data/bench"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"API: {args.requests} requests each (in-process ASGI); naive: {args.naive_requests} scans each")
    for events in sizes:
        targets = [f"sqlite:///{(args.workdir / f'sqlite-{events}.db').resolve()}"]
        if args.pg:
            targets.append(pg_database(f"faultlens_bench_{events}"))
        for url in targets:
            print(f"\n{url.split(':')[0]} {events:,}: {build(url, events)}")
            run(url, events, args.requests, args.naive_requests)


if __name__ == "__main__":
    main()
