"""The FaultlensError tree: every failure the product reports has a code, an HTTP status and one body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `details` is always an object: {} when there is nothing to add. Problems with request parameters go under
# "params" as [{"name", "location", "message"}] (param_details); other errors add named keys (limit_bytes, id...).


class FaultlensError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details) if details else {}
        if code is not None:
            self.code = code


def param_problem(name: str, message: str, *, location: str = "query") -> dict[str, str]:
    """One entry of details["params"]: which parameter, where it was sent (query, path, body, header), why."""
    return {"name": name, "location": location, "message": message}


def param_details(name: str, message: str, *, location: str = "query", **extra: Any) -> dict[str, Any]:
    """The details of an error about one request parameter, in the documented shape."""
    return {"params": [param_problem(name, message, location=location)], **extra}


class InvalidRequest(FaultlensError):
    code = "invalid_request"
    http_status = 400


class Unauthorized(FaultlensError):
    code = "unauthorized"
    http_status = 401


class Forbidden(FaultlensError):
    code = "forbidden"
    http_status = 403


class NotFound(FaultlensError):
    code = "not_found"
    http_status = 404


class EventNotFound(NotFound):
    code = "event_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class Conflict(FaultlensError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(FaultlensError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(FaultlensError):
    code = "unsupported_media_type"
    http_status = 415


class ServiceUnavailable(FaultlensError):
    code = "service_unavailable"
    http_status = 503


class DatabaseUnavailable(ServiceUnavailable):
    """The database refused, dropped the connection or did not answer within its deadline; retry later."""

    code = "database_unavailable"


class ReceiverBusy(FaultlensError):
    """The OTLP receiver already runs Settings.otlp_max_inflight exports; the exporter retries after Retry-After."""

    code = "receiver_busy"
    http_status = 429


class RequestBodyTimeout(FaultlensError):
    """The request body did not arrive within Settings.request_body_timeout_s."""

    code = "request_body_read_timeout"
    http_status = 408


class RulePackError(FaultlensError):
    """A rule pack that does not load: bad schema, bad regex, duplicate id."""

    code = "invalid_rule_pack"
    http_status = 400


class SloConfigError(FaultlensError):
    """The SLO file does not load; a server configuration problem, not the caller's."""

    code = "invalid_slo_file"
    http_status = 500


# Failed tasks in Redis (faultlens.connectors).
class TaskNotFound(NotFound):
    code = "task_not_found"


class TaskNotRetryable(Conflict):
    code = "task_not_retryable"


class AmbiguousTaskId(Conflict):
    code = "ambiguous_task_id"


class RedisUnavailable(ServiceUnavailable):
    """Redis refused, dropped or did not answer within Settings.redis_timeout_s."""

    code = "redis_unavailable"


class TaskScanFailed(FaultlensError):
    """Redis answered, but reading the failed tasks failed (wrong key type, a script error...)."""

    code = "task_scan_failed"
    http_status = 500


class RetryPolicyError(InvalidRequest):
    code = "invalid_retry_policy"


class RetentionNotEnabled(Conflict):
    """Retention of a task store was asked for but its operator has not turned it on (it deletes their data)."""

    code = "task_retention_not_enabled"


class AlertRoutingError(FaultlensError):
    """The alert routing file (Settings.alert_routing_file) is invalid: the server does not start with it."""

    code = "alert_routing_invalid"
    http_status = 500


class AlertNotFound(NotFound):
    code = "alert_not_found"


class SilenceNotFound(NotFound):
    code = "silence_not_found"


class NotificationNotFound(NotFound):
    code = "notification_not_found"


# Release gates (releases/).
class RolloutNotFound(NotFound):
    code = "rollout_not_found"


class RollbackNotFound(NotFound):
    code = "rollback_not_found"


class AnalysisNotFound(NotFound):
    code = "canary_analysis_not_found"


class ReplayReportNotFound(NotFound):
    code = "replay_report_not_found"


class EvidenceNotFound(NotFound):
    code = "readiness_evidence_not_found"


class ReleaseNotFound(NotFound):
    code = "release_not_found"


class RolloutConflict(Conflict):
    """The rollout is not in a state that allows this (promoting a rolled-back one, a second running one ...)."""

    code = "rollout_conflict"


class ReplaySuiteError(InvalidRequest):
    """A replay suite that cannot be run: wrong version, a bad request entry, a secret reference not set."""

    code = "invalid_replay_suite"


class ReplayTargetNotAllowed(Forbidden):
    """The replay target is not on FAULTLENS_REPLAY_TARGETS: faultlens calls only the bases its operator listed."""

    code = "replay_target_not_allowed"
