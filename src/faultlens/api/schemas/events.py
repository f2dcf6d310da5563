"""Models of the event routes (ingest, listing, one event) and of the fingerprint ranking."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from faultlens.api.schemas.base import RFC3339, Out


class RejectedError(Out):
    code: str
    message: str


class RejectedEvent(Out):
    index: int = Field(description="Position of the event in the batch (0-based)")
    error: RejectedError


class IngestResult(Out):
    accepted: int = Field(description="Events stored by this request")
    duplicates: int = Field(description="Events whose id was already stored (or repeated in the batch)")
    rejected: list[RejectedEvent] = Field(description="Invalid events; the rest of the batch is stored")


class Event(Out):
    """A stored event: what was sent (redacted) plus the classifier's decision."""

    id: str
    source: str
    operation: str | None
    item_type: str = Field(description="request | task | job | message")
    status: str = Field(description="success | failure | retry | dead_letter | cancelled")
    occurred_at: str = Field(description=RFC3339)
    received_at: str = Field(description=RFC3339)
    started_at: str | None
    duration_ms: float | None
    http_status: int | None
    error_code: str | None
    error_message: str | None
    attempt: int | None
    max_attempts: int | None
    trace_id: str | None
    span_id: str | None
    correlation_id: str | None
    request_id: str | None
    job_id: str | None
    release: str | None
    environment: str | None
    attributes: dict[str, Any]
    failure_kind: str
    failure_class: str = Field(description="service_failure | client_failure | client_abort | none")
    is_actionable: bool
    category: str
    retryable: bool
    rule_name: str | None
    rule_version: str
    fingerprint_id: str | None


class EventPage(Out):
    items: list[Event]
    next_cursor: str | None = Field(description="Opaque; pass as `cursor` for the next page; null on the last")


class FingerprintRef(Out):
    id: str
    template: str
    first_seen: str | None
    last_seen: str | None


class EventDetail(Event):
    related: list[Event] = Field(description="Events sharing the trace_id or correlation_id, oldest first")
    fingerprint: FingerprintRef | None
    confirmed_by_version: str | None = Field(
        description="The rule version whose backfill confirmed this event's classification, if one did"
    )


class FingerprintMix(Out):
    failure_class: str
    failure_kind: str
    count: int


class FingerprintItem(Out):
    id: str
    template: str | None
    sample_message: str | None
    count: int
    first_seen: str | None
    last_seen: str | None
    covered_by_rule: bool
    mix: list[FingerprintMix]


class FingerprintList(Out):
    window: str
    items: list[FingerprintItem]
