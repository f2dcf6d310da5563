"""Alert latency: from a condition becoming true to the receiver's call, against the evaluation interval + 5 s.

Usage: .venv/bin/python bench/alerts.py [--trials 12] [--interval S] [--spread 6] [--load EVENTS_S] [--pg]
       [--seed N] [--quick]

A real `faultlens serve` process on a fresh SQLite file (with --pg, a scratch PostgreSQL database on the
FAULTLENS_TEST_PG server, created and dropped here) evaluates alerts every --interval seconds (default: one run at
30 s, the default setting, and one at 5 s) and delivers them to a receiver in this process that records when each
call arrives. The routing file has `for: 0s` on every level and `group_wait: 0s`, so the measured path is
evaluation + outbox + delivery; a deployment's `for` and `group_wait` are policy delays added on top of it.

Each trial makes a new condition true: two retries past their max_attempts (the silent retry loop, P1) of a source
of its own, ingested over HTTP. "Condition true" is the moment that POST returns; the trial ends when the
receiver's call carrying the firing alert of that source arrives. latency = arrival - condition true. Trials start
at random moments spread over --spread evaluation intervals of one server run, so their phase in the evaluation
cycle is uniform; each is still one condition and one receiver call. --load sends that many ordinary events per
second (mostly successes, a few failures, on other sources) from a thread meanwhile.

p95 is the nearest-rank percentile (with 12 trials, the slowest one). Goal: p95 < interval + 5 s.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, free_port, machine, pg_database, wait_healthy
from _receiver import Call, Receiver

SLACK_S = 5.0


@dataclass(frozen=True)
class Trial:
    """One condition: when it became true and when its alert reached the receiver (None: it never did)."""

    source: str
    offset_s: float
    latency_s: float | None
    waited_s: float | None  # condition true -> the evaluation that fired it (the alert's starts_at)
    delivered_s: float | None  # that evaluation -> the receiver's call (evaluation, outbox, delivery)


@dataclass(frozen=True)
class RunResult:
    interval_s: float
    database: str
    trials: list[Trial]
    load_sent: int
    load_seconds: float
    calls: int


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat().replace("+00:00", "Z")


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def routing_file(path: Path, receiver_url: str) -> Path:
    """No pending delay and no group wait: only evaluation, the outbox and delivery stand between."""
    doc = {
        "version": 1,
        "for": {"P0": "0s", "P1": "0s", "P2": "0s"},
        "defaults": {"group_wait": "0s", "repeat_interval": "4h"},
        "receivers": [{"name": "bench", "type": "webhook", "url": receiver_url, "timeout": "5s"}],
    }
    path.write_bytes(orjson.dumps(doc))  # JSON is YAML
    return path


def start_serve(port: int, db_url: str, routing: Path, interval_s: float, log: Path) -> subprocess.Popen[bytes]:
    """`faultlens serve` as deployed, with the evaluation interval under test; returns once /healthz answers."""
    env = {
        **os.environ,
        "FAULTLENS_ALERT_ROUTING_FILE": str(routing),
        "FAULTLENS_ALERT_EVAL_INTERVAL_S": str(interval_s),
        "FAULTLENS_TASK_SYNC_INTERVAL_S": "0",  # no task stores here
        "FAULTLENS_LOG_LEVEL": "warning",
    }
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faultlens.cli", "serve", "--port", str(port), "--db", db_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return wait_healthy(proc, port, failure=lambda: f"faultlens serve did not start:\n{log.read_text()[-2000:]}")


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def loop_events(source: str) -> list[dict[str, Any]]:
    """Two retries past max_attempts with one reason, occurring now: the silent retry loop of `source`."""
    now = _iso(time.time())
    return [
        {
            "id": f"{source}-{i}",
            "source": source,
            "item_type": "task",
            "status": "retry",
            "operation": "charge-card",
            "attempt": 4 + i,
            "max_attempts": 3,
            "error_message": "card processor answered 503",
            "occurred_at": now,
        }
        for i in range(2)
    ]


def carries_firing(call: Call, source: str) -> bool:
    body = call.body if isinstance(call.body, dict) else {}
    return any(
        a.get("status") == "firing"
        and a.get("name") == "silent_retry_loop"
        and (a.get("labels") or {}).get("source") == source
        for a in body.get("alerts") or []
    )


def run_trial(
    base: str, receiver: Receiver, source: str, *, started: float, offset_s: float, timeout_s: float
) -> Trial:
    time.sleep(max(0.0, started + offset_s - time.monotonic()))
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/api/v1/events", content=orjson.dumps(loop_events(source)), headers=_JSON).raise_for_status()
    true_at, true_wall_ms = time.monotonic(), time.time_ns() // 1_000_000
    call = receiver.wait_for(lambda c: carries_firing(c, source), timeout_s=timeout_s)
    if call is None:
        return Trial(source, offset_s, None, None, None)
    alert = next(a for a in call.body["alerts"] if (a.get("labels") or {}).get("source") == source)
    starts_ms = _ms(alert["starts_at"])
    return Trial(
        source,
        offset_s,
        latency_s=call.arrived - true_at,
        waited_s=(starts_ms - true_wall_ms) / 1000,
        delivered_s=(call.arrived_wall_ms - starts_ms) / 1000,
    )


_JSON = {"content-type": "application/json"}


class Load(threading.Thread):
    """Ordinary traffic at `rate` events/s in five batches a second: successes and 3% failures on other sources."""

    def __init__(self, base: str, rate: float) -> None:
        super().__init__(name="bench-load", daemon=True)
        self.base, self.rate = base, rate
        self.sent = 0
        self.seconds = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        per_batch = max(1, round(self.rate / 5))
        started = time.monotonic()
        n = 0
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._halt.is_set():
                now = _iso(time.time())
                batch = []
                for _ in range(per_batch):
                    n += 1
                    failed = rng.random() < 0.03
                    event: dict[str, Any] = {
                        "source": f"bench-load-{n % 4}",
                        "item_type": "request",
                        "operation": "GET /items/{id}",
                        "status": "failure" if failed else "success",
                        "http_status": 504 if failed else 200,
                        "duration_ms": round(rng.uniform(5, 200), 1),
                        "occurred_at": now,
                    }
                    if failed:
                        event["error_message"] = "upstream timed out"
                    batch.append(event)
                try:
                    r = client.post("/api/v1/events", content=orjson.dumps(batch), headers=_JSON)
                    r.raise_for_status()
                    self.sent += int(r.json()["accepted"])
                except httpx.HTTPError as exc:
                    print(f"load: {type(exc).__name__}", file=sys.stderr)
                # Paced against the start, so a slow answer is caught up rather than lowering the rate.
                self._halt.wait(max(0.0, started + n / self.rate - time.monotonic()))
        self.seconds = time.monotonic() - started

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def run(interval_s: float, trials: int, *, spread: float, load: float, pg: bool, rng: random.Random) -> RunResult:
    """One server run at `interval_s` with `trials` conditions made true at random moments."""
    tag = f"{int(interval_s * 1000)}ms-{os.getpid()}"
    pg_name = f"faultlens_bench_alerts_{tag.replace('-', '_')}"
    with ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
        receiver = cleanup.enter_context(Receiver())
        if pg:
            db_url = pg_database(pg_name, fresh=True)
            cleanup.callback(drop_pg, pg_name)
        else:
            db_url = f"sqlite:///{work / 'alerts.db'}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_serve(port, db_url, routing_file(work / "routing.yaml", receiver.url), interval_s, work / "log")
        cleanup.callback(stop_serve, proc)
        loader = Load(base, load) if load > 0 else None
        if loader is not None:
            loader.start()
            cleanup.callback(loader.stop)  # callbacks run last first: the load stops before the server
        offsets = sorted(rng.uniform(0, spread * interval_s) for _ in range(trials))
        started = time.monotonic()
        timeout_s = 3 * interval_s + 30
        with ThreadPoolExecutor(trials) as pool:
            futures = [
                pool.submit(
                    run_trial,
                    base,
                    receiver,
                    f"bench-loop-{tag}-{k}",
                    started=started,
                    offset_s=offset,
                    timeout_s=timeout_s,
                )
                for k, offset in enumerate(offsets)
            ]
            results = [f.result() for f in futures]
        if loader is not None:
            loader.stop()
        return RunResult(
            interval_s,
            "PostgreSQL" if pg else "SQLite",
            results,
            loader.sent if loader else 0,
            loader.seconds if loader else 0.0,
            len(receiver.calls),
        )


def p95(values: list[float]) -> float:
    """Nearest rank: the smallest value with at least 95% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _triple(values: list[float]) -> str:
    return f"p50 {statistics.median(values):6.2f} s  p95 {p95(values):6.2f} s  max {max(values):6.2f} s"


def report(result: RunResult) -> bool:
    got = [t for t in result.trials if t.latency_s is not None]
    missing = len(result.trials) - len(got)
    budget = result.interval_s + SLACK_S
    load = f", load {result.load_sent / result.load_seconds:,.0f} events/s" if result.load_seconds else ""
    print(f"\nevaluation interval {result.interval_s:g} s, {result.database}{load}")
    print(f"  trials            : {len(result.trials)} ({missing} without a receiver call)")
    if not got:
        print(f"  FAIL: no alert reached the receiver ({result.calls} calls)")
        return False
    latencies = [t.latency_s for t in got if t.latency_s is not None]
    waited = [t.waited_s for t in got if t.waited_s is not None]
    delivered = [t.delivered_s for t in got if t.delivered_s is not None]
    print(f"  condition -> call : {_triple(latencies)}")
    print(f"    until evaluated : {_triple(waited)}")
    print(f"    evaluated->call : {_triple(delivered)}")
    ratio = p95(latencies) / budget
    ok = missing == 0 and ratio < 1
    verdict = "PASS" if ok else "FAIL"
    print(f"  budget            : {budget:g} s (interval + {SLACK_S:g} s); p95/budget {ratio:.2f}: {verdict}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--interval", type=float, help="evaluation interval in seconds (default: runs at 30 and 5)")
    parser.add_argument("--spread", type=float, default=6, help="trials start within this many intervals")
    parser.add_argument("--load", type=float, default=0, help="ordinary events per second sent meanwhile")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (a scratch database) instead of SQLite")
    parser.add_argument("--seed", type=int, help="seed of the trials' moments (default: from the clock)")
    parser.add_argument("--quick", action="store_true", help="interval 2 s, 5 trials: under a minute")
    args = parser.parse_args()
    if args.quick:
        intervals, trials, spread = [2.0], 5, 4.0
    else:
        intervals, trials, spread = ([args.interval] if args.interval else [30.0, 5.0]), args.trials, args.spread
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000
    rng = random.Random(seed)
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}  (seed {seed})")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("routing: for 0s, group_wait 0s (policy delays a deployment adds on top); receiver: webhook, in process")
    ok = True
    for interval in intervals:
        result = run(interval, trials, spread=spread, load=args.load, pg=args.pg, rng=rng)
        ok = report(result) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
