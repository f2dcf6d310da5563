"""How often the canary judgement fails a canary that is the same build as its baseline (a false alarm), by level.

Both arms draw their durations from one distribution: 1-4 ms of work plus an exponential wait of mean 1.5 ms (a
busy machine's scheduling), no failures, 900 baseline against 300 canary outcomes (a 25% split) unless told
otherwise. A single analysis fails by chance about alpha times the share of rejections whose tail shift passes the
latency tolerance; a rollback needs two failing analyses in a row (FAULTLENS_RELEASE_ROLLBACK_AFTER_FAILURES), whose
chance is the square for two independent windows.

    .venv/bin/python bench/canary_false_alarms.py [--trials 4000] [--baseline 900] [--canary 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

from faultlens.releases import canary
from faultlens.store.release_samples import ArmStats


def false_alarm_rate(alpha: float, *, trials: int, n_base: int, n_canary: int, seed: int) -> tuple[float, int]:
    """The share of `trials` analyses of two identical arms that fail, and how many were inconclusive."""
    rng = random.Random(seed)

    def durations(n: int) -> list[float]:
        return [rng.uniform(1.0, 4.0) + rng.expovariate(1 / 1.5) for _ in range(n)]

    failed = inconclusive = 0
    for _ in range(trials):
        base = ArmStats("v1", n_base, 0, 0, durations(n_base))
        cand = ArmStats("v2", n_canary, 0, 0, durations(n_canary))
        verdict = canary.judge(base, cand, alpha=alpha, min_samples=200, ratio=n_canary / (n_base + n_canary)).verdict
        failed += verdict == canary.FAIL
        inconclusive += verdict == canary.INCONCLUSIVE
    return failed / trials, inconclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--baseline", type=int, default=900)
    parser.add_argument("--canary", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"# {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {' '.join(sys.argv)}")
    print(f"# identical arms, {args.baseline} baseline against {args.canary} canary outcomes, {args.trials} trials")
    print("alpha   one analysis fails   two in a row   inconclusive   seconds")
    for alpha in (0.05, 0.01, 0.005, 0.001):
        start = time.perf_counter()
        rate, inconclusive = false_alarm_rate(
            alpha, trials=args.trials, n_base=args.baseline, n_canary=args.canary, seed=args.seed
        )
        took = time.perf_counter() - start
        print(f"{alpha:<7g} {rate * 100:>17.2f}%   {rate * rate * 100:>11.4f}%   {inconclusive:>12}   {took:>7.1f}")


if __name__ == "__main__":
    main()
