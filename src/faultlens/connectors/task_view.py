"""A failed task as faultlens shows it: the task, its event's classification, the retry decision, the API object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faultlens.classify.redact import redact
from faultlens.connectors.base import FailedTask
from faultlens.connectors.masking import safe_json
from faultlens.connectors.retry_policy import RetryDecision
from faultlens.timeutil import ms_to_rfc3339


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
