"""/healthz latency: an empty database, a 1M-event one, and the same while a backfill of it runs.

Usage: .venv/bin/python bench/healthz.py [--events 1000000] [--requests 300] [--workdir data/bench]
The 1M data set is bench/query.py's (built when missing) and is copied first, so the backfill never touches
it. Each server is `uvicorn faultlens.api.asgi:app` with its job runner on; /healthz is asked --requests
times over one keep-alive connection and p50/p95 reported. The empty database is the baseline in the same run.
Goal: the same on every database, and never blocked by a backfill.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine, start_server
from backfill import PACK, copy_sqlite
from query import build, percentile


def timings(client: httpx.Client, requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get("/healthz").raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def serve(url: str) -> tuple[object, str]:
    port = free_port()
    proc = start_server(port, {"FAULTLENS_DATABASE_URL": url, "FAULTLENS_START_JOBS": "true"})
    return proc, f"http://127.0.0.1:{port}"


def report(label: str, samples: list[float]) -> None:
    print(f"{label:<34} p50 {percentile(samples, 0.5):6.2f} ms   p95 {percentile(samples, 0.95):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=Path("data/bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = (args.workdir / f"sqlite-{args.events}.db").resolve()
    print(f"machine: {machine()}")
    print(f"data set: {build(f'sqlite:///{source}', args.events)}")
    empty = args.workdir / "healthz-empty.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{empty}{suffix}").unlink(missing_ok=True)
    for label, url in (
        ("empty database", f"sqlite:///{empty.resolve()}"),
        (f"{args.events:,} events", copy_sqlite(source, args.workdir / "healthz-full.db")),
    ):
        proc, base = serve(url)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                timings(client, 20)  # warm-up
                report(label, timings(client, args.requests))
                if label == "empty database":
                    continue
                r = client.post("/api/v1/rules/activate", json=PACK)
                r.raise_for_status()
                job_id = r.json()["backfill"]["id"]
                during: list[float] = []
                state = "pending"
                while state not in ("done", "failed"):
                    during += timings(client, 20)
                    state = client.get(f"/api/v1/jobs/{job_id}").json()["state"]
                report(f"{label}, backfill running", during)
                print(f"backfill ended {state}; {len(during)} requests while it ran")
        finally:
            proc.terminate()  # type: ignore[attr-defined]
            proc.wait(10)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
