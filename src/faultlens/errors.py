"""The FaultlensError tree: every failure the product reports has a code, an HTTP status and one body."""

from __future__ import annotations

from typing import Any


class FaultlensError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


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
