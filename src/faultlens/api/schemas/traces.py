"""Models of the pivots: a trace, correlation or request as one timed list of events and evidence spans."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from faultlens.api.schemas.base import RFC3339, Out


class StepLinks(Out):
    event: str | None = Field(description="The event's API path (event steps only)")
    page: str | None = Field(description="The event's dashboard page (event steps only)")


class TraceStep(Out):
    """One event or evidence span of the pivot, timed from the first step's start."""

    kind: str = Field(description="event | span")
    id: str = Field(description="The event id, or the span id")
    name: str = Field(description="The event's operation (its source when it has none), or the span name")
    source: str
    status: str = Field(description="An event's status (success, failure ...), or a span's (error, ok, unset)")
    failed: bool = Field(description="Event: classified as a failure (failure_class is not none); span: status error")
    failing: bool = Field(
        description="The root-cause step: the earliest-starting failed evidence span, else the earliest-starting "
        "failed event; at most one step per answer"
    )
    started_at: str = Field(description=RFC3339)
    ended_at: str = Field(description=RFC3339)
    start_offset_ms: int = Field(description="Milliseconds from the first step's start")
    duration_ms: float
    http_status: int | None
    error_message: str | None
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    event_id: str | None = Field(description="The event's id (event steps), else null")
    links: StepLinks
    correlation_id: str | None = Field(description="Event steps only (null on span steps)")
    request_id: str | None = Field(description="Event steps only (null on span steps)")
    failure_class: str | None = Field(description="Event steps only (null on span steps)")
    failure_kind: str | None = Field(description="Event steps only (null on span steps)")
    span_kind: str | None = Field(
        description="Span steps only (null on event steps): client | internal | producer | server | consumer"
        " | unspecified"
    )
    attributes: dict[str, Any] | None = Field(description="Span steps only (null on event steps)")


class TraceView(Out):
    pivot: str = Field(description="trace | correlation | request")
    id: str = Field(description="The id pivoted on")
    trace_ids: list[str] = Field(description="The traces whose evidence spans are included")
    started_at: str = Field(description=RFC3339 + "; the first step's start")
    ended_at: str = Field(description=RFC3339 + "; the last step's end")
    duration_ms: float
    event_count: int
    span_count: int
    failing_step: int | None = Field(description="Index in `steps` of the failing step, or null when none failed")
    truncated: bool = Field(description="More than 500 events or 500 spans matched; the earliest are shown")
    steps: list[TraceStep] = Field(description="In start order (enclosing steps first when two start together)")
