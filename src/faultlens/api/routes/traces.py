"""Pivot routes: a trace, a correlation id or a request id as every event and evidence span sharing it, timed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faultlens.api import schemas
from faultlens.api.deps import Reader, ServicesDep
from faultlens.errors import InvalidRequest, param_details
from faultlens.triage import traces
from faultlens.triage.traces import Pivot

router = APIRouter(prefix="/api/v1", tags=["traces"])

# The id columns hold 128 characters: a longer id matches nothing, and is refused as the mistake it is.
MAX_ID_LENGTH = 128
_RESPONSES = schemas.error_responses(400, 404)
_DESCRIPTION = (
    "Steps are in start order (an event starts at started_at, else occurred_at minus duration_ms). The failing "
    "step is the earliest-starting failed evidence span (a failed CLIENT / INTERNAL span received over OTLP), "
    "else the earliest-starting failed event. At most 500 events and 500 spans; `truncated` says when more matched."
)


def _checked(name: str, value: str) -> str:
    problem = None
    if not value or len(value) > MAX_ID_LENGTH:
        problem = f"{name} must be 1 to {MAX_ID_LENGTH} characters"
    elif any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        problem = f"{name} must not contain control characters"
    if problem is not None:
        raise InvalidRequest(problem, details=param_details(name, problem, location="path"))
    return value


def _answer(services: ServicesDep, tenant: str, by: Pivot, value: str) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return traces.pivot(conn, tenant=tenant, by=by, value=value)


@router.get(
    "/traces/{trace_id:path}",
    response_model=schemas.TraceView,
    responses=_RESPONSES,
    summary="A trace: its events and evidence spans in time order, the failing step marked",
    description=_DESCRIPTION,
)
def get_trace(trace_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return _answer(services, principal.tenant, "trace", _checked("trace_id", trace_id))


@router.get(
    "/correlations/{correlation_id:path}",
    response_model=schemas.TraceView,
    responses=_RESPONSES,
    summary="The events sharing a correlation id, with their traces' evidence spans, in time order",
    description=_DESCRIPTION,
)
def get_correlation(correlation_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return _answer(services, principal.tenant, "correlation", _checked("correlation_id", correlation_id))


@router.get(
    "/requests/{request_id:path}",
    response_model=schemas.TraceView,
    responses=_RESPONSES,
    summary="The events sharing a request id, with their traces' evidence spans, in time order",
    description=_DESCRIPTION,
)
def get_request(request_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return _answer(services, principal.tenant, "request", _checked("request_id", request_id))
