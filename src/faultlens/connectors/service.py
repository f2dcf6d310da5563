"""The tasks service: read every adapter, classify, find, retry, turn tasks into events; API and CLI call this."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from faultlens.classify.redact import MASK, redact
from faultlens.connectors import registry
from faultlens.connectors.base import KINDS, Adapter, FailedTask, RetryRecord
from faultlens.connectors.deadline import redis_deadline
from faultlens.connectors.metrics import task_metrics
from faultlens.connectors.retry_policy import RetryDecision, RetryPolicies, load_retry_policies
from faultlens.errors import (
    AmbiguousTaskId,
    FaultlensError,
    Forbidden,
    InvalidRequest,
    RedisUnavailable,
    TaskNotFound,
    TaskNotRetryable,
    TaskScanFailed,
    param_details,
)
from faultlens.ingest import EventRejected
from faultlens.model import Category
from faultlens.services import Services
from faultlens.timeutil import ms_to_rfc3339, now_ms

log = logging.getLogger("faultlens.connectors")

# The classifier's categories folded onto the seed document's five (docs/tasks.md explains each).
CATEGORY_MAP: dict[str, str] = {
    Category.SERVICE_TIMEOUT: "service_timeout",
    Category.NETWORK_ERROR: "service_timeout",
    Category.AUTHORIZATION: "authorization",
    Category.RESOURCE_EXHAUSTED: "resource_exhausted",
    Category.RATE_LIMITED: "resource_exhausted",
    Category.DATA_ERROR: "data_error",
    Category.NOT_FOUND: "data_error",
    Category.CONFLICT: "data_error",
    Category.SYSTEM_ERROR: "system_error",
    Category.DEPENDENCY_ERROR: "system_error",
    Category.CLIENT_ABORT: "system_error",
    Category.CANCELLED: "system_error",
    Category.UNKNOWN: "system_error",
    Category.NONE: "system_error",
}

# Column widths of the events table; ingest checks its own (wider) limits, the database these.
_SOURCE_CHARS = 128
_ID_CHARS = 128
_OPERATION_CHARS = 256
_CODE_CHARS = 256
_ATTR_CHARS = 1000
_SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential")


def task_category(classifier_category: str) -> str:
    return CATEGORY_MAP.get(classifier_category, "system_error")


@dataclass(frozen=True)
class TaskView:
    """A failed task with what faultlens derives: the classification of its event row and the retry decision.

    `retryable` is the classification's (the value stored on the task's event); `decision` says whether
    faultlens may run it again (that also needs a category not vetoed by the policy and retries left).
    """

    task: FailedTask
    category: str
    classifier_category: str
    failure_kind: str
    retryable: bool
    decision: RetryDecision

    @property
    def status(self) -> str:
        """dead_letter once the task will not run again (not retryable, vetoed category, retries exhausted)."""
        return "failure" if self.decision.allowed else "dead_letter"

    @property
    def error_message(self) -> str:
        return redact(self.task.error_message)

    def as_dict(self) -> dict[str, Any]:
        """The native API's snake_case task object."""
        t = self.task
        return {
            "id": t.key,
            "task_id": t.task_id,
            "kind": t.kind,
            "source": t.source,
            "queue": t.queue,
            "task_type": t.task_type,
            "client_id": t.client_id,
            "codebase_path": t.codebase_path,
            "start_time": ms_to_rfc3339(t.start_ms),
            "fail_time": ms_to_rfc3339(t.fail_ms),
            "error_code": t.error_code,
            "error_message": self.error_message,
            "exception_type": t.exception_type,
            "retry_count": t.retry_count,
            "max_retries": self.decision.max_retries,
            "processed_files": t.processed_files,
            "category": self.category,
            "classifier_category": self.classifier_category,
            "failure_kind": self.failure_kind,
            "status": self.status,
            "retryable": self.retryable,
            "retry_allowed": self.decision.allowed,
            "not_retryable_reason": self.decision.reason or None,
            "next_retry_delay_s": self.decision.delay_s,
            "args": safe_json(list(t.args)),
            "kwargs": safe_json(dict(t.kwargs)),
        }


def safe_json(value: Any, key: str = "") -> Any:
    """Arguments as JSON values, with secrets masked: a secret-named key's value, and secrets in strings."""
    if key and any(part in key.lower() for part in _SECRET_KEY_PARTS):
        return MASK
    if isinstance(value, dict):
        return {str(k): safe_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else repr(value))


def policies_of(services: Services) -> RetryPolicies:
    return load_retry_policies(services.settings.retry_policy_file)


def adapters_of(services: Services) -> list[Adapter]:
    task_metrics(services)  # registered before anything could change a store, so a scrape shows the zeros
    return registry.build_adapters(services.settings)


def ensure_tenant(services: Services, tenant: str) -> None:
    """The configured Redis belongs to the default tenant; another tenant's key must not read it."""
    owner = services.settings.default_tenant
    if tenant != owner:
        raise Forbidden(f"the Redis task sources belong to tenant {owner!r}", details={"tenant": tenant})


def _where(services: Services) -> str:
    return redact(services.settings.redis_url)


@contextmanager
def redis_errors(services: Services, action: str) -> Iterator[None]:
    """Redis errors as faultlens errors: unreachable or silent -> RedisUnavailable, anything else -> TaskScanFailed."""
    try:
        yield
    except FaultlensError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(
            f"Redis at {_where(services)} is unavailable while {action}: {exc}", details={"redis": _where(services)}
        ) from exc
    except redis.RedisError as exc:
        raise TaskScanFailed(
            f"{action} failed: {type(exc).__name__}: {exc}", details={"redis": _where(services)}
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("kombu") and "Operational" in type(exc).__name__:
            raise RedisUnavailable(
                f"the Celery broker at {_where(services)} is unavailable: {exc}", details={"redis": _where(services)}
            ) from exc
        log.exception("%s failed", action)
        raise TaskScanFailed(f"{action} failed: {type(exc).__name__}: {exc}") from exc


def check_redis(services: Services) -> None:
    """PING within Settings.redis_timeout_s (the seed document's connection check).

    Any failed PING means Redis is unavailable, also when something that is not Redis answers.
    """
    try:
        registry.get_redis(services.settings).ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"Redis at {_where(services)} is unavailable: {type(exc).__name__}: {exc}",
            details={"redis": _where(services)},
        ) from exc


def _classified_row(services: Services, task: FailedTask, *, status: str, max_attempts: int | None) -> dict[str, Any]:
    """The task's event row as ingest would store it (validated, redacted, cut), classified by the pipeline."""
    now = now_ms()
    raw = event_fields(task, status=status, category="", max_attempts=max_attempts, now=now)
    pipeline = services.pipeline
    try:
        row = pipeline.validate(raw, tenant=services.settings.default_tenant, now=now)
    except EventRejected:
        # Such an event is rejected at sync too; classify what it would have carried.
        c = services.classifier_for(services.settings.default_tenant).classify(
            status=status,
            error_code=raw.get("error_code"),
            error_message=redact(raw.get("error_message") or "") or None,
            source=raw["source"],
            operation=raw.get("operation"),
        )
        return {"category": c.category, "failure_kind": c.failure_kind, "retryable": c.retryable}
    pipeline.classify_row(row)
    return row


def classify(services: Services, task: FailedTask, policies: RetryPolicies) -> TaskView:
    """Classify the task exactly as its stored event is classified, then let the policy decide on a retry.

    One decision, made once: the API's `retryable` and category are the event row's, and the policy reads
    that `retryable` instead of judging the failure again.
    """
    row = _classified_row(services, task, status="failure", max_attempts=task.max_retries)
    decision = policies.decide(
        retryable=bool(row["retryable"]),
        task_type=task.task_type,
        category=task_category(str(row["category"])),
        retry_count=task.retry_count,
        max_retries=task.max_retries,
        source_exhausted=task.retries_exhausted,
        seed=task.key,
    )
    if not decision.allowed:
        # Stored as dead_letter: a rule pack may match on the status, so what is shown is that row's result.
        row = _classified_row(services, task, status="dead_letter", max_attempts=decision.max_retries)
    category = str(row["category"])
    return TaskView(task, task_category(category), category, str(row["failure_kind"]), bool(row["retryable"]), decision)


def _newest_first(view: TaskView) -> tuple[int, str]:
    return (-(view.task.fail_ms or 0), view.task.key)


def list_failed_tasks(services: Services, *, kinds: Sequence[str] | None = None) -> list[TaskView]:
    """Every failed task of every adapter, classified, newest fail time first (unknown times last)."""
    policies = policies_of(services)
    check_redis(services)
    views: list[TaskView] = []
    for adapter in adapters_of(services):
        if kinds is not None and adapter.kind not in kinds:
            continue
        with redis_errors(services, f"reading {adapter.kind} failed tasks"):
            tasks = adapter.list_failed()
        views.extend(classify(services, t, policies) for t in tasks)
    views.sort(key=_newest_first)
    return views


def split_id(task_id: str, kind: str | None = None) -> tuple[str | None, str]:
    """Accept "<kind>:<task_id>" (what the API lists as `id`) or a bare task id."""
    if kind is not None and kind not in KINDS:
        message = f"source kind must be one of {', '.join(KINDS)}"
        raise InvalidRequest(message, details=param_details("kind", message))
    head, sep, rest = task_id.partition(":")
    if sep and head in KINDS and rest:
        if kind is not None and kind != head:
            message = f"id {task_id!r} names kind {head!r} but kind={kind!r} was given"
            raise InvalidRequest(message, details=param_details("kind", message))
        return head, rest
    return kind, task_id


def find_failed_task(services: Services, task_id: str, *, kind: str | None = None) -> TaskView | None:
    """The failed task with this id, or None; a bare id held by two sources is ambiguous."""
    wanted, bare = split_id(task_id, kind)
    policies = policies_of(services)
    check_redis(services)
    found: list[TaskView] = []
    for adapter in adapters_of(services):
        if wanted is not None and adapter.kind != wanted:
            continue
        with redis_errors(services, f"looking up a {adapter.kind} task"):
            task = adapter.find_failed(bare)
        if task is not None:
            found.append(classify(services, task, policies))
    if len(found) > 1:
        raise AmbiguousTaskId(
            f"task id {bare!r} is a failed task of several sources; use one of the ids",
            details={"ids": [v.task.key for v in found]},
        )
    return found[0] if found else None


def get_failed_task(services: Services, task_id: str, *, kind: str | None = None) -> TaskView:
    view = find_failed_task(services, task_id, kind=kind)
    if view is None:
        raise TaskNotFound(f"no failed task with id {task_id!r}", details={"id": task_id})
    return view


def _adapter(services: Services, kind: str) -> Adapter:
    for adapter in adapters_of(services):
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
    view = get_failed_task(services, task_id, kind=kind)
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


def retry_task(
    services: Services,
    task_id: str,
    *,
    kind: str | None = None,
    delay_s: float = 0.0,
    enforce_policy: bool = True,
    trigger: str = "manual",
) -> dict[str, Any]:
    """Requeue a failed task through its adapter and record the retry as an event (CLI, auto retry)."""
    with redis_deadline(services.settings.redis_timeout_s):
        view, at = requeue_task(
            services, task_id, kind=kind, delay_s=delay_s, enforce_policy=enforce_policy, trigger=trigger
        )
    return record_retry(services, view, at, delay_s=delay_s)


# --- events --------------------------------------------------------------------------------------


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
