"""The one error body as a model, and the `responses=` entries routes name for their own error statuses."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from faultlens.api.schemas.base import Out


class ErrorDetail(Out):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_request, unauthorized, not_found")
    message: str = Field(description="Human-readable explanation; may change between releases")
    details: dict[str, Any] = Field(
        description="Structured context, always an object ({} when there is none): e.g. params (the refused "
        "parameters, each with name, location and message), limit_bytes, required_scope, allowed_methods"
    )


class ErrorBody(Out):
    """The one error body every failure answers with, whatever its status."""

    error: ErrorDetail
    request_id: str = Field(description="Also sent as the X-Request-ID response header")
    correlation_id: str | None = Field(
        description="The caller's X-Correlation-ID, or a new one when it sent none (also the X-Correlation-ID "
        "response header)"
    )
    trace_id: str | None = Field(
        description="The W3C trace id: faultlens' own trace when tracing is on, else the caller's traceparent's; "
        "null when there is neither"
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries answering with the one error body, for route-specific statuses (404, 409 ...)."""
    return {status: {"model": ErrorBody, "description": STATUS_TEXT.get(status, "Error")} for status in statuses}


STATUS_TEXT = {
    400: "Invalid request: a bad or unknown parameter, a malformed body, or a refused Host/Origin",
    401: "An API key is required (keys exist) or the one sent is not valid",
    403: "The API key lacks the scope, or the request's origin is refused",
    404: "Not found",
    408: "The request body did not arrive in time",
    409: "Conflict with the current state",
    413: "The body or batch is over its limit",
    415: "Unsupported content type",
    503: "A backing service (database, Redis) is unavailable; retry later",
}
