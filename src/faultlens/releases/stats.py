"""The canary statistics, pure and stdlib only: one-sided two-proportion z test, Mann-Whitney U (normal
approximation), the power of the proportion test, sample-ratio chi-square and linear quantiles.

Each matches its scipy/numpy counterpart to 1e-9 (tests/unit/test_canary_stats.py); scipy is a test dependency
only, so the server carries none of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class TestResult:
    """A test's statistic and its one-sided p-value (1.0 when the samples hold no evidence either way)."""

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    p_value: float


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z; erfc keeps the far tail exact where 1 - cdf would round to 0."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_proportion_test(x_base: int, n_base: int, x_canary: int, n_canary: int) -> TestResult:
    """Pooled two-proportion z test, H1: the canary's rate is greater than the baseline's."""
    if n_base <= 0 or n_canary <= 0:
        return TestResult(0.0, 1.0)
    pooled = (x_base + x_canary) / (n_base + n_canary)
    variance = pooled * (1.0 - pooled) * (1.0 / n_base + 1.0 / n_canary)
    if variance <= 0.0:
        # Both rates 0 (or both 1): equal, no evidence of an increase.
        return TestResult(0.0, 1.0)
    z = (x_canary / n_canary - x_base / n_base) / math.sqrt(variance)
    return TestResult(z, normal_sf(z))


def _average_ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """1-based ranks of `values` (ties get their average rank) and the sizes of the tied groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def mann_whitney_u(baseline: Sequence[float], canary: Sequence[float]) -> TestResult:
    """Mann-Whitney U, H1: the canary is stochastically greater; normal approximation with tie and continuity
    corrections, = scipy.stats.mannwhitneyu(canary, baseline, alternative="greater", method="asymptotic").

    The statistic is the canary sample's U.
    """
    n_c, n_b = len(canary), len(baseline)
    if n_c == 0 or n_b == 0:
        return TestResult(0.0, 1.0)
    ranks, ties = _average_ranks([*canary, *baseline])
    u_canary = sum(ranks[:n_c]) - n_c * (n_c + 1) / 2.0
    n = n_c + n_b
    tie_term = sum(t**3 - t for t in ties)
    variance = n_c * n_b / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:
        # Every value equal: nothing tells the samples apart.
        return TestResult(u_canary, 1.0)
    z = (u_canary - n_c * n_b / 2.0 - 0.5) / math.sqrt(variance)
    return TestResult(u_canary, min(1.0, max(0.0, normal_sf(z))))


def power_two_proportions(p_base: float, effect: float, n_base: int, n_canary: int, alpha: float) -> float:
    """Power of the one-sided pooled test at level `alpha` to detect a canary rate of p_base + effect.

    Normal approximation: the pooled standard error under H0 sets the critical difference, the unpooled one under
    H1 its spread.
    """
    if n_base <= 0 or n_canary <= 0 or effect <= 0.0:
        return 0.0
    p1 = min(max(p_base, 0.0), 1.0)
    p2 = min(p1 + effect, 1.0)
    diff = p2 - p1
    if diff <= 0.0:
        return 0.0
    pooled = (n_base * p1 + n_canary * p2) / (n_base + n_canary)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_base + 1.0 / n_canary))
    se1 = math.sqrt(p1 * (1.0 - p1) / n_base + p2 * (1.0 - p2) / n_canary)
    if se1 <= 0.0:
        # Both rates degenerate (0 and 1): any sample shows the difference.
        return 1.0
    critical = _NORMAL.inv_cdf(1.0 - alpha) * se0
    return _NORMAL.cdf((diff - critical) / se1)


def sample_ratio_test(n_base: int, n_canary: int, ratio: float) -> TestResult:
    """Chi-square goodness of fit (1 degree of freedom) of the arms' sizes to the canary share `ratio`.

    A small p-value is a sample ratio mismatch: the traffic split is not what the rollout set, so the arms may
    differ in more than the release.
    """
    n = n_base + n_canary
    if n <= 0 or not 0.0 < ratio < 1.0:
        return TestResult(0.0, 1.0)
    expected_c, expected_b = n * ratio, n * (1.0 - ratio)
    chi2 = (n_canary - expected_c) ** 2 / expected_c + (n_base - expected_b) ** 2 / expected_b
    # The chi-square survival function with one degree of freedom: P(Z^2 > x) = erfc(sqrt(x / 2)).
    return TestResult(chi2, math.erfc(math.sqrt(chi2 / 2.0)))


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between order statistics (numpy.quantile's default method)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be within [0, 1]")
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    if lo + 1 >= len(ordered):
        return float(ordered[-1])
    a, b, t = float(ordered[lo]), float(ordered[lo + 1]), h - lo
    # numpy's lerp: from the nearer end, so the result never leaves [a, b] by rounding.
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)
