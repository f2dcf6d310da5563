"""The canary statistics against scipy and numpy on fixed samples, and the judgement's verdict rules."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats as sp  # type: ignore[import-untyped]

from faultlens.releases import stats
from faultlens.releases.canary import FAIL, INCONCLUSIVE, PASS, ArmStats, judge

TOL = 1e-9


def _samples() -> list[tuple[str, list[float], list[float]]]:
    rng = random.Random(16)
    return [
        ("small, no ties", [1.5, 2.25, 3.0, 7.0, 9.5], [2.0, 4.0, 8.0, 10.5, 11.0, 12.5]),
        ("ties across arms", [1, 2, 2, 3, 3, 3, 5, 8], [2, 3, 3, 5, 5, 8, 8, 13, 21]),
        ("canary faster", [float(x) for x in range(50, 150)], [float(x) for x in range(10, 60)]),
        (
            "unequal sizes, rounded (many ties)",
            [round(rng.lognormvariate(4, 0.5)) for _ in range(900)],
            [round(rng.lognormvariate(4.1, 0.5)) for _ in range(120)],
        ),
        (
            "large, continuous",
            [rng.gauss(100, 15) for _ in range(2500)],
            [rng.gauss(101, 15) for _ in range(700)],
        ),
        ("one canary value", [3.0, 1.0, 2.0], [2.5]),
    ]


@pytest.mark.parametrize(("label", "baseline", "canary"), _samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_mann_whitney_equals_scipy_asymptotic(label: str, baseline: list[float], canary: list[float]) -> None:
    ours = stats.mann_whitney_u(baseline, canary)
    ref = sp.mannwhitneyu(canary, baseline, alternative="greater", method="asymptotic", use_continuity=True)
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=TOL), label
    assert ours.p_value == pytest.approx(float(ref.pvalue), abs=TOL), label


def test_mann_whitney_without_evidence() -> None:
    assert stats.mann_whitney_u([], [1.0]).p_value == 1.0
    assert stats.mann_whitney_u([5.0] * 4, [5.0] * 3).p_value == 1.0  # all tied: scipy answers nan


PROPORTIONS = [(10, 1000, 25, 1000), (3, 2000, 4, 200), (50, 400, 30, 400), (0, 900, 2, 100), (7, 250, 7, 251)]


@pytest.mark.parametrize(("xb", "nb", "xc", "nc"), PROPORTIONS)
def test_two_proportion_test_equals_the_chi_square_of_the_2x2_table(xb: int, nb: int, xc: int, nc: int) -> None:
    ours = stats.two_proportion_test(xb, nb, xc, nc)
    # The pooled z squared is Pearson's chi-square without Yates' correction; its sign is the direction.
    chi2, p_two, _dof, _exp = sp.chi2_contingency([[xb, nb - xb], [xc, nc - xc]], correction=False)
    assert ours.statistic**2 == pytest.approx(chi2, abs=TOL)
    one_sided = p_two / 2 if ours.statistic > 0 else 1 - p_two / 2
    assert ours.p_value == pytest.approx(one_sided, abs=TOL)
    assert ours.p_value == pytest.approx(float(sp.norm.sf(ours.statistic)), abs=TOL)


def test_two_proportion_test_without_evidence() -> None:
    assert stats.two_proportion_test(0, 500, 0, 500) == stats.TestResult(0.0, 1.0)
    assert stats.two_proportion_test(0, 0, 3, 10).p_value == 1.0


@pytest.mark.parametrize(
    ("p", "effect", "nb", "nc", "alpha"),
    [
        (0.01, 0.01, 1800, 200, 0.05),
        (0.0, 0.01, 5000, 5000, 0.05),
        (0.2, 0.2, 300, 300, 0.01),
        (0.05, 0.05, 90, 10, 0.1),
    ],
)
def test_power_equals_the_normal_formula_and_a_simulation(
    p: float, effect: float, nb: int, nc: int, alpha: float
) -> None:
    p2 = p + effect
    pooled = (nb * p + nc * p2) / (nb + nc)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / nb + 1 / nc))
    se1 = np.sqrt(p * (1 - p) / nb + p2 * (1 - p2) / nc)
    expected = float(sp.norm.cdf((effect - sp.norm.ppf(1 - alpha) * se0) / se1))
    ours = stats.power_two_proportions(p, effect, nb, nc, alpha)
    assert ours == pytest.approx(expected, abs=TOL)
    # The normal approximation is an approximation: a simulation of the test itself lands near it.
    rng = np.random.default_rng(4)
    xb, xc = rng.binomial(nb, p, 4000), rng.binomial(nc, p2, 4000)
    rejected = np.mean(
        [stats.two_proportion_test(int(b), nb, int(c), nc).p_value < alpha for b, c in zip(xb, xc, strict=True)]
    )
    assert abs(rejected - ours) < 0.12


@pytest.mark.parametrize(("nb", "nc", "ratio"), [(900, 100, 0.1), (850, 150, 0.1), (700, 300, 0.25), (3, 1, 0.5)])
def test_sample_ratio_test_equals_scipy_chisquare(nb: int, nc: int, ratio: float) -> None:
    ref = sp.chisquare([nc, nb], f_exp=[(nb + nc) * ratio, (nb + nc) * (1 - ratio)])
    ours = stats.sample_ratio_test(nb, nc, ratio)
    assert ours.statistic == pytest.approx(float(ref.statistic), abs=TOL)
    assert ours.p_value == pytest.approx(float(ref.pvalue), abs=TOL)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.95, 0.99, 1.0])
def test_quantile_equals_numpy_linear(q: float) -> None:
    rng = random.Random(7)
    for values in ([4.0], [3.0, 1.0], [rng.expovariate(0.01) for _ in range(1001)], [1, 1, 2, 2, 2, 9, 40, 41]):
        assert stats.quantile(values, q) == pytest.approx(float(np.quantile(values, q)), abs=TOL)
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)


# The judgement: fixed arms, deterministic durations.


def _arm(release: str, total: int, actionable: int, aborts: int, durations: list[float]) -> ArmStats:
    return ArmStats(release, total, actionable, aborts, durations)


def _durations(n: int, scale: float) -> list[float]:
    rng = random.Random(n)
    return [scale * rng.lognormvariate(4, 0.3) for _ in range(n)]


def _judge(base: ArmStats, can: ArmStats, ratio: float = 0.1) -> dict[str, str]:
    j = judge(base, can, alpha=0.05, min_samples=200, ratio=ratio)
    assert 0.0 <= j.score <= 1.0
    return {"verdict": j.verdict, **{m.name: m.verdict for m in j.metrics}}


def test_equal_arms_with_enough_traffic_pass() -> None:
    base = _arm("v1", 4000, 40, 8, _durations(4000, 1.0))
    can = _arm("v2", 2000, 20, 4, _durations(2000, 1.0))
    j = judge(base, can, alpha=0.05, min_samples=200, ratio=1 / 3)
    assert j.verdict == PASS and j.score == 1.0
    assert [m.name for m in j.metrics] == ["actionable_failure_rate", "latency_p95", "latency_p99", "client_abort_rate"]
    assert not j.expected["sample_ratio_mismatch"]


def test_more_actionable_failures_fail_and_say_why() -> None:
    base = _arm("v1", 4000, 40, 8, _durations(4000, 1.0))
    can = _arm("v2", 2000, 120, 4, _durations(2000, 1.0))
    j = judge(base, can, alpha=0.05, min_samples=200, ratio=1 / 3)
    assert j.verdict == FAIL and j.score == 0.75
    assert any(
        r.startswith("actionable_failure_rate: the canary's actionable failure rate is higher") for r in j.reasons
    )


def test_slower_canary_fails_on_latency_only_beyond_the_tolerance() -> None:
    base = _arm("v1", 4000, 40, 8, _durations(4000, 1.0))
    slow = _judge(base, _arm("v2", 2000, 20, 4, _durations(2000, 1.5)), ratio=1 / 3)
    assert slow["verdict"] == FAIL and slow["latency_p95"] == FAIL and slow["latency_p99"] == FAIL
    # 3% slower: the rank test may reject, the quantiles stay within 10%: not a failure.
    slight = _judge(base, _arm("v2", 2000, 20, 4, _durations(2000, 1.03)), ratio=1 / 3)
    assert slight["latency_p95"] == PASS and slight["latency_p99"] == PASS


def test_little_traffic_or_none_is_never_a_pass() -> None:
    small = _judge(_arm("v1", 150, 1, 0, _durations(150, 1.0)), _arm("v2", 20, 0, 0, _durations(20, 1.0)))
    assert small == {m: INCONCLUSIVE for m in small}
    j = judge(_arm("v1", 0, 0, 0, []), _arm("v2", 0, 0, 0, []), alpha=0.05, min_samples=200, ratio=0.1)
    assert j.verdict == INCONCLUSIVE and j.score == 0.0 and j.reasons[0].startswith("no data")
    # Enough outcomes but not enough power to see a one-point increase from a zero baseline.
    weak = _judge(_arm("v1", 250, 0, 0, _durations(250, 1.0)), _arm("v2", 250, 0, 0, _durations(250, 1.0)), 0.5)
    assert weak["actionable_failure_rate"] == INCONCLUSIVE and weak["verdict"] == INCONCLUSIVE


def test_sample_ratio_mismatch_is_information_not_a_verdict() -> None:
    base = _arm("v1", 4000, 40, 8, _durations(4000, 1.0))
    can = _arm("v2", 2000, 20, 4, _durations(2000, 1.0))
    j = judge(base, can, alpha=0.05, min_samples=200, ratio=0.1)  # a third of the traffic, a tenth expected
    assert j.verdict == PASS and j.expected["sample_ratio_mismatch"] is True
    assert any(r.startswith("sample ratio mismatch") for r in j.reasons)


def test_a_canary_identical_to_its_baseline_fails_less_often_than_the_level() -> None:
    # The level is the false alarm rate the tests promise: the rank test alone rejects identical arms in alpha of
    # the analyses, and the latency tolerance fails only those whose tail also moved by more than 10%.
    # bench/canary_false_alarms.py measures the rate at each level.
    rng = random.Random(7)

    def arm(release: str, n: int) -> ArmStats:
        return _arm(release, n, 0, 0, [rng.uniform(1.0, 4.0) + rng.expovariate(1 / 1.5) for _ in range(n)])

    trials = 600
    verdicts = [
        judge(arm("v1", 900), arm("v2", 300), alpha=0.05, min_samples=200, ratio=0.25).verdict for _ in range(trials)
    ]
    assert verdicts.count(INCONCLUSIVE) == 0
    assert 0 < verdicts.count(FAIL) < trials * 0.05, verdicts.count(FAIL)
