"""Request bodies the routes read raw (documented with openapi_extra), and the download responses."""

from __future__ import annotations

from typing import Any

EVENT_IN: dict[str, Any] = {
    "type": "object",
    "required": ["source", "status", "occurred_at"],
    "properties": {
        "id": {"type": "string", "maxLength": 128, "description": "Idempotency key; generated when absent"},
        "source": {"type": "string", "maxLength": 128},
        "operation": {"type": "string"},
        "item_type": {"type": "string", "enum": ["request", "task", "job", "message"]},
        "status": {"type": "string", "enum": ["success", "failure", "retry", "dead_letter", "cancelled"]},
        "occurred_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": "string", "format": "date-time"},
        "duration_ms": {"type": "number", "minimum": 0},
        "http_status": {"type": "integer", "minimum": 100, "maximum": 599},
        "error_code": {"type": "string"},
        "error_message": {"type": "string"},
        "attempt": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "max_attempts": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "trace_id": {"type": "string", "maxLength": 128},
        "span_id": {"type": "string", "maxLength": 128},
        "correlation_id": {"type": "string", "maxLength": 128},
        "request_id": {"type": "string", "maxLength": 128},
        "job_id": {"type": "string", "maxLength": 128},
        "release": {"type": "string"},
        "environment": {"type": "string"},
        "attributes": {"type": "object", "additionalProperties": True},
    },
    "additionalProperties": False,
}

# The batch is what the route refuses; an item that is not a valid EventIn is reported in `rejected` and the rest
# is stored, so items are any JSON value here and EventIn (a component of its own) says what gets stored.
_BATCH_ITEM: dict[str, Any] = {"description": "An event (see EventIn); an invalid one is reported in `rejected`"}
_EXAMPLE_EVENT = {
    "source": "checkout-api",
    "operation": "POST /orders",
    "status": "failure",
    "occurred_at": "2026-12-06T06:16:47.036Z",
    "http_status": 504,
    "error_message": "upstream timeout after 30s",
}
INGEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'A batch of events: a JSON array, an object {"events": [...]}, or NDJSON (one event a '
        "line). Invalid events are reported in `rejected`; the valid ones are stored.",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "array", "items": _BATCH_ITEM},
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {"events": {"type": "array", "items": _BATCH_ITEM}},
                        },
                    ]
                },
                "example": [_EXAMPLE_EVENT],
            },
            "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON event per line"}},
        },
    }
}

RULE_PACK: dict[str, Any] = {
    "type": "object",
    "required": ["id", "rules"],
    "properties": {
        "id": {"type": "string", "description": "name@YYYY-MM-DD"},
        "description": {"type": "string"},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "match", "failure_kind", "failure_class", "category"],
                "properties": {
                    "name": {"type": "string"},
                    "match": {"type": "object", "additionalProperties": True},
                    "failure_kind": {"type": "string"},
                    "failure_class": {
                        "type": "string",
                        "enum": ["service_failure", "client_failure", "client_abort"],
                    },
                    "category": {"type": "string"},
                    "examples": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
                },
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

PACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A candidate rule pack as JSON (the format of the shipped packs; see docs/rules.md).",
        "content": {"application/json": {"schema": RULE_PACK}},
    }
}


DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file in the requested format (Content-Disposition: attachment)",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            "text/csv": {"schema": {"type": "string"}},
            "text/markdown": {"schema": {"type": "string"}},
        },
    }
}
