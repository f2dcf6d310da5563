"""Latency of the rest of the API while task calls hang on a Redis that never answers, against the same idle.

Usage: .venv/bin/python bench/redis_hang.py [--concurrency 60] [--requests 50] [--redis-timeout 2] [--window S]
One `uvicorn faultlens.api.asgi:app` on an empty SQLite database, FAULTLENS_REDIS_URL pointing at a black hole
(a local TCP listener in this process that accepts connections and never answers) and
FAULTLENS_REDIS_TIMEOUT_S set to --redis-timeout; its background jobs run, so the task sync hangs on the black
hole too, as it would. Baseline: GET /api/v1/stats/summary and /healthz alternating on one keep-alive
connection, in rounds of --requests each until --window seconds (default twice the deadline) have passed, with
no task call in flight. Under hang: the same while --concurrency clients keep GET /api/v1/tasks/failed in flight
without pause (each starts its next call as the last one ends), from the first connection a task call opens on
the black hole; the window spans waves of task calls timing out and restarting. Reports p50/p95/max of both,
their ratio (under hang / baseline), the status codes of the task calls and the slowest one.
Goal: the ratio near 1 (Redis work has its own threads), every task call a 503 within the deadline + 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine, start_server
from query import percentile

PROBES = ("/api/v1/stats/summary", "/healthz")
TASKS = "/api/v1/tasks/failed"


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="black-hole", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read from nor written to

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def probe_for(client: httpx.Client, requests: int, seconds: float) -> dict[str, list[float]]:
    """Rounds of `probe` until `seconds` have passed (at least one round)."""
    out: dict[str, list[float]] = {path: [] for path in PROBES}
    started = time.perf_counter()
    while not out[PROBES[0]] or time.perf_counter() - started < seconds:
        for path, samples in probe(client, requests).items():
            out[path] += samples
    return out


def probe(client: httpx.Client, requests: int) -> dict[str, list[float]]:
    """`requests` timed GETs of each PROBES path, alternating; milliseconds per path."""
    out: dict[str, list[float]] = {path: [] for path in PROBES}
    for _ in range(requests):
        for path in PROBES:
            started = time.perf_counter()
            client.get(path).raise_for_status()
            out[path].append((time.perf_counter() - started) * 1000)
    return out


class TaskLoad:
    """`concurrency` clients each calling TASKS back to back on their own event loop thread until stopped."""

    def __init__(self, base: str, concurrency: int, client_timeout: float) -> None:
        self.base, self.concurrency, self.client_timeout = base, concurrency, client_timeout
        self.statuses: collections.Counter[str] = collections.Counter()
        self.durations: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="task-load", daemon=True)

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                status = str((await client.get(TASKS)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.durations.append(time.perf_counter() - started)
            self.statuses[status] += 1

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=self.client_timeout, limits=limits) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.concurrency)))

    def __enter__(self) -> TaskLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()  # calls in flight finish first (each ends at the server's deadline)
        self._thread.join(self.client_timeout + 5)


def row(path: str, state: str, samples: list[float]) -> str:
    return (
        f"{path:<24} {state:<11} {percentile(samples, 0.5):8.2f} {percentile(samples, 0.95):8.2f} {max(samples):8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=60, help="task calls kept in flight")
    parser.add_argument("--requests", type=int, default=50, help="requests per probed path, each phase")
    parser.add_argument("--redis-timeout", type=float, default=2.0, help="FAULTLENS_REDIS_TIMEOUT_S of the server")
    parser.add_argument(
        "--window", type=float, default=None, help="seconds to keep probing under hang (default: 2 x the deadline)"
    )
    args = parser.parse_args()
    if args.window is None:
        args.window = 2 * args.redis_timeout
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="faultlens-bench-redis-hang-") as tmp, BlackHole() as hole:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "FAULTLENS_DATABASE_URL": f"sqlite:///{Path(tmp) / 'hang.db'}",
            "FAULTLENS_REDIS_URL": f"redis://127.0.0.1:{hole.port}/0",
            "FAULTLENS_REDIS_TIMEOUT_S": str(args.redis_timeout),
        }
        proc: subprocess.Popen[bytes] = start_server(port, env)
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                probe(client, 10)  # warm-up
                idle = probe_for(client, args.requests, args.window)
                before = len(hole.accepted)  # the server's task sync has its own connection
                with TaskLoad(base, args.concurrency, client_timeout=args.redis_timeout + 30) as load:
                    deadline = time.monotonic() + 30
                    while len(hole.accepted) == before:  # a task call has reached Redis: the hang is on
                        if time.monotonic() > deadline:
                            raise SystemExit("no task call reached the black hole within 30 s")
                        time.sleep(0.01)
                    probing_started = time.perf_counter()
                    hung = probe_for(client, args.requests, args.window)
                    probing_s = time.perf_counter() - probing_started
        finally:
            proc.terminate()
            proc.wait(10)
        connections = len(hole.accepted)
    print(
        f"server: empty SQLite database, Redis = a black hole, FAULTLENS_REDIS_TIMEOUT_S={args.redis_timeout:g}; "
        f"requests per path: idle {len(idle[PROBES[0]])}, under hang {len(hung[PROBES[0]])}"
    )
    print()
    print(f"{'path':<24} {'state':<11} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for path in PROBES:
        print(row(path, "idle", idle[path]))
        print(row(path, "under hang", hung[path]))
    print()
    for path in PROBES:
        p50 = percentile(hung[path], 0.5) / percentile(idle[path], 0.5)
        p95 = percentile(hung[path], 0.95) / percentile(idle[path], 0.95)
        print(f"{path:<24} under hang / idle: p50 {p50:.2f}x   p95 {p95:.2f}x")
    print()
    slowest = max(load.durations)
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(load.statuses.items()))
    print(
        f"task calls: {len(load.durations)} by {args.concurrency} concurrent clients over {probing_s:.1f} s of "
        f"probing; status codes {{{codes}}}; black-hole connections {connections}"
    )
    verdict = "ok" if slowest <= args.redis_timeout + 1 and set(load.statuses) == {"503"} else "MISSED"
    print(
        f"slowest task call: {slowest:.2f} s (deadline {args.redis_timeout:g} s, goal: every call a 503 within "
        f"{args.redis_timeout + 1:g} s): {verdict}"
    )


if __name__ == "__main__":
    main()
