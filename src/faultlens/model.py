"""The event model: closed enums and the derived classification every event carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
