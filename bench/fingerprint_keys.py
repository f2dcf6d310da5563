"""Learning many templates under one key: the word index (classify/fingerprint_pool.py) against aligning every template.

Usage: .venv/bin/python bench/fingerprint_keys.py [--templates 20000] [--scan 2000]

Lines of distinct words (every line a new template) that all start with "Error", so they share one group key, as
the messages of a service that logs "Error: <free text>" do. Timed in one process, fresh Fingerprinter per arm:
- indexed, one key: the shipped fingerprinter, --templates lines;
- indexed, a key each: the same lines with a first word of their own (no key holds more than one template), the
  floor for learning that many templates;
- full scan, one key: every template of the key aligned with each line (KeyPool.within answering all of them, which
  is what the fingerprinter did before the index), --scan lines (it grows with the square of the count), beside the
  indexed fingerprinter on the same --scan lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import distinct_words, machine, made_up_word
from faultlens.classify.fingerprint import Fingerprinter
from faultlens.classify.fingerprint_pool import KeyPool


def lines(n: int, *, own_key: bool = False) -> list[str]:
    """n lines of 4 to 6 words of their own and a number; all keyed "Error" unless `own_key`."""
    out = []
    for k in range(n):
        head = f"{made_up_word(10**6 + k)}:" if own_key else "Error:"
        out.append(f"{head} {distinct_words(k)} gave up on item {k}")
    return out


def learn(batch: list[str]) -> tuple[float, int]:
    """Seconds to learn `batch` into a fresh fingerprinter, and its number of templates."""
    fp = Fingerprinter()
    started = time.perf_counter()
    for line in batch:
        fp.add(line)
    return time.perf_counter() - started, len(fp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=20_000)
    parser.add_argument("--scan", type=int, default=2_000, help="lines for the full-scan arm (quadratic)")
    args = parser.parse_args()
    print(machine())
    rows = []
    seconds, made = learn(lines(args.templates))
    rows.append(("indexed, one key", args.templates, made, seconds))
    seconds, made = learn(lines(args.templates, own_key=True))
    rows.append(("indexed, a key each", args.templates, made, seconds))
    seconds, made = learn(lines(args.scan))
    rows.append(("indexed, one key", args.scan, made, seconds))
    within = KeyPool.within
    KeyPool.within = lambda self, tokens, *, budget, unit: self.groups  # type: ignore[method-assign]
    try:
        seconds, made = learn(lines(args.scan))
    finally:
        KeyPool.within = within  # type: ignore[method-assign]
    rows.append(("full scan, one key", args.scan, made, seconds))
    print(f"{'arm':<22} {'lines':>7} {'templates':>10} {'seconds':>8} {'lines/s':>9}")
    for name, n, made, seconds in rows:
        print(f"{name:<22} {n:>7,} {made:>10,} {seconds:>8.2f} {n / seconds:>9,.0f}")
    print(f"one key / a key each, {args.templates:,} templates: {rows[0][3] / rows[1][3]:.2f}x the time")
    print(f"full scan / indexed, {args.scan:,} templates: {rows[3][3] / rows[2][3]:.1f}x the time")


if __name__ == "__main__":
    main()
