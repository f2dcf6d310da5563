"""The canary judgement: a canary arm against its baseline on actionable failure rate, latency p95/p99 and client
aborts, each metric pass / fail / inconclusive with a reason a person reads, and the verdict and score of all.

Pure: the arms' figures come in (store/release_samples.py reads them and defines ArmStats), the judgement goes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from faultlens.releases import stats
from faultlens.store.release_samples import ArmStats

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "ArmStats", "Judgement", "MetricResult", "expected_split", "judge"]

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# A rate metric must have this much power to detect its minimum effect before a test that did not reject counts
# as a pass (DECISIONS.md "Release gates").
MIN_POWER = 0.8
# The smallest absolute increase of a rate worth detecting: two points, or the baseline's own rate if higher
# (a doubling). One point would need about 1,500 outcomes per arm from a clean baseline before anything passes.
MIN_RATE_EFFECT = 0.02
# Sample ratio mismatch is judged at this level: an information, never a verdict change.
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class MetricResult:
    name: str
    verdict: str
    baseline: float | None
    canary: float | None
    p_value: float | None
    reason: str
    baseline_samples: int
    canary_samples: int
    power: float | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: str
    score: float
    metrics: list[MetricResult]
    reasons: list[str]
    expected: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "score": self.score,
            "metrics": [asdict(m) for m in self.metrics],
            "reasons": list(self.reasons),
            "expected": dict(self.expected),
        }


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _too_few(name: str, n_base: int, n_canary: int, min_samples: int, what: str) -> str:
    return (
        f"{name}: too little data to judge: baseline {n_base}, canary {n_canary} {what} "
        f"(at least {min_samples} per arm)"
    )


def _rate_metric(
    name: str,
    label: str,
    x_base: int,
    n_base: int,
    x_canary: int,
    n_canary: int,
    *,
    alpha: float,
    min_samples: int,
) -> MetricResult:
    rate_b = x_base / n_base if n_base else None
    rate_c = x_canary / n_canary if n_canary else None
    if rate_b is None or rate_c is None or min(n_base, n_canary) < min_samples:
        reason = _too_few(name, n_base, n_canary, min_samples, "outcomes")
        return MetricResult(name, INCONCLUSIVE, rate_b, rate_c, None, reason, n_base, n_canary)
    test = stats.two_proportion_test(x_base, n_base, x_canary, n_canary)
    effect = max(MIN_RATE_EFFECT, rate_b)
    power = stats.power_two_proportions(rate_b, effect, n_base, n_canary, alpha)
    seen = f"canary {_pct(rate_c)} against baseline {_pct(rate_b)}"
    if test.p_value < alpha:
        reason = f"{name}: the canary's {label} is higher: {seen} (p={test.p_value:.3g} < {alpha:g})"
        return MetricResult(name, FAIL, rate_b, rate_c, test.p_value, reason, n_base, n_canary, power)
    if power < MIN_POWER:
        reason = (
            f"{name}: no significant increase ({seen}, p={test.p_value:.3g}), but too little traffic to detect "
            f"an increase of {effect * 100:.2f} points (power {power:.2f} < {MIN_POWER:g})"
        )
        return MetricResult(name, INCONCLUSIVE, rate_b, rate_c, test.p_value, reason, n_base, n_canary, power)
    reason = f"{name}: no significant increase: {seen} (p={test.p_value:.3g}, power {power:.2f})"
    return MetricResult(name, PASS, rate_b, rate_c, test.p_value, reason, n_base, n_canary, power)


def _latency_metrics(
    baseline: Sequence[float],
    canary: Sequence[float],
    *,
    alpha: float,
    min_samples: int,
    tolerance: float,
) -> list[MetricResult]:
    n_b, n_c = len(baseline), len(canary)
    named = (("latency_p95", 0.95), ("latency_p99", 0.99))
    if min(n_b, n_c) < min_samples:
        out = []
        for name, q in named:
            q_b = stats.quantile(baseline, q) if baseline else None
            q_c = stats.quantile(canary, q) if canary else None
            reason = _too_few(name, n_b, n_c, min_samples, "durations")
            out.append(MetricResult(name, INCONCLUSIVE, q_b, q_c, None, reason, n_b, n_c))
        return out
    # One rank test of the whole distributions (as Kayenta judges); each quantile then says whether the shift
    # reaches the tail by more than the tolerance.
    test = stats.mann_whitney_u(baseline, canary)
    results = []
    for name, q in named:
        q_b, q_c = stats.quantile(baseline, q), stats.quantile(canary, q)
        limit = q_b * (1.0 + tolerance)
        seen = f"canary {q_c:.1f} ms against baseline {q_b:.1f} ms"
        if test.p_value < alpha and q_c > limit:
            verdict = FAIL
            reason = (
                f"{name}: the canary is slower: {seen}, more than {tolerance * 100:g}% above "
                f"(Mann-Whitney p={test.p_value:.3g} < {alpha:g})"
            )
        elif test.p_value < alpha:
            verdict = PASS
            reason = (
                f"{name}: durations shifted (Mann-Whitney p={test.p_value:.3g}) but within "
                f"{tolerance * 100:g}% at this quantile: {seen}"
            )
        else:
            verdict = PASS
            reason = f"{name}: no significant slowdown: {seen} (Mann-Whitney p={test.p_value:.3g})"
        results.append(MetricResult(name, verdict, q_b, q_c, test.p_value, reason, n_b, n_c))
    return results


def expected_split(baseline: ArmStats, canary: ArmStats, ratio: float) -> tuple[dict[str, Any], str | None]:
    """The canary's share of outcomes expected from `ratio` against the share seen, and a reason line when the
    difference is a sample ratio mismatch (chi-square p < SRM_ALPHA)."""
    n = baseline.total + canary.total
    test = stats.sample_ratio_test(baseline.total, canary.total, ratio)
    observed = canary.total / n if n else None
    mismatch = n > 0 and test.p_value < SRM_ALPHA
    expected = {
        "ratio": ratio,
        "canary_share": observed,
        "expected_canary_outcomes": round(n * ratio, 1),
        "canary_outcomes": canary.total,
        "baseline_outcomes": baseline.total,
        "sample_ratio_mismatch": mismatch,
        "p_value": test.p_value if n else None,
    }
    reason = None
    if mismatch and observed is not None:
        reason = (
            f"sample ratio mismatch: the canary has {_pct(observed)} of the outcomes, {_pct(ratio)} expected "
            f"(chi-square p={test.p_value:.3g} < {SRM_ALPHA:g}); check the traffic split (information, not a verdict)"
        )
    return expected, reason


def judge(
    baseline: ArmStats,
    canary: ArmStats,
    *,
    alpha: float,
    min_samples: int,
    ratio: float,
    latency_tolerance: float = 0.10,
) -> Judgement:
    """The canary's verdict: any failing metric fails it; otherwise any inconclusive metric (or no data at all)
    leaves it inconclusive; only every metric passing passes it. score = share of metrics that pass."""
    metrics = [
        _rate_metric(
            "actionable_failure_rate",
            "actionable failure rate",
            baseline.actionable,
            baseline.total,
            canary.actionable,
            canary.total,
            alpha=alpha,
            min_samples=min_samples,
        ),
        *_latency_metrics(
            baseline.durations, canary.durations, alpha=alpha, min_samples=min_samples, tolerance=latency_tolerance
        ),
        _rate_metric(
            "client_abort_rate",
            "client abort rate",
            baseline.client_aborts,
            baseline.total,
            canary.client_aborts,
            canary.total,
            alpha=alpha,
            min_samples=min_samples,
        ),
    ]
    verdicts = [m.verdict for m in metrics]
    if FAIL in verdicts:
        verdict = FAIL
    elif INCONCLUSIVE in verdicts or canary.total == 0 or baseline.total == 0:
        verdict = INCONCLUSIVE
    else:
        verdict = PASS
    score = verdicts.count(PASS) / len(metrics)
    reasons: list[str] = []
    if canary.total == 0 and baseline.total == 0:
        reasons.append(f"no data: neither {baseline.release} nor {canary.release} has outcomes in the window")
    elif canary.total == 0:
        reasons.append(f"no data: the canary {canary.release} has no outcomes in the window")
    elif baseline.total == 0:
        reasons.append(f"no data: the baseline {baseline.release} has no outcomes in the window")
    if not reasons:  # an arm without data says it once, not once per metric
        reasons += [m.reason for m in metrics if m.verdict == FAIL]
        reasons += [m.reason for m in metrics if m.verdict == INCONCLUSIVE]
    if verdict == PASS:
        reasons.append(f"{canary.release} is not worse than {baseline.release} on any of the {len(metrics)} metrics")
    expected, mismatch = expected_split(baseline, canary, ratio)
    if mismatch is not None:
        reasons.append(mismatch)
    return Judgement(verdict, score, metrics, reasons, expected)
