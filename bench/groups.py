"""Failure group list latency: GET /api/v1/groups (group rollups) vs a raw GROUP BY of the same window's events.

Usage: .venv/bin/python bench/groups.py --db URL [--window 7d] [--requests 20] [--build-dense N]
Build the data first, e.g. `faultlens demo --db sqlite:////tmp/groupbench/g.db --events 1000000 --days 7` (every
event inside a 7-day window: the worst case for the list), or with `--build-dense N` the dense set: N failures over
the last 7 days spread evenly over 4 sources x 3 releases x 2 environments x 95 message shapes (every template in
every combination every hour), loaded through the ingest pipeline, then the 9 groups after the largest merged into
it, as a person would, so its detail covers 10 templates. `--old-templates K` adds, before them, K failures of K
distinct shapes 30-60 days old: the templates a tenant has stored over time, which a 7-day list and detail must not
pay for. API requests go through the app in-process (TestClient);
p50/p95 over --requests after two warm-up calls. The raw side is the GROUP BY /api/v1/fingerprints runs today.
Goal: a 7-day list on 1M events in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import distinct_words, machine, made_up_word
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings
from faultlens.timeutil import WINDOWS_MS, now_ms


def _timed(call: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _report(name: str, ms: list[float]) -> None:
    p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
    print(f"{name:<28} p50 {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms   (n={len(ms)})")


def _settings(url: str) -> Settings:
    """The app in-process, no duties running beside the timed requests."""
    return Settings(
        database_url=url,
        start_jobs=False,
        start_alerting=False,
        start_release_analyzer=False,
        start_group_lifecycle=False,
        task_sync_interval_s=0,
        event_partition_interval_s=0,
        allowed_hosts="testserver",
        loopback_client_names="testclient",
    )


def _dense_shapes() -> list[str]:
    """95 message shapes with a {n} slot, 4 to 10 words each, no word in two shapes."""
    shapes = []
    for k in range(95):
        # a code per (shape, position): three syllables spell it
        words = [made_up_word(k * 10 + i, syllables=3) for i in range(4 + k % 7)]
        shapes.append(" ".join(words) + " failed for item {n}")
    return shapes


def _old_shape(k: int) -> str:
    """The k-th message shape of the old templates: 4 to 6 words of its own after "old", so all share one key."""
    return f"old {distinct_words(k)} gave up on item {{n}}"


def build_dense(url: str, n: int, old_templates: int = 0) -> None:
    """Load the dense set into `url` (see the module doc), then merge the 9 groups after the largest into it; with
    `old_templates`, first that many failures of as many distinct shapes 30 to 60 days ago (outside a 7-day window)."""
    import random
    from datetime import UTC, datetime

    services = build_services(_settings(url))
    rng = random.Random(5)
    shapes = _dense_shapes()
    end = now_ms()
    span = 7 * 86_400_000

    def events() -> Iterator[dict[str, Any]]:
        for i in range(n):
            at = end - span + int((i + rng.random()) * span / n)
            yield {
                "id": f"dense-{i}",
                "source": f"svc-{i % 4}",
                "release": f"2026.{i % 3 + 1}",
                "environment": ("production", "staging")[i // 4 % 2],
                "status": "failure",
                "http_status": 500,
                "occurred_at": datetime.fromtimestamp(at / 1000, UTC).isoformat(),
                "error_message": shapes[i // 24 % 95].format(n=rng.randint(1, 10**6)),
            }

    def old_events() -> Iterator[dict[str, Any]]:
        for k in range(old_templates):
            at = end - 60 * 86_400_000 + int(k * 30 * 86_400_000 / old_templates)
            yield {
                "id": f"old-{k}",
                "source": "svc-old",
                "status": "failure",
                "occurred_at": datetime.fromtimestamp(at / 1000, UTC).isoformat(),
                "error_message": _old_shape(k).format(n=rng.randint(1, 10**6)),
            }

    started = time.perf_counter()
    if old_templates:
        stored = sum(r.accepted for r in services.pipeline.ingest_iter(old_events(), tenant="default"))
        print(f"old templates: {stored:,} events stored in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    stored = sum(r.accepted for r in services.pipeline.ingest_iter(events(), tenant="default"))
    print(f"dense set: {stored:,} events stored in {time.perf_counter() - started:.0f} s")
    with TestClient(create_app(services)) as client:
        top = client.get("/api/v1/groups", params={"window": "7d", "limit": 10}).json()["items"]
        merged = client.post(f"/api/v1/groups/{top[0]['id']}/merge", json={"group_ids": [g["id"] for g in top[1:]]})
        assert merged.status_code == 200, merged.text
        print(f"merged {len(top) - 1} groups into {top[0]['id']}: {merged.json()['members']} member templates")
    services.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--window", default="7d")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--build-dense", type=int, default=0, metavar="N", help="first load the dense set (N events)")
    parser.add_argument(
        "--old-templates", type=int, default=0, metavar="K", help="with --build-dense: K older distinct templates first"
    )
    args = parser.parse_args()
    if args.build_dense:
        build_dense(args.db, args.build_dense, args.old_templates)
    services = build_services(_settings(args.db))
    print(machine())
    with services.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM events")).scalar()
        fingerprinted = conn.execute(text("SELECT count(*) FROM events WHERE fingerprint_id IS NOT NULL")).scalar()
        rows = conn.execute(text("SELECT count(*) FROM rollups WHERE shape = 5")).scalar()
        templates = conn.execute(text("SELECT count(*) FROM fingerprints")).scalar()
    print(f"events {total:,}, fingerprinted {fingerprinted:,}, templates {templates:,}, group rollup rows {rows:,}")
    with TestClient(create_app(services)) as client:
        params = {"window": args.window}

        def listing() -> None:
            r = client.get("/api/v1/groups", params=params)
            assert r.status_code == 200, r.text

        first = client.get("/api/v1/groups", params=params).json()
        print(f"groups in the window: {sum(first['status_counts'].values())}, top count {first['items'][0]['count']:,}")
        gid = first["items"][0]["id"]

        def detail() -> None:
            assert client.get(f"/api/v1/groups/{gid}", params=params).status_code == 200

        listing()
        _report(f"GET /groups?window={args.window}", _timed(listing, args.requests))
        detail()
        _report(f"GET /groups/<top>?window={args.window}", _timed(detail, args.requests))
    end = now_ms()
    start = end - WINDOWS_MS[args.window]
    raw = text(
        "SELECT fingerprint_id, failure_class, failure_kind, count(*) FROM events WHERE tenant = 'default' "
        "AND occurred_at >= :s AND occurred_at < :e AND fingerprint_id IS NOT NULL "
        "GROUP BY fingerprint_id, failure_class, failure_kind"
    )

    def scan() -> None:
        with services.engine.connect() as conn:
            conn.execute(raw, {"s": start, "e": end}).all()

    _report("raw GROUP BY (same window)", _timed(scan, max(3, args.requests // 5)))
    services.engine.dispose()


if __name__ == "__main__":
    main()
