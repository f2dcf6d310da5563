"""Models of the canary analysis API (/api/v1/releases/canary/): the request body, an analysis, the Argo gate."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from faultlens.api.schemas.base import RFC3339, Number, Out

# No control characters: PostgreSQL text cannot hold NUL, and no release name needs the others.
# A release, environment or source name as the gates compare it: exactly, so no control character and no blank at
# either end (what a copy and paste adds by mistake).
NAME = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$"


class CanaryBody(BaseModel):
    """The two arms (releases) in one environment (and source), over `window` ending now or since/until."""

    model_config = ConfigDict(extra="forbid")
    baseline: str = Field(min_length=1, max_length=128, pattern=NAME, description="the release serving today")
    canary: str = Field(min_length=1, max_length=128, pattern=NAME, description="the release under test")
    environment: str = Field(min_length=1, max_length=64, pattern=NAME)
    source: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    window: str | None = Field(
        default=None,
        pattern=r"^\d{1,5}(m|h)$",
        description="minutes or hours ending now, e.g. 30m or 2h (at most 24h); default RELEASE_CANARY_DURATION_MIN",
    )
    since: str | StrictInt | None = Field(default=None, description=RFC3339 + " or epoch ms; instead of window")
    until: str | StrictInt | None = Field(default=None, description=RFC3339 + " or epoch ms (exclusive); default now")


class MetricOut(Out):
    name: str = Field(description="actionable_failure_rate | latency_p95 | latency_p99 | client_abort_rate")
    verdict: str = Field(description="pass | fail | inconclusive")
    baseline: Number | None = Field(description="the baseline's value: a rate (0..1) or a duration in ms")
    canary: Number | None
    p_value: Number | None = Field(description="one-sided: the canary worse than the baseline")
    reason: str
    baseline_samples: int
    canary_samples: int
    power: Number | None = Field(description="rates: the power to detect the minimum increase")


class ArmOut(Out):
    release: str
    total: int
    actionable: int
    client_aborts: int
    durations: int = Field(description="outcomes with a duration_ms that the latency tests read")


class Analysis(Out):
    id: str
    rollout_id: str | None
    baseline: str
    canary: str
    environment: str
    source: str | None
    since: str = Field(description=RFC3339)
    until: str = Field(description=RFC3339 + " (exclusive)")
    verdict: str = Field(description="pass | fail | inconclusive (too little traffic or no data is never a pass)")
    score: Number = Field(description="share of metrics that pass, 0..1")
    metrics: list[MetricOut]
    reasons: list[str]
    expected: dict[str, Any] = Field(description="the canary's share of outcomes expected (ratio) against seen")
    arms: dict[str, ArmOut]
    created_at: str = Field(description=RFC3339)
    requested_by: str


class AnalysisList(Out):
    items: list[Analysis]


class ArgoGate(Out):
    """For Argo Rollouts' Web metric provider: successCondition `result.passed == true`, failureCondition
    `result.failed == true` (inconclusive is neither)."""

    verdict: str
    passed: bool
    failed: bool
    inconclusive: bool
    blocked: bool = Field(description="the canary was rolled back and no replay has passed since")
    score: Number
    analysis_id: str
    reasons: list[str]
