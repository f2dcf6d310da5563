"""Models of the rollouts API (/api/v1/releases/rollouts, /api/v1/releases/rollbacks): bodies and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator, model_validator

from faultlens.api.schemas.base import RFC3339, Number, Out
from faultlens.api.schemas.releases import NAME
from faultlens.timeutil import parse_rfc3339_ms


class RolloutBody(BaseModel):
    """A canary rollout to analyse every interval; defaults come from the deployment's settings."""

    model_config = ConfigDict(extra="forbid")
    release: str = Field(min_length=1, max_length=128, pattern=NAME, description="the canary release")
    baseline: str = Field(min_length=1, max_length=128, pattern=NAME, description="the release it replaces")
    environment: str = Field(min_length=1, max_length=64, pattern=NAME)
    source: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NAME, description="default: every source"
    )
    ratio: StrictFloat | None = Field(
        default=None, gt=0, lt=1, description="canary share; default RELEASE_CANARY_RATIO"
    )
    interval_min: StrictFloat | None = Field(
        default=None, gt=0, le=1440, description="analysis window and interval; default RELEASE_CANARY_DURATION_MIN"
    )
    max_failures: StrictInt | None = Field(
        default=None, ge=1, le=20, description="failing analyses in a row that decide a rollback; default 2"
    )


class CompleteRollbackBody(BaseModel):
    """The deploy tool's word that traffic is back on the baseline (recovered) or that rolling back did not help."""

    model_config = ConfigDict(extra="forbid")
    recovered: StrictBool = True
    detail: str = Field(default="", max_length=2000)


class DrillReport(BaseModel):
    """The rollback drill's own report, stored with the record and answered as text/markdown."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["markdown"] = "markdown"
    text: str = Field(min_length=1, max_length=200_000)


class DrillRecordBody(BaseModel):
    """A rollback drill's result (`faultlens drill run rollback`): a drill rollback record readiness' rollback check
    reads; it never blocks the release and never alerts."""

    model_config = ConfigDict(extra="forbid")
    release: str = Field(min_length=1, max_length=128, pattern=NAME, description="the release the drill rolled back")
    environment: str = Field(min_length=1, max_length=64, pattern=NAME)
    source: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    baseline: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    decided_at: str = Field(description="when the drill's rollout decided the rollback (" + RFC3339 + ")")
    completed_at: str | None = Field(default=None, description="when recovery was confirmed; null: it never was")
    recovered: StrictBool
    report: DrillReport

    @field_validator("decided_at", "completed_at")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rfc3339_ms(value)  # ValueError -> 422 naming the field
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DrillRecordBody:
        if self.completed_at is not None and parse_rfc3339_ms(self.completed_at) < parse_rfc3339_ms(self.decided_at):
            raise ValueError("completed_at is before decided_at")
        return self


class Rollout(Out):
    id: str
    release: str
    baseline: str
    environment: str
    source: str | None
    ratio: Number
    interval_min: Number
    max_failures: int
    state: str = Field(description="running | rolled_back | promoted | aborted")
    consecutive_failures: int
    last_verdict: str | None = Field(description="pass | fail | inconclusive")
    last_analysis_at: str | None = Field(description=RFC3339)
    next_analysis_at: str | None = Field(description=RFC3339 + "; null once decided")
    decision: str | None = Field(description="rollback | promote | abort; null while running")
    decision_reason: str | None
    decided_at: str | None
    created_by: str
    created_at: str
    updated_at: str


class RolloutList(Out):
    rollouts: list[Rollout]


class Rollback(Out):
    id: str
    rollout_id: str | None
    release: str = Field(description="the release rolled back")
    baseline: str | None = Field(description="the release traffic returns to")
    environment: str
    source: str | None
    reason: str
    drill: bool
    decided_at: str = Field(description=RFC3339)
    deadline_at: str = Field(description="decided_at + ROLLBACK_MAX_MINUTES")
    completed_at: str | None
    recovery_state: str = Field(description="pending | recovered | overdue | failed")
    recovery_detail: dict[str, Any] | None = Field(description="who confirmed recovery and the evidence")
    replay_report_id: str | None
    replay_passed: bool | None = Field(description="null: no replay since the rollback")
    created_by: str
    has_report: bool = Field(description="a drill report is stored: GET /api/v1/releases/rollbacks/{id}/report")


class RollbackList(Out):
    rollbacks: list[Rollback]


class RolloutDetail(Rollout):
    analyses: list[dict[str, Any]] = Field(description="the rollout's canary analyses, newest first")
    rollbacks: list[Rollback]
    blocked: bool = Field(description="rolled back and no replay of the release has passed since")
    blocked_reason: str | None


class AnalyzeOutcome(Out):
    analysis: dict[str, Any] = Field(description="the stored canary analysis")
    decision: str = Field(description="continue | rollback")
    rollout: Rollout
    rollback: Rollback | None


class RolloutStatus(Out):
    """Shaped for a deploy tool's gate: Argo Rollouts' Web metric provider reads `result.rollback == false`."""

    id: str
    release: str
    environment: str
    state: str
    decision: str = Field(description="continue | rollback | promote | abort")
    rollback: bool
    blocked: bool
    blocked_reason: str | None
    reason: str | None
    last_verdict: str | None
    consecutive_failures: int
    max_failures: int
