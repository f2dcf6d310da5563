"""The tasks service: every adapter's failed tasks, classified as their events are, listed or found by id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faultlens.classify.redact import redact
from faultlens.connectors import registry
from faultlens.connectors.base import KINDS, Adapter, FailedTask
from faultlens.connectors.categories import task_category
from faultlens.connectors.metrics import task_metrics
from faultlens.connectors.redis_errors import check_redis, redis_errors
from faultlens.connectors.retry_policy import RetryPolicies, load_retry_policies
from faultlens.connectors.task_events import event_fields
from faultlens.connectors.task_view import TaskView
from faultlens.errors import AmbiguousTaskId, Forbidden, InvalidRequest, TaskNotFound, param_details
from faultlens.ingest import EventRejected
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services


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
