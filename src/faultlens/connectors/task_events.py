"""Failed tasks and recorded retries as faultlens events (stable ids, events-table widths), ingested by the pipeline."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faultlens.connectors.base import FailedTask, RetryRecord
from faultlens.timeutil import ms_to_rfc3339, now_ms

if TYPE_CHECKING:
    from faultlens.connectors.task_view import TaskView
    from faultlens.services import Services

log = logging.getLogger("faultlens.connectors")

# Column widths of the events table; ingest checks its own (wider) limits, the database these.
_SOURCE_CHARS = 128
_ID_CHARS = 128
_OPERATION_CHARS = 256
_CODE_CHARS = 256
_ATTR_CHARS = 1000


def _bounded_id(*parts: str) -> str:
    event_id = ":".join(parts)
    if len(event_id) <= _ID_CHARS:
        return event_id
    # A long task id is replaced by its digest; the rest of the id keeps it deterministic.
    digest = hashlib.sha256(parts[2].encode()).hexdigest()[:32]
    event_id = ":".join((*parts[:2], digest, *parts[3:]))
    return event_id[:_ID_CHARS]


def task_event_id(task: FailedTask) -> str:
    """Stable per failure: the same failed task read twice is the same event; a new failure is a new one."""
    return _bounded_id("task", task.kind, task.task_id, str(task.retry_count), str(task.fail_ms or 0))


def _attributes(task: FailedTask, **extra: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "task_kind": task.kind,
        "queue": task.queue or None,
        "client_id": task.client_id or None,
        "codebase_path": task.codebase_path or None,
        "processed_files": task.processed_files,
        "exception_type": task.exception_type or None,
        **extra,
    }
    return {k: (v[:_ATTR_CHARS] if isinstance(v, str) else v) for k, v in attrs.items() if v is not None}


def event_fields(
    task: FailedTask, *, status: str, category: str, max_attempts: int | None, now: int | None = None
) -> dict[str, Any]:
    """The event a failed task becomes (before ingest validates and classifies it)."""
    current = now or now_ms()
    occurred = task.fail_ms if task.fail_ms and task.fail_ms <= current + 3_600_000 else None
    occurred = occurred or current
    event: dict[str, Any] = {
        "id": task_event_id(task),
        "item_type": "task",
        "status": status,
        "source": task.source[:_SOURCE_CHARS],
        "operation": task.task_type[:_OPERATION_CHARS] or None,
        "occurred_at": ms_to_rfc3339(occurred),
        "error_code": task.error_code[:_CODE_CHARS] or None,
        "error_message": task.error_text or None,
        "attempt": task.retry_count,
        "max_attempts": max_attempts,
        "job_id": task.task_id[:_ID_CHARS],
        "attributes": _attributes(task, task_category=category or None),
    }
    if task.start_ms and task.start_ms <= occurred:
        event["started_at"] = ms_to_rfc3339(task.start_ms)
        event["duration_ms"] = float(occurred - task.start_ms)
    return event


def task_event(view: TaskView, *, now: int | None = None) -> dict[str, Any]:
    return event_fields(
        view.task, status=view.status, category=view.category, max_attempts=view.decision.max_retries, now=now
    )


def retry_event(record: RetryRecord, *, max_attempts: int | None = None, now: int | None = None) -> dict[str, Any]:
    at = record.at_ms or now or now_ms()
    event: dict[str, Any] = {
        "id": _bounded_id("task", record.kind, record.task_id, "retry", str(record.attempt), record.marker),
        "item_type": "task",
        "status": "retry",
        "source": record.source[:_SOURCE_CHARS],
        "operation": record.task_type[:_OPERATION_CHARS] or None,
        "occurred_at": ms_to_rfc3339(at),
        "error_message": record.error_message or None,
        "attempt": record.attempt,
        "job_id": record.task_id[:_ID_CHARS],
        "attributes": {"task_kind": record.kind},
    }
    if max_attempts is not None:
        event["max_attempts"] = max_attempts
    return event


def ingest_events(services: Services, events: Sequence[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
    """Through the one pipeline, into the default tenant: (accepted, duplicates, rejected)."""
    if not events:
        return 0, 0, []
    started = time.perf_counter()
    result = services.pipeline.ingest(list(events), tenant=services.settings.default_tenant)
    services.after_ingest(result, time.perf_counter() - started)
    for item in result.rejected:
        log.warning("task event rejected: %s", item)
    return result.accepted, result.duplicates, result.rejected
