"""The `smoke` drill: one server, one event in, seen in /metrics and in the JSON log under the caller's trace id."""

from __future__ import annotations

import secrets

from faultlens.drills.harness import Drill, DrillContext, metric_sum, trace_id_of, traceparent
from faultlens.timeutil import ms_to_rfc3339, now_ms


def sample_event(event_id: str) -> dict[str, object]:
    return {
        "id": event_id,
        "source": "drill-smoke",
        "operation": "POST /orders",
        "status": "failure",
        "occurred_at": ms_to_rfc3339(now_ms()),
        "http_status": 502,
        "error_message": "upstream answered 502 for order 7",
    }


def run(ctx: DrillContext) -> None:
    server = ctx.start_server()
    before = server.metrics()
    event_id = f"smoke-{secrets.token_hex(4)}"
    sent_parent = traceparent()
    answer = server.post("/api/v1/events", json=[sample_event(event_id)], headers={"traceparent": sent_parent})
    trace_id = trace_id_of(answer)
    ctx.note(f"POST /api/v1/events answered {answer.status_code}, trace {trace_id}")
    ctx.check("ingest answered 200", answer.status_code == 200, f"status {answer.status_code}")
    ctx.check("one event accepted", answer.json().get("accepted") == 1, answer.text[:200])
    ctx.check("the answer names the caller's trace", trace_id == sent_parent.split("-")[1], str(trace_id))
    ctx.add_trace_id(trace_id)

    after = server.metrics()
    ctx.record_deltas(before, after, ["faultlens_ingest_"])
    accepted = metric_sum(after, "faultlens_ingest_events_total", outcome="accepted") - metric_sum(
        before, "faultlens_ingest_events_total", outcome="accepted"
    )
    ctx.check("ingest_events_total{outcome=accepted} moved by 1", accepted == 1, f"delta {accepted:g}")

    def traced_lines() -> list[dict[str, object]]:
        return [line for line in server.logs() if line.get("trace_id") == trace_id]

    lines = ctx.try_wait(traced_lines, ctx.cfg.seconds(10, at_least=5)) or []
    ctx.add_log_lines(lines)
    ctx.check("a JSON log line carries the trace id", bool(lines), f"{len(lines)} lines")

    stored = server.get(f"/api/v1/events/{event_id}")
    ctx.check("the event reads back", stored.status_code == 200, f"status {stored.status_code}")
    ctx.lost += 0 if stored.status_code == 200 else 1


DRILL = Drill(
    name="smoke",
    title="Smoke: one event through a real server",
    shows="An accepted event moves ingest_events_total and leaves a JSON log line carrying the caller's trace id.",
    run=run,
)
