"""Runs a decoded OTLP export request: outcome events through the ingest pipeline, evidence spans to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from faultlens.ingest import IngestResult, Pipeline
from faultlens.otlp.logs import map_logs
from faultlens.otlp.spans import map_spans
from faultlens.otlp.values import OtlpConfig
from faultlens.store import traces as trace_store

# How many distinct rejection reasons the partial-success message names.
_MAX_REASONS = 3


@dataclass
class ExportOutcome:
    """What an export request came to; `rejected` is the partial-success count the exporter is told."""

    ingest: IngestResult = field(default_factory=IngestResult)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    dropped: int = 0
    evidence_stored: int = 0
    evidence_dropped: int = 0

    def message(self) -> str:
        """The partial-success error message: the count and the first distinct reasons."""
        if not self.rejected:
            return ""
        reasons = list(dict.fromkeys(self.reasons))[:_MAX_REASONS]
        return f"{self.rejected} rejected: " + "; ".join(reasons)


def _ingest(pipeline: Pipeline, raw: list[dict[str, Any]], *, tenant: str, outcome: ExportOutcome) -> None:
    total = outcome.ingest
    for result in pipeline.ingest_iter(
        raw, tenant=tenant, batch_size=pipeline.settings.max_batch_events, epoch_ms=True
    ):
        total.accepted += result.accepted
        total.duplicates += result.duplicates
        total.rejected.extend(result.rejected)
        for item in result.rejected:
            error = item["error"]
            outcome.reasons.append(f"{error['code']}: {error['message']}")
    outcome.rejected += len(total.rejected)


def export_traces(pipeline: Pipeline, request: ExportTraceServiceRequest, *, tenant: str) -> ExportOutcome:
    """Store one ExportTraceServiceRequest's outcomes and evidence for `tenant`."""
    config = OtlpConfig.from_settings(pipeline.settings)
    batch = map_spans(request.resource_spans, config)
    outcome = ExportOutcome(rejected=len(batch.rejected), reasons=list(batch.rejected), dropped=batch.dropped)
    if batch.events:
        _ingest(pipeline, batch.events, tenant=tenant, outcome=outcome)
    if batch.evidence:
        stored, dropped = trace_store.insert_spans(
            pipeline.engine, batch.evidence, tenant=tenant, max_per_trace=config.max_evidence_per_trace
        )
        outcome.evidence_stored, outcome.evidence_dropped = stored, dropped
    return outcome


def export_logs(pipeline: Pipeline, request: ExportLogsServiceRequest, *, tenant: str) -> ExportOutcome:
    """Store one ExportLogsServiceRequest's failure records for `tenant`."""
    config = OtlpConfig.from_settings(pipeline.settings)
    batch = map_logs(request.resource_logs, config)
    outcome = ExportOutcome(rejected=len(batch.rejected), reasons=list(batch.rejected), dropped=batch.dropped)
    if batch.events:
        _ingest(pipeline, batch.events, tenant=tenant, outcome=outcome)
    return outcome
