"""/healthz and a read while batches are ingested: the serving process's interpreter settings against Python's own.

Usage: .venv/bin/python bench/healthz_ingest.py [--events 40000] [--senders 2] [--rounds 2] [--templates]

Each arm is a fresh `uvicorn --factory faultlens.api.asgi:app` on a fresh SQLite file, jobs off:
  served    the defaults (process_tuning.py): switch interval 1 ms, the objects held at start frozen;
  python    the baseline, the same server with Python's own: FAULTLENS_GIL_SWITCH_INTERVAL_MS=5,
            FAULTLENS_GC_FREEZE_AT_START=false.
The arms alternate, --rounds times. In each, --senders sender processes post bench/ingest.py's realistic mix in
1,000-event batches (--events each, every id new) while one prober asks GET /healthz and GET /api/v1/stats/summary
in turn, a request every 50 ms, until the senders are done. With --templates every failure message is made of
words no other message has (a tenant whose messages keep making new templates). Reported per arm and round: p50,
p95, p99 and the slowest answer of each route, ingest events/s, and the ratio of served to python.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import distinct_words, free_port, machine, start_server
from ingest import realistic
from query import percentile

ARMS: dict[str, dict[str, str]] = {
    "served": {},
    "python": {"FAULTLENS_GIL_SWITCH_INTERVAL_MS": "5", "FAULTLENS_GC_FREEZE_AT_START": "false"},
}
ROUTES = ("/healthz", "/api/v1/stats/summary")


def bodies(events: int, seed: int, templates: bool) -> list[bytes]:
    raw = list(realistic(events, seed=seed))
    if templates:
        for i, event in enumerate(raw):
            if event["status"] != "success":
                event["error_message"] = f"{distinct_words(seed * 10**7 + i)} failed with code {i}"
    return [orjson.dumps(raw[i : i + 1000]) for i in range(0, len(raw), 1000)]


def send(base: str, share: list[bytes], out: Any) -> None:
    accepted = 0
    with httpx.Client(base_url=base, timeout=120) as client:
        started = time.perf_counter()
        for body in share:
            r = client.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
            r.raise_for_status()
            accepted += r.json()["accepted"]
        out.put((accepted, time.perf_counter() - started))


def run_arm(env: dict[str, str], shares: list[list[bytes]]) -> tuple[dict[str, list[float]], float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'h.db'}"
        proc = start_server(port, {"FAULTLENS_DATABASE_URL": url, "FAULTLENS_START_JOBS": "false", **env})
        try:
            out: Any = mp.Queue()
            senders = [mp.Process(target=send, args=(base, share, out)) for share in shares]
            for sender in senders:
                sender.start()
            samples: dict[str, list[float]] = {route: [] for route in ROUTES}
            with httpx.Client(base_url=base, timeout=30) as client:
                turn = 0
                while any(s.is_alive() for s in senders):
                    route = ROUTES[turn % len(ROUTES)]
                    started = time.perf_counter()
                    client.get(route).raise_for_status()
                    samples[route].append((time.perf_counter() - started) * 1000)
                    turn += 1
                    time.sleep(0.05)
            results = [out.get(timeout=10) for _ in senders]
            for sender in senders:
                sender.join()
                if sender.exitcode != 0:
                    raise SystemExit(f"a sender failed (exit {sender.exitcode})")
        finally:
            proc.terminate()
            proc.wait(10)
    rate = sum(r[0] for r in results) / max(r[1] for r in results)
    return samples, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=40_000, help="events per sender")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--templates", action="store_true", help="every failure message makes a new template")
    args = parser.parse_args()
    shares = [bodies(args.events, seed + 1, args.templates) for seed in range(args.senders)]
    print(f"machine: {machine()}")
    print(f"{args.senders} senders x {args.events:,} events in 1,000-event batches; "
          f"{'a new template per failure' if args.templates else 'realistic mix'}; SQLite")  # fmt: skip
    p50: dict[str, dict[str, list[float]]] = {arm: {r: [] for r in ROUTES} for arm in ARMS}
    p95: dict[str, dict[str, list[float]]] = {arm: {r: [] for r in ROUTES} for arm in ARMS}
    rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for round_no in range(1, args.rounds + 1):
        for arm, env in ARMS.items():
            samples, rate = run_arm(env, shares)
            rates[arm].append(rate)
            for route, got in samples.items():
                p50[arm][route].append(percentile(got, 0.5))
                p95[arm][route].append(percentile(got, 0.95))
                print(f"round {round_no} {arm:<6} {route:<22} n {len(got):>4}  p50 {percentile(got, 0.5):7.1f}  "
                      f"p95 {percentile(got, 0.95):7.1f}  p99 {percentile(got, 0.99):7.1f}  "
                      f"max {max(got):7.1f} ms")  # fmt: skip
            print(f"round {round_no} {arm:<6} ingest {rate:,.0f} events/s; load average {os.getloadavg()[0]:.2f}")
    for route in ROUTES:
        r50 = sum(p50["served"][route]) / sum(p50["python"][route])
        r95 = sum(p95["served"][route]) / sum(p95["python"][route])
        print(f"{route}: served/python p50 {r50:.2f}x, p95 {r95:.2f}x (sums over rounds)")
    print(f"ingest: served/python {sum(rates['served']) / sum(rates['python']):.2f}x")


if __name__ == "__main__":
    main()
