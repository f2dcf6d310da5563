"""Retrying a failed task: requeue it through its adapter under the policy (Redis), then record the retry event."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from faultlens.connectors import service
from faultlens.connectors.base import Adapter, RetryRecord
from faultlens.connectors.deadline import redis_deadline
from faultlens.connectors.metrics import task_metrics
from faultlens.connectors.redis_errors import redis_errors
from faultlens.connectors.task_events import ingest_events, retry_event
from faultlens.errors import TaskNotFound, TaskNotRetryable
from faultlens.timeutil import ms_to_rfc3339, now_ms

if TYPE_CHECKING:
    from faultlens.connectors.task_view import TaskView
    from faultlens.services import Services

log = logging.getLogger("faultlens.connectors")


def _adapter(services: Services, kind: str) -> Adapter:
    for adapter in service.adapters_of(services):
        if adapter.kind == kind:
            return adapter
    raise TaskNotFound(f"no {kind} adapter is configured", details={"kind": kind})


def requeue_task(
    services: Services,
    task_id: str,
    *,
    kind: str | None = None,
    delay_s: float = 0.0,
    enforce_policy: bool = True,
    trigger: str = "manual",
) -> tuple[TaskView, int]:
    """The Redis half of a retry: find the task, check the policy, requeue it through its adapter.

    Returns the view and the time of the requeue; `record_retry` writes its event. Refused
    (TaskNotRetryable) when the policy does not allow it, unless the caller overrides (the CLI's --force).
    """
    view = service.get_failed_task(services, task_id, kind=kind)
    task = view.task
    if enforce_policy and not view.decision.allowed:
        raise TaskNotRetryable(
            f"task {task.key!r} is not retryable: {view.decision.message}",
            details={
                "id": task.key,
                "reason": view.decision.reason,
                "category": view.category,
                "retry_count": task.retry_count,
                "max_retries": view.decision.max_retries,
            },
        )
    with redis_errors(services, f"requeueing {task.key}"):
        _adapter(services, task.kind).retry(task, delay_s=delay_s)
    task_metrics(services).requeued.labels(task.kind, trigger).inc()
    log.info("requeued failed task %s (%s, attempt %d)", task.key, trigger, task.retry_count + 1)
    return view, now_ms()


def record_retry(services: Services, view: TaskView, at: int, *, delay_s: float = 0.0) -> dict[str, Any]:
    """The database half of a retry: the `retry` event, and the answer the API and CLI print."""
    task = view.task
    attempt = task.retry_count + 1
    record = RetryRecord(
        kind=task.kind,
        task_id=task.task_id,
        source=task.source,
        task_type=task.task_type,
        attempt=attempt,
        at_ms=at,
        error_message=task.error_text,
        marker=str(at),
    )
    ingest_events(services, [retry_event(record, max_attempts=view.decision.max_retries)])
    return {
        "id": task.key,
        "task_id": task.task_id,
        "kind": task.kind,
        "source": task.source,
        "attempt": attempt,
        "max_retries": view.decision.max_retries,
        "delay_s": delay_s,
        "requeued_at": ms_to_rfc3339(at),
    }


class RetryOptions(TypedDict, total=False):
    """requeue_task's options, which retry_task passes through."""

    kind: str | None
    delay_s: float
    enforce_policy: bool
    trigger: str


def retry_task(services: Services, task_id: str, **options: Unpack[RetryOptions]) -> dict[str, Any]:
    """Requeue a failed task through its adapter and record the retry as an event (CLI, auto retry)."""
    with redis_deadline(services.settings.redis_timeout_s):
        view, at = requeue_task(services, task_id, **options)
    return record_retry(services, view, at, delay_s=options.get("delay_s", 0.0))
