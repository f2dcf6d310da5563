"""OTLP ResourceLogs -> raw failure events: records at or above the configured severity, or carrying exception.*."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs

from faultlens.otlp.spans import ResourceContext, exception_text
from faultlens.otlp.values import OtlpConfig, attribute_map, nanos_to_ms, to_scalar
from faultlens.timeutil import now_ms

# A log record is no request, task or message of its own: it reports a failure of some unit of work.
ITEM_TYPE = "job"


@dataclass
class LogBatch:
    """One export request's log records, mapped."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    dropped: int = 0  # below the severity threshold, without an exception: not an error


def log_event_id(source: str, record: LogRecord) -> str:
    """A digest of what identifies the record (its service and its whole content): a re-delivery is one event."""
    digest = hashlib.sha256(source.encode() + b"\x00" + record.SerializeToString(deterministic=True))
    return "otlp-log-" + digest.hexdigest()[:48]


def _body_text(record: LogRecord) -> str | None:
    if not record.HasField("body"):
        return None
    item = to_scalar(record.body)
    return None if item is None or item == "" else str(item)


def _event(record: LogRecord, res: ResourceContext, scope_name: str, config: OtlpConfig) -> dict[str, Any]:
    attrs = attribute_map(record.attributes)
    when = nanos_to_ms(record.time_unix_nano) or nanos_to_ms(record.observed_time_unix_nano) or now_ms()
    raw: dict[str, Any] = {
        "id": log_event_id(res.source, record),
        "source": res.source,
        # The instrumentation scope of a log record is its logger's name: what part of the service spoke.
        "operation": scope_name or None,
        "item_type": ITEM_TYPE,
        "status": "failure",
        "occurred_at": when,
        "error_message": exception_text(attrs) or _body_text(record) or record.severity_text or None,
        "trace_id": record.trace_id.hex() if any(record.trace_id) else None,
        "span_id": record.span_id.hex() if any(record.span_id) else None,
        **res.shared_fields(attrs, config),
    }
    return {k: v for k, v in raw.items() if v is not None}


def _kept(record: LogRecord, config: OtlpConfig) -> bool:
    if record.severity_number >= config.log_min_severity:
        return True
    return any(kv.key.startswith("exception.") for kv in record.attributes)


def map_logs(resource_logs: Iterable[ResourceLogs], config: OtlpConfig) -> LogBatch:
    batch = LogBatch()
    for item in resource_logs:
        res = ResourceContext.of(attribute_map(item.resource.attributes), config)
        for scope_logs in item.scope_logs:
            for record in scope_logs.log_records:
                if not _kept(record, config):
                    batch.dropped += 1
                elif len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
                    batch.rejected.append("a log record's trace_id must be 16 bytes and its span_id 8 (or empty)")
                else:
                    batch.events.append(_event(record, res, scope_logs.scope.name, config))
    return batch
