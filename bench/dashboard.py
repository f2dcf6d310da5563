"""Dashboard time to interactive on a 1M-event SQLite database, beside the raw API calls the page makes.

Usage: .venv/bin/python bench/dashboard.py [--db bench/.data/dashboard-1m.db] [--events 1000000] [--loads 5]

The database is built with `faultlens demo --events N --days 30` when it does not exist (about a minute
for 1M events) and reused afterwards. The page time is navigation start -> <body data-ready="true">, which
the page sets when every first-view fetch has settled (read from its data-ready-ms, a performance.now()
value), in a fresh browser profile per load; the median of --loads loads is reported. The baseline is the
same first-view API requests fetched directly with httpx, six at a time like the browser, in the same run.
Goal: the page under 1 s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine
from _common import start_server as start_server_on

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def first_view_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """What the dashboard fetches for its default view (24h, scope service, no source): (label, path, params)."""
    now = datetime.now(UTC)
    previous = {"since": (now - timedelta(hours=48)).isoformat(), "until": (now - timedelta(hours=24)).isoformat()}
    return [
        (
            "fingerprints unclassified 24h",
            "/api/v1/fingerprints",
            {"unclassified": "true", "window": "24h", "limit": 8},
        ),
        ("alerts 1 day", "/api/v1/alerts", {"window_days": 1}),
        ("summary 24h", "/api/v1/stats/summary", {"window": "24h"}),
        ("summary previous 24h", "/api/v1/stats/summary", previous),
        ("trends 1 day by 1h", "/api/v1/trends", {"window_days": 1, "bucket": "1h"}),
        ("errors 24h scope service", "/api/v1/stats/errors", {"window": "24h", "scope": "service"}),
        ("events 24h, 25 failures", "/api/v1/events", {"window": "24h", "limit": 25, "failures_only": "true"}),
        ("sources 24h", "/ui/sources", {"window": "24h"}),
        ("failed tasks (503: no Redis)", "/api/v1/tasks/failed", {"limit": 8}),
    ]


def ensure_database(path: Path, events: int, days: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {path} with {events:,} demo events over {days} days ...", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "faultlens"),
            "demo",
            "--db",
            f"sqlite:///{path}",
            "--events",
            str(events),
            "--days",
            str(days),
        ],
        check=True,
    )
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        "FAULTLENS_DATABASE_URL": f"sqlite:///{db}",
        "FAULTLENS_START_JOBS": "false",
        # Nothing listens there: the failed-tasks panel gets its quick 503, as on a server without Redis.
        "FAULTLENS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    return start_server_on(port, env)


def api_baseline(base: str) -> tuple[float, dict[str, float]]:
    """Wall time of the first-view requests six at a time, and each request's own time (seconds)."""
    requests = first_view_requests()
    each: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=6)) as client:

        def fetch(item: tuple[str, str, dict[str, Any]]) -> None:
            label, path, params = item
            started = time.perf_counter()
            r = client.get(path, params=params)
            if r.status_code >= 500 and r.status_code != 503:
                raise SystemExit(f"{path} answered {r.status_code}: {r.text[:200]}")
            each[label] = time.perf_counter() - started

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(fetch, requests))
        return time.perf_counter() - started, each


_TIMING = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const api = performance.getEntriesByType('resource').filter(r => r.initiatorType === 'fetch');
    return {
        ready: Number(document.body.dataset.readyMs),
        dom_content_loaded: nav.domContentLoadedEventEnd,
        first_fetch_start: Math.min(...api.map(r => r.startTime)),
        slowest_fetch: Math.max(...api.map(r => r.duration)),
    };
}"""


def page_loads(base: str, loads: int) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(cold, warm): a first visit in a fresh browser profile, then a reload of that tab (static files cached)."""
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads + 1):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(base + "/")
                page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                cold.append(page.evaluate(_TIMING))
                page.reload()
                page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                warm.append(page.evaluate(_TIMING))
                context.close()
        finally:
            browser.close()
    return cold[1:], warm[1:]  # the first round warms the server process and SQLite's page cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / ".data" / "dashboard-1m.db")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium is not installed at {CHROMIUM}")
    ensure_database(args.db, args.events, args.days)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(args.db, port)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            day = client.get("/api/v1/stats/summary", params={"window": "24h"}).json()
            month = client.get("/api/v1/stats/summary", params={"window": "30d"}).json()
        api_baseline(base)  # warm-up, not counted
        baselines = [api_baseline(base) for _ in range(args.loads)]
        cold, warm = page_loads(base, args.loads)
    finally:
        proc.terminate()
        proc.wait(10)

    walls = [wall * 1000 for wall, _each in baselines]

    def median(values: list[dict[str, float]], key: str) -> float:
        return statistics.median(v[key] for v in values)

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"database: {args.db} ({args.db.stat().st_size / 1e6:,.0f} MB), {month['total']:,} events in 30d, "
        f"{day['total']:,} in the default 24h view"
    )
    print(f"first-view API requests: {len(first_view_requests())}; page loads: {args.loads} (after one warm-up)")
    print()
    print(f"API baseline (httpx, 6 parallel), ms    : median {statistics.median(walls):7.1f}   runs {runs(walls)}")
    for name, values in (("first visit (fresh profile)", cold), ("reload (static files cached)", warm)):
        ready = [v["ready"] for v in values]
        print(f"page ready, {name:28s} ms: median {statistics.median(ready):7.1f}   runs {runs(ready)}")
        print(
            f"    DOMContentLoaded {median(values, 'dom_content_loaded'):6.1f}, first API fetch starts "
            f"{median(values, 'first_fetch_start'):6.1f}, slowest fetch {median(values, 'slowest_fetch'):6.1f}"
        )
    first = statistics.median(v["ready"] for v in cold)
    print(
        f"first visit / API baseline: {first / statistics.median(walls):.2f}x; "
        f"goal (first visit under 1000 ms): {'met' if first < 1000 else 'NOT met'}"
    )
    print()
    print("API requests in the baseline (median ms, six at a time):")
    per: dict[str, list[float]] = {}
    for _wall, each in baselines:
        for name, seconds in each.items():
            per.setdefault(name, []).append(seconds * 1000)
    for label, times in sorted(per.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {statistics.median(times):7.1f}  {label}")


if __name__ == "__main__":
    main()
