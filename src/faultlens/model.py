"""The event model: closed enums and the derived classification every event carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    CANCELLED = "cancelled"


FAILED_STATUSES = frozenset({Status.FAILURE, Status.RETRY, Status.DEAD_LETTER, Status.CANCELLED})


class ItemType(StrEnum):
    REQUEST = "request"
    TASK = "task"
    JOB = "job"
    MESSAGE = "message"


class FailureClass(StrEnum):
    SERVICE_FAILURE = "service_failure"
    CLIENT_FAILURE = "client_failure"
    CLIENT_ABORT = "client_abort"
    NONE = "none"


# The classes of a failure (every class but none): the failure lists' failure_class values, the "all" scope.
FAILED_CLASSES = (FailureClass.SERVICE_FAILURE, FailureClass.CLIENT_FAILURE, FailureClass.CLIENT_ABORT)


class Category(StrEnum):
    SERVICE_TIMEOUT = "service_timeout"
    AUTHORIZATION = "authorization"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    DATA_ERROR = "data_error"
    SYSTEM_ERROR = "system_error"
    RATE_LIMITED = "rate_limited"
    NETWORK_ERROR = "network_error"
    DEPENDENCY_ERROR = "dependency_error"
    CLIENT_ABORT = "client_abort"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    CANCELLED = "cancelled"
    NONE = "none"
    UNKNOWN = "unknown"


class Scope(StrEnum):
    """The error-distribution scopes of the stats APIs."""

    ALL = "all"
    SERVICE = "service"
    CLIENT = "client"
    ABORT = "abort"


SCOPE_CLASSES: dict[Scope, tuple[FailureClass, ...]] = {
    Scope.ALL: FAILED_CLASSES,
    Scope.SERVICE: (FailureClass.SERVICE_FAILURE,),
    Scope.CLIENT: (FailureClass.CLIENT_FAILURE,),
    Scope.ABORT: (FailureClass.CLIENT_ABORT,),
}


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classifier derives for one event; `rule_version` is the pack id that decided it."""

    failure_kind: str
    failure_class: FailureClass
    is_actionable: bool
    category: str
    retryable: bool
    rule_name: str
    rule_version: str


# What a stored classification is, for telling whether a reclassification changed it. rule_version is left out:
# a built-in decision (success, unclassified) carries the whole stack's version, so comparing it would rewrite
# every such row on each activation although nothing about it changed. The backfill writes a row only when one of
# these differs, and the rule-change preview counts exactly those rows, so the two always agree.
DECISION = ("failure_kind", "failure_class", "is_actionable", "category", "retryable", "rule_name")
_DECISION_BOOLS = frozenset({"is_actionable", "retryable"})


def decision(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The DECISION fields of a stored or classified row, booleans normalised (SQLite stores them as 0/1)."""
    return tuple(bool(row[n]) if n in _DECISION_BOOLS else row[n] for n in DECISION)
