"""The duplicates drill, fast mode: the same batch and the same OTLP export delivered three times, stored once."""

from __future__ import annotations

import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, run_drill
from faultlens.drills.scenarios import duplicates
from faultlens.otlp.decode import decode_traces


def test_duplicates_drill_passes_with_its_evidence(drill_config: DrillConfig) -> None:
    result = run_drill(duplicates.DRILL, drill_config)
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    deltas = result.metric_deltas
    batch_sends, otlp_sends = duplicates.DELIVERIES, duplicates.DELIVERIES + 1
    assert deltas['faultlens_ingest_events_total{outcome="accepted"}'] == duplicates.BATCH + 1
    assert deltas['faultlens_ingest_events_total{outcome="duplicate"}'] == (
        duplicates.BATCH * (batch_sends - 1) + (otlp_sends - 1)
    )
    assert deltas['faultlens_otlp_items_total{outcome="event",signal="spans"}'] == otlp_sends
    assert deltas['faultlens_otlp_items_total{outcome="evidence",signal="spans"}'] == 1
    # Every delivery's trace id is in its access log line; plus the exported trace itself.
    assert len(result.log_lines) == batch_sends + otlp_sends
    assert {line["trace_id"] for line in result.log_lines} < set(result.trace_ids)
    assert result.lost == 0


def test_otlp_json_form_decodes_to_the_same_export() -> None:
    export, event_id = duplicates.build_export("0af7651916cd43dd8448eb211c80319c", "r-1")
    body = duplicates.as_otlp_json(export)
    span = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert event_id == f"otlp-{span['traceId']}-{span['spanId']}"
    assert isinstance(export, ExportTraceServiceRequest)
    assert decode_traces(body, "application/json") == export
