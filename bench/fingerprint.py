"""Benchmark: faultlens fingerprint grouping vs drain3 (default config) on the Loghub 2k samples.

Usage: .venv/bin/python bench/fingerprint.py [--data DIR] [--reps N] [--replay K] [--json FILE]

For every dataset folder <DS> in DIR (default: ../shared/loghub-dev next to the repo) it reads
<DS>/<DS>_2k.log_structured.csv, groups the Content column with both tools and reports grouping
accuracy (GA, as defined in DIR/README.md) against EventId, plus throughput in lines/s. GA is
measured on one pass of the 2k lines into a fresh instance. Throughput replays the 2k lines
`--replay` times into a fresh instance and keeps the best of `--reps` runs (steady-state speed,
repeated messages included, as in a live service); the cold single-pass speed is printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from faultlens.classify.fingerprint import Fingerprinter  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "loghub-dev"


def load_dataset(folder: Path) -> tuple[list[str], list[str]]:
    name = folder.name
    path = folder / f"{name}_2k.log_structured.csv"
    contents: list[str] = []
    truth: list[str] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            contents.append(row["Content"])
            truth.append(row["EventId"])
    return contents, truth


def find_datasets(root: Path) -> list[Path]:
    found = (p for p in root.iterdir() if p.is_dir())
    return sorted(p for p in found if (p / f"{p.name}_2k.log_structured.csv").is_file())


def grouping_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of lines whose predicted group is exactly the set of lines sharing their EventId."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(predicted):
        members[p].append(i)
    truth_sizes = Counter(truth)
    correct = 0
    for lines in members.values():
        events = {truth[i] for i in lines}
        if len(events) == 1 and truth_sizes[next(iter(events))] == len(lines):
            correct += len(lines)
    return correct / len(truth) if truth else 0.0


@contextlib.contextmanager
def _in_empty_dir() -> Iterator[None]:
    # drain3.TemplateMiner() reads ./drain3.ini when present; run it from an empty directory so
    # the baseline really is the default configuration.
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)


def make_drain() -> Any:
    from drain3 import TemplateMiner

    with _in_empty_dir():
        return TemplateMiner()


def run_faultlens(lines: Sequence[str]) -> list[str]:
    fp = Fingerprinter()
    ids = [fp.add(line).id for line in lines]
    # Groups can merge later in the stream; a line belongs to the group its id resolves to now.
    return [fp.resolve(i) for i in ids]


def run_drain(lines: Sequence[str]) -> list[str]:
    miner = make_drain()
    return [str(miner.add_log_message(line)["cluster_id"]) for line in lines]


def _feed_faultlens(lines: Sequence[str]) -> float:
    fp = Fingerprinter()
    add = fp.add
    start = time.perf_counter()
    for line in lines:
        add(line)
    return time.perf_counter() - start


def _feed_drain(lines: Sequence[str]) -> float:
    miner = make_drain()
    add = miner.add_log_message
    start = time.perf_counter()
    for line in lines:
        add(line)
    return time.perf_counter() - start


def speeds(lines: Sequence[str], reps: int) -> tuple[float, float]:
    """Best-of-`reps` lines/s of faultlens and drain3; runs alternate so machine noise hits both."""
    feeds: tuple[Callable[[Sequence[str]], float], ...] = (_feed_faultlens, _feed_drain)
    best = [float("inf"), float("inf")]
    for _ in range(reps):
        for k, feed in enumerate(feeds):
            best[k] = min(best[k], feed(lines))
    return len(lines) / best[0], len(lines) / best[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of Loghub 2k datasets")
    parser.add_argument("--reps", type=int, default=5, help="timing repetitions (best is kept)")
    parser.add_argument("--replay", type=int, default=5, help="times the 2k lines are replayed when timing")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    logging.getLogger("drain3").setLevel(logging.ERROR)

    datasets = find_datasets(args.data)
    if not datasets:
        print(f"no datasets found in {args.data}", file=sys.stderr)
        return 2

    print(
        f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
        f"cpus={os.cpu_count()} | python {platform.python_version()}"
    )
    timing = f"speed = best of {args.reps}, {args.replay}x replay (cold = 1 pass)"
    print(f"data: {args.data} | GA on 1 pass | {timing}")
    header = (
        f"{'dataset':<12} {'GA fl':>7} {'GA drain':>8} {'dGA':>7} {'fl l/s':>9} {'drain l/s':>9} "
        f"{'x':>6} {'fl cold':>9} {'dr cold':>9} {'x':>6} {'#tpl fl':>7} {'#tpl dr':>7} {'#true':>6}"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict[str, Any]] = []
    for folder in datasets:
        lines, truth = load_dataset(folder)
        pred_fl = run_faultlens(lines)
        pred_dr = run_drain(lines)
        lps_fl, lps_dr = speeds(list(lines) * args.replay, args.reps)
        cold_fl, cold_dr = speeds(lines, args.reps)
        row = {
            "dataset": folder.name,
            "ga_faultlens": grouping_accuracy(pred_fl, truth),
            "ga_drain3": grouping_accuracy(pred_dr, truth),
            "lps_faultlens": lps_fl,
            "lps_drain3": lps_dr,
            "cold_lps_faultlens": cold_fl,
            "cold_lps_drain3": cold_dr,
            "lines": len(lines),
            "templates_faultlens": len(set(pred_fl)),
            "templates_drain3": len(set(pred_dr)),
            "templates_true": len(set(truth)),
        }
        rows.append(row)
        _print_row(row)
    print("-" * len(header))
    avg: dict[str, Any] = {"dataset": "AVERAGE"}
    for key in rows[0]:
        if key != "dataset":
            avg[key] = sum(r[key] for r in rows) / len(rows)
    _print_row(avg)
    print()
    print(
        f"average GA: faultlens {avg['ga_faultlens']:.4f} vs drain3 {avg['ga_drain3']:.4f} "
        f"(difference {avg['ga_faultlens'] - avg['ga_drain3']:+.4f})"
    )
    print(
        f"average speed ({args.replay}x replay): faultlens {avg['lps_faultlens']:,.0f} l/s vs drain3 "
        f"{avg['lps_drain3']:,.0f} l/s (ratio {avg['lps_faultlens'] / avg['lps_drain3']:.2f}x)"
    )
    print(
        f"average speed (cold 1 pass): faultlens {avg['cold_lps_faultlens']:,.0f} l/s vs drain3 "
        f"{avg['cold_lps_drain3']:,.0f} l/s (ratio {avg['cold_lps_faultlens'] / avg['cold_lps_drain3']:.2f}x)"
    )
    # Throughput over the whole corpus (total lines / total time): slow datasets weigh more.
    for label, fl_key, dr_key, reps in (
        (f"{args.replay}x replay", "lps_faultlens", "lps_drain3", args.replay),
        ("cold 1 pass", "cold_lps_faultlens", "cold_lps_drain3", 1),
    ):
        total = sum(r["lines"] * reps for r in rows)
        fl = total / sum(r["lines"] * reps / r[fl_key] for r in rows)
        dr = total / sum(r["lines"] * reps / r[dr_key] for r in rows)
        avg[f"overall_{fl_key}"], avg[f"overall_{dr_key}"] = fl, dr
        print(
            f"overall speed ({label}, total lines / total time): faultlens {fl:,.0f} l/s "
            f"vs drain3 {dr:,.0f} l/s (ratio {fl / dr:.2f}x)"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
            "rows": rows,
            "average": avg,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


def _print_row(r: dict[str, Any]) -> None:
    def ratio(a: float, b: float) -> float:
        return a / b if b else float("inf")

    print(
        f"{r['dataset']:<12} {r['ga_faultlens']:>7.4f} {r['ga_drain3']:>8.4f} "
        f"{r['ga_faultlens'] - r['ga_drain3']:>+7.4f} {r['lps_faultlens']:>9,.0f} {r['lps_drain3']:>9,.0f} "
        f"{ratio(r['lps_faultlens'], r['lps_drain3']):>5.2f}x {r['cold_lps_faultlens']:>9,.0f} "
        f"{r['cold_lps_drain3']:>9,.0f} {ratio(r['cold_lps_faultlens'], r['cold_lps_drain3']):>5.2f}x "
        f"{r['templates_faultlens']:>7.0f} {r['templates_drain3']:>7.0f} {r['templates_true']:>6.0f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
