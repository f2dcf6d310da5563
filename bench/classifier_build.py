"""Building the classifier for the shipped packs: what every start, activation, tenant stack and rule preview pays.

The baseline arm is the same build with the substring index counting each core's samples by searching every sample
for every run (`run in sample`), the way the index counted them before `prefilter.samples_holding`. Arms alternate in
one process, so the ratio holds on a noisy machine.

    .venv/bin/python bench/classifier_build.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from faultlens.classify import prefilter
from faultlens.classify.engine import Classifier
from faultlens.classify.rules import RulePack
from faultlens.services import load_packs
from faultlens.settings import Settings


def searched_in_every_sample(runs: set[str], samples: Sequence[str]) -> dict[str, int]:
    return {run: sum(1 for text in samples if run in text) for run in runs}


def timed_build(packs: list[RulePack], count: Callable[[set[str], Sequence[str]], dict[str, int]]) -> float:
    prefilter.samples_holding = count  # type: ignore[assignment]
    start = time.perf_counter()
    Classifier(packs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    packs = load_packs(Settings(database_url="sqlite://"))
    new = prefilter.samples_holding
    rules = sum(len(p.rules) for p in packs)
    runs, samples = _runs_and_samples(packs)
    assert new(runs, samples) == searched_in_every_sample(runs, samples)
    timed_build(packs, new)  # warm imports and regex caches for both arms
    arms: dict[str, list[float]] = {"samples_holding": [], "search every sample": []}
    for _ in range(args.rounds):
        arms["samples_holding"].append(timed_build(packs, new))
        arms["search every sample"].append(timed_build(packs, searched_in_every_sample))
    prefilter.samples_holding = new
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"# shipped packs: {len(packs)}, rules: {rules}, alternating rounds: {args.rounds}")
    medians = {name: statistics.median(times) for name, times in arms.items()}
    for name, times in arms.items():
        print(f"{name:>22}: median {medians[name] * 1000:7.1f} ms, min {min(times) * 1000:7.1f} ms")
    print(f"ratio new/baseline (medians): {medians['samples_holding'] / medians['search every sample']:.2f}x")


def _runs_and_samples(packs: list[RulePack]) -> tuple[set[str], list[str]]:
    """The runs and samples the index counts for the shipped packs (captured from one build)."""
    seen: dict[str, tuple[set[str], list[str]]] = {}
    real = prefilter.samples_holding

    def capture(runs: set[str], samples: Sequence[str]) -> dict[str, int]:
        seen["args"] = (set(runs), list(samples))
        return real(runs, samples)

    prefilter.samples_holding = capture
    try:
        Classifier(packs)
    finally:
        prefilter.samples_holding = real
    return seen["args"]


if __name__ == "__main__":
    main()
