"""Models of the triage views: stats, overview, trends, alerts and the paged failure list."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from faultlens.api.schemas.base import RFC3339, Number, Out
from faultlens.api.schemas.events import Event


class KindCount(Out):
    failure_kind: str
    count: int


class ErrorDistribution(Out):
    scope: str
    window: str
    total: int
    items: list[KindCount]


class Summary(Out):
    window: str
    total: int
    success_count: int
    failure_count: int
    service_failure_count: int
    client_failure_count: int
    client_abort_count: int
    actionable_failure_count: int
    actionable_failure_rate: float


class WindowInfo(Out):
    label: str
    days: int
    from_: str = Field(alias="from", description=RFC3339)
    to: str = Field(description=RFC3339 + " (exclusive)")

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CodeCount(Out):
    error_code: str
    count: int


class Partition(Out):
    total: int
    status_counts: dict[str, int]
    success_count: int
    failure_count: int
    actionable_failure_count: int
    dead_letter_count: int
    retry_count: int
    success_rate: float
    failure_rate: float
    actionable_failure_rate: float
    dead_letter_rate: float
    avg_attempts: float
    top_failure_kinds: list[KindCount]
    top_error_codes: list[CodeCount]


class SourcePartition(Partition):
    source: str


class Hint(Out):
    code: str
    level: str = Field(description="info | warn | critical")
    source: str
    observed: Number
    threshold: Number
    window: str
    message: str


class Overview(Out):
    window: WindowInfo
    generated_at: str
    filters: dict[str, Any]
    totals: Partition
    sources: list[SourcePartition]
    slo_hints: list[Hint]


class TrendPoint(Out):
    total: int
    success: int
    failures: int
    service_failures: int
    client_failures: int
    client_aborts: int
    actionable_failures: int
    dead_letters: int
    retries: int
    failure_rate: float
    actionable_failure_rate: float


class TrendBucket(TrendPoint):
    start: str
    end: str


class Trends(Out):
    window: WindowInfo
    bucket: str
    bucket_ms: int
    filters: dict[str, Any]
    buckets: list[TrendBucket]
    totals: TrendPoint


class Alerts(Out):
    window: WindowInfo
    generated_at: str
    level: str | None
    status: str = Field(description="ok | warn | critical: the worst level of all hints")
    total: int
    by_code: dict[str, int]
    hints: list[Hint]


class Pagination(Out):
    page: int
    page_size: int
    pages: int
    total: int


class FailurePage(Out):
    items: list[Event]
    pagination: Pagination
    filters: dict[str, Any] = Field(default_factory=dict, description="the filters the page answers, as given")
