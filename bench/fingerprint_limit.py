"""A tenant whose messages keep making new templates: the fingerprinter's limit against none, in one run.

Usage: .venv/bin/python bench/fingerprint_limit.py [--lines 100000] [--limit 20000] [--every 20000]

Feeds --lines failure messages, each made of words no other has (every one a new template, half of them under one
group key "Error", half under a key of their own), into a Fingerprinter with max_templates=--limit (the service's
default, FAULTLENS_FINGERPRINT_MAX_TEMPLATES) and into one without a limit, each in a fresh process. Every --every
lines it reports the templates held, the memory the fingerprinter holds (tracemalloc), the time of a full garbage
collection (which stops every thread of a server) and the size and time of a save (export_state + orjson.dumps).
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import distinct_words, machine
from faultlens.classify.fingerprint import Fingerprinter


def line(k: int) -> str:
    words = distinct_words(k)
    return f"Error {words} gave up on item {k}" if k % 2 else f"{words} gave up on item {k}"


def run(lines: int, limit: int | None, every: int) -> None:
    tracemalloc.start()
    fp = Fingerprinter(max_templates=limit)
    started = time.perf_counter()
    for k in range(1, lines + 1):
        fp.add(line(k))
        if k % every == 0:
            learnt = time.perf_counter() - started
            held = tracemalloc.get_traced_memory()[0] / 2**20
            t = time.perf_counter()
            gc.collect()
            collect_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            saved = orjson.dumps(fp.export_state())
            save_ms = (time.perf_counter() - t) * 1000
            name = "none" if limit is None else f"{limit:,}"
            print(f"{name:>7} {k:>8,} {len(fp):>10,} {learnt:>8.1f} {held:>8.0f} {collect_ms:>11.0f} "
                  f"{len(saved) / 2**20:>9.1f} {save_ms:>8.0f}", flush=True)  # fmt: skip
            started += time.perf_counter() - t + collect_ms / 1000  # the learning time only: not the GC and save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=20_000)
    parser.add_argument("--arm", choices=["limit", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        run(args.lines, args.limit if args.arm == "limit" else None, args.every)
        return
    print(f"machine: {machine()}")
    print("(memory: tracemalloc, which slows learning; times are for comparing the two arms)")
    print(f"{'limit':>7} {'lines':>8} {'templates':>10} {'learn s':>8} {'held MB':>8} "
          f"{'full GC ms':>11} {'saved MB':>9} {'save ms':>8}")  # fmt: skip
    for arm in ("limit", "none"):
        argv = [sys.executable, __file__, "--arm", arm, "--lines", str(args.lines), "--limit", str(args.limit)]
        subprocess.run([*argv, "--every", str(args.every)], check=True)


if __name__ == "__main__":
    main()
