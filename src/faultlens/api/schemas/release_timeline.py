"""Models of GET /api/v1/releases/timeline: one release's canary verdicts, rollouts, rollbacks, replays, readiness."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from faultlens.api.schemas.base import RFC3339, Number, Out


class TimelineAnalysis(Out):
    id: str
    created_at: str = Field(description=RFC3339)
    verdict: str = Field(description="pass | fail | inconclusive")
    score: Number = Field(description="share of metrics that passed, 0..1")
    baseline: str
    environment: str
    source: str | None
    rollout_id: str | None = Field(description="the rollout that ran it; null for an ad hoc analysis")
    since: str = Field(description=RFC3339)
    until: str = Field(description=RFC3339 + " (exclusive)")
    metrics: list[dict[str, Any]] = Field(description="per metric: name, verdict, baseline, canary, p_value, reason")
    reasons: list[str]
    requested_by: str


class TimelineRollout(Out):
    id: str
    created_at: str = Field(description=RFC3339)
    baseline: str
    environment: str
    source: str | None
    ratio: Number
    interval_min: Number
    max_failures: int
    state: str = Field(description="running | rolled_back | promoted | aborted")
    consecutive_failures: int
    last_verdict: str | None
    last_analysis_at: str | None = Field(description=RFC3339)
    decision: str | None = Field(description="rollback | promote | abort, once decided")
    decision_reason: str | None
    decided_at: str | None = Field(description=RFC3339)
    created_by: str


class TimelineRollback(Out):
    id: str
    rollout_id: str | None
    baseline: str | None = Field(description="the release traffic returns to")
    environment: str
    source: str | None
    decided_at: str = Field(description=RFC3339)
    deadline_at: str = Field(description="decided_at + ROLLBACK_MAX_MINUTES (" + RFC3339 + ")")
    completed_at: str | None = Field(description=RFC3339)
    recovery_state: str = Field(description="pending | recovered | overdue")
    recovery_detail: Any = Field(description="what confirmed (or failed to confirm) recovery")
    reason: str
    drill: bool = Field(description="recorded by a rollback drill, not decided by a rollout")
    has_report: bool = Field(
        default=False, description="a drill report is stored: GET /api/v1/releases/rollbacks/{id}/report"
    )
    replay_report_id: str | None
    replay_passed: bool | None = Field(description="null: no replay since the rollback")


class TimelineRollbackUsed(Out):
    id: str
    drill: bool
    has_report: bool = Field(description="a drill report is stored: GET /api/v1/releases/rollbacks/{id}/report")


class TimelineReadiness(Out):
    id: str
    created_at: str = Field(description=RFC3339)
    environment: str
    admitted: bool
    replay_passed: bool
    failed_checks: list[str]
    checks: dict[str, bool] = Field(description="check name -> passed")
    replay_report_id: str | None
    requested_by: str
    rollback: TimelineRollbackUsed | None = Field(
        default=None, description="the rollback (or drill) the rollback check passed on; null when it found none"
    )


class TimelineReplay(Out):
    id: str
    started_at: str = Field(description=RFC3339)
    finished_at: str = Field(description=RFC3339)
    environment: str
    suite: str
    suite_version: str
    target: str
    passed: bool
    total: int
    failed: int
    p95_ms: Number | None
    requested_by: str


class ReleaseTimeline(Out):
    release: str
    environment: str | None = Field(description="the environment asked for; null: every environment")
    environments: list[str] = Field(description="every environment the release was seen in")
    analyses: list[TimelineAnalysis] = Field(description="canary analyses of the release, newest first (max 100)")
    rollouts: list[TimelineRollout] = Field(description="rollouts of the release, newest first (max 100)")
    rollbacks: list[TimelineRollback] = Field(description="rollbacks of the release, newest decision first (max 100)")
    readiness: list[TimelineReadiness] = Field(description="readiness evidence records, newest first (max 100)")
    replays: list[TimelineReplay] = Field(description="replay reports, newest first (max 100)")
