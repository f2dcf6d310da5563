"""Models of the failed-task routes: the listing, the task hints, a sync and a retry."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from faultlens.api.schemas.base import Number, Out


class Task(Out):
    id: str = Field(description='"<kind>:<task_id>", the id retry accepts')
    task_id: str
    kind: str
    source: str
    queue: str
    task_type: str
    client_id: str
    codebase_path: str
    start_time: str | None
    fail_time: str | None
    error_code: str
    error_message: str
    exception_type: str
    retry_count: int
    max_retries: int | None
    processed_files: int
    category: str
    classifier_category: str | None
    failure_kind: str | None
    status: str
    retryable: bool
    not_retryable_reason: str | None
    next_retry_delay_s: Number | None
    args: list[Any]
    kwargs_: dict[str, Any] = Field(alias="kwargs")

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TaskPage(Out):
    total: int
    items: list[Task]
    next_cursor: str | None = Field(description="Opaque; pass as `cursor` for the next page; null on the last")


class TaskHint(Out):
    code: str
    level: str
    observed: Number
    threshold: Number
    source: str
    message: str


class TaskHints(Out):
    window: str
    items: list[TaskHint]


class SyncResult(Out):
    found: int
    accepted: int
    duplicates: int
    retry_events: int
    auto_retried: int
    rejected: int
    archived: int
    errors: list[str]


class Retried(Out):
    id: str
    task_id: str
    kind: str
    source: str
    attempt: int
    max_retries: int | None
    delay_s: Number | None
    requeued_at: str | None
