"""Task retry policies: max retries and backoff per task type, never-retry categories, hint thresholds."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from faultlens import config_files
from faultlens.connectors.base import KINDS
from faultlens.errors import RetryPolicyError

# The seed document's five categories; policies and hints speak of these.
TASK_CATEGORIES = ("service_timeout", "authorization", "resource_exhausted", "data_error", "system_error")
DEFAULT_NEVER_RETRY = ("authorization", "data_error")


@dataclass(frozen=True)
class RetryDecision:
    """Whether faultlens may run a failed task again. It never re-decides whether the failure is transient:
    that is the classification's `retryable` (the rule packs), which the caller passes in."""

    allowed: bool
    reason: str  # "", "category_never_retried", "failure_not_retryable" or "retries_exhausted"
    message: str
    max_retries: int | None  # None: the source exhausted a limit it does not record
    delay_s: float | None  # the backoff before the next attempt, when there is one


class RetryPolicy(BaseModel):
    """How one task type is retried: attempt n waits min(max_delay, base * multiplier**(n-1)) ± jitter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: int = Field(default=3, ge=0, le=1000)
    base_delay_s: float = Field(default=5.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay_s: float = Field(default=600.0, ge=0)
    # Fraction of the delay drawn at random either way, so a burst of failures does not retry in step.
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)

    def delay_s(self, attempt: int, *, seed: str = "") -> float:
        """The wait before retry number `attempt` (1-based); the jitter is stable for a given seed."""
        raw = min(self.max_delay_s, self.base_delay_s * self.multiplier ** max(0, attempt - 1))
        if not self.jitter or not raw:
            return raw
        digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big")) if seed else random.Random()
        return max(0.0, raw * (1 + rng.uniform(-self.jitter, self.jitter)))


class HintThresholds(BaseModel):
    """When the task SLO hints speak up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spike_factor: float = Field(default=3.0, gt=1.0)
    spike_min_failures: int = Field(default=5, ge=1)
    dominant_share: float = Field(default=0.6, gt=0.0, le=1.0)
    dominant_min_failures: int = Field(default=10, ge=1)
    failure_rate: float = Field(default=0.2, gt=0.0, le=1.0)
    failure_rate_min_events: int = Field(default=20, ge=1)
    silent_loop_retries: int = Field(default=3, ge=2)


class RetryPolicies(BaseModel):
    """The policy file: a default, per-task-type overrides, never-retry categories, auto retry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: RetryPolicy = RetryPolicy()
    task_types: dict[str, RetryPolicy] = Field(default_factory=dict)
    never_retry_categories: tuple[str, ...] = DEFAULT_NEVER_RETRY
    # The stores whose failed tasks the periodic sync requeues on its own ([native, rq, celery]; true = all).
    # Empty by default: requeueing another system's jobs on a timer is a decision for its owner.
    auto_retry: tuple[str, ...] = ()
    hints: HintThresholds = HintThresholds()

    @field_validator("auto_retry", mode="before")
    @classmethod
    def _stores(cls, value: Any) -> Any:
        if value is True:
            return KINDS
        if value is False or value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            unknown = sorted({str(v) for v in value} - set(KINDS))
            if unknown:
                raise ValueError(f"unknown store(s) {unknown}; use {', '.join(KINDS)}")
        return value

    def auto_retries(self, kind: str) -> bool:
        """Whether the operator let the periodic sync requeue this store's tasks."""
        return kind in self.auto_retry

    @field_validator("never_retry_categories")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(TASK_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categor(y/ies) {unknown}; use {', '.join(TASK_CATEGORIES)}")
        return value

    def for_type(self, task_type: str) -> RetryPolicy:
        """The task type's own policy, else the one of its last dotted name (module paths vary), else default."""
        if task_type in self.task_types:
            return self.task_types[task_type]
        short = task_type.rsplit(".", 1)[-1]
        return self.task_types.get(short, self.default)

    def decide(
        self,
        *,
        retryable: bool,
        task_type: str,
        category: str,
        retry_count: int,
        max_retries: int | None = None,
        source_exhausted: bool = False,
        seed: str = "",
    ) -> RetryDecision:
        """Whether a failed task may run again.

        `retryable` is the classification's verdict (the same one stored on the task's event); the policy only
        adds the operator's never-retry categories and the retry limit (the task's own max, if it declares one,
        wins). `source_exhausted`: the source says its own retries are used up without recording its limit.
        """
        policy = self.for_type(task_type)
        limit: int | None = max_retries if max_retries is not None else policy.max_retries
        if source_exhausted and max_retries is None:
            limit = None
        if category in self.never_retry_categories:
            return RetryDecision(
                False,
                "category_never_retried",
                f"{category} failures fail the same way again; they are never retried",
                limit,
                None,
            )
        if not retryable:
            return RetryDecision(
                False,
                "failure_not_retryable",
                f"this {category} failure is classified as not retryable: another attempt fails the same way",
                limit,
                None,
            )
        if source_exhausted or (limit is not None and retry_count >= limit):
            shown = "its source's limit" if limit is None else str(limit)
            return RetryDecision(
                False, "retries_exhausted", f"retried {retry_count} time(s); the limit is {shown}", limit, None
            )
        return RetryDecision(True, "", "", limit, policy.delay_s(retry_count + 1, seed=seed))


def _validate(doc: Any, origin: str) -> RetryPolicies:
    try:
        return RetryPolicies.model_validate(doc or {})
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise RetryPolicyError(
            f"retry policy file {origin} is invalid: {problems[0]['field']}: {problems[0]['message']}",
            details={"path": origin, "problems": problems},
        ) from exc


_POLICY_FILE = config_files.FileKind("retry policy file", RetryPolicyError, _validate)


def load_retry_policies(path: Path | None) -> RetryPolicies:
    """The policies of a YAML/JSON file, or the defaults without one; RetryPolicyError when it is invalid."""
    return RetryPolicies() if path is None else config_files.load(path, _POLICY_FILE)
