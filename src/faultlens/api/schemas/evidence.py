"""Models of the release evidence API: replay runs and reports, readiness evaluations and their evidence records
(/api/v1/releases/replays, /api/v1/releases/readiness and the document-004 contract paths)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from faultlens.api.schemas.base import RFC3339, Number, Out
from faultlens.api.schemas.releases import NAME

Expected = str | int


class ReplayBody(BaseModel):
    """Run `suite` against `target` (a base URL on FAULTLENS_REPLAY_TARGETS) as evidence for `release`."""

    model_config = ConfigDict(extra="forbid")
    release: str = Field(min_length=1, max_length=128, pattern=NAME)
    environment: str = Field(default="staging", min_length=1, max_length=64, pattern=NAME)
    target: str = Field(min_length=1, max_length=512, description="base URL the suite's paths are joined to")
    suite: dict[str, Any] | str = Field(
        description="the suite document (version: 1, suite, suite_version, defaults?, requests: [...]) or its "
        "YAML/JSON text; header values are literals or {env: REPLAY_SECRET_...} references, never secrets"
    )


class ReadinessBody(BaseModel):
    """Evaluate `release` in `environment` over the window (native vocabulary: 1h..90d, or since/until)."""

    model_config = ConfigDict(extra="forbid")
    release: str = Field(min_length=1, max_length=128, pattern=NAME)
    environment: str = Field(default="staging", min_length=1, max_length=64, pattern=NAME)
    source: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    window: str | None = Field(default=None, description="1h|6h|24h|7d|14d|30d|90d (default 24h)")
    since: str | None = Field(default=None, description=RFC3339 + " start (inclusive); instead of window")
    until: str | None = Field(default=None, description=RFC3339 + " end (exclusive); default now")
    replay_report_id: str | None = Field(
        default=None, min_length=1, max_length=36, description="the replay to judge; default the newest one"
    )


class ReplayFailure(Out):
    name: str
    method: str
    path: str
    expected: Expected = Field(description="a status class like '2xx' or an exact status")
    status: int | None = Field(description="the HTTP status answered; null when none arrived (timeout, refused)")
    duration_ms: Number | None
    reason: str = Field(description="why it failed, then the first 300 characters of the body, redacted")
    failure_kind: str
    failure_class: str
    is_actionable: bool


class ReplayResult(Out):
    name: str
    method: str
    path: str
    expected: Expected
    latency_budget_ms: Number | None
    outcome: str = Field(description="passed | failed | not_run")
    status: int | None
    duration_ms: Number | None


class ReplayCounts(Out):
    passed: int
    failed: int
    not_run: int = Field(description="not started before the run's deadline (REPLAY_RUN_TIMEOUT_S)")
    by_failure_class: dict[str, int]


class ReplayRequestRef(Out):
    name: str
    method: str
    path: str


class ReplayReport(Out):
    id: str
    release: str
    environment: str
    suite: str
    suite_version: str
    target: str
    passed: bool = Field(description="every request ran and met its expected status and latency budget")
    total: int
    counts: ReplayCounts
    failures: list[ReplayFailure]
    not_run: list[ReplayRequestRef]
    results: list[ReplayResult]
    p95_ms: Number | None
    rule_version: str = Field(description="the tenant's rules the failures were classified with")
    started_at: str = Field(description=RFC3339)
    finished_at: str = Field(description=RFC3339)
    requested_by: str


class ReplaySummary(Out):
    id: str
    release: str
    environment: str
    suite: str
    suite_version: str
    target: str
    passed: bool
    total: int
    failed: int = Field(description="failed and not run")
    p95_ms: Number | None
    rule_version: str
    requested_by: str
    started_at: str = Field(description=RFC3339)
    finished_at: str = Field(description=RFC3339)


class ReplayList(Out):
    reports: list[ReplaySummary]


class CheckOut(Out):
    passed: bool
    reason: str
    evidence: dict[str, Any] = Field(description="what the check read: counts, alerts, records and their ids")


class ReadinessChecks(Out):
    quality: CheckOut
    performance: CheckOut
    security: CheckOut
    cost: CheckOut
    rollout: CheckOut
    rollback: CheckOut
    ops: CheckOut


class ReadinessRecord(Out):
    id: str
    release: str
    environment: str
    source: str | None
    window: dict[str, Any] = Field(description="label, since and until of the window judged")
    admitted: bool = Field(description="every check passed and replay_passed (always true when not enforced)")
    enforced: bool = Field(description="P6_READINESS_REQUIRED when it was evaluated")
    replay_passed: bool
    replay_report_id: str | None
    failed_checks: list[str] = Field(description="names of the failed checks, and 'replay' when it did not pass")
    checks: ReadinessChecks
    replay: CheckOut
    inputs: dict[str, Any] = Field(description="the request, the settings and objectives used, the rule version")
    requested_by: str
    created_at: str = Field(description=RFC3339)


class ReadinessList(Out):
    evaluations: list[ReadinessRecord]
