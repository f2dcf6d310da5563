"""The pivots: every event and evidence span sharing a trace, correlation or request id, as one timed list of steps.

A step is an event (an outcome faultlens classified) or an evidence span (a failed CLIENT / INTERNAL span received
over OTLP). Steps are ordered by start: a span's started_at; an event's started_at, else occurred_at minus its
duration, else occurred_at. Offsets are from the first step's start.

The failing step (`failing: true`, at most one): the earliest-starting failed evidence span if the answer has one
(the downstream call that failed first is the likeliest root cause), else the earliest-starting failed event (an
event whose classification is not `none`). A span is failed when its status is `error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import Connection

from faultlens.errors import NotFound
from faultlens.store import events as event_store
from faultlens.store import traces as span_store
from faultlens.timeutil import ms_to_rfc3339

Pivot = Literal["trace", "correlation", "request"]
# How many events and how many spans one answer holds at most; `truncated` says when either was cut.
MAX_EVENTS = 500
MAX_SPANS = 500

_LINK: dict[Pivot, str] = {"trace": "trace_id", "correlation": "correlation_id", "request": "request_id"}


def _event_step(row: dict[str, Any]) -> dict[str, Any]:
    ended = int(row["occurred_at"])
    duration = row["duration_ms"]
    if row["started_at"] is not None:
        started = int(row["started_at"])
    elif duration is not None:
        started = ended - round(duration)
    else:
        started = ended
    started = min(started, ended)
    event = event_store.row_to_event(row)
    path = quote(event["id"], safe="")
    return {
        "kind": "event",
        "id": event["id"],
        "name": event["operation"] or event["source"],
        "source": event["source"],
        "status": event["status"],
        "failed": event["failure_class"] != "none",
        "http_status": event["http_status"],
        "error_message": event["error_message"],
        "trace_id": event["trace_id"],
        "span_id": event["span_id"],
        "parent_span_id": None,
        "correlation_id": event["correlation_id"],
        "request_id": event["request_id"],
        "failure_class": event["failure_class"],
        "failure_kind": event["failure_kind"],
        "event_id": event["id"],
        "links": {"event": f"/api/v1/events/{path}", "page": f"/events/{path}"},
        "span_kind": None,
        "attributes": None,
        "_start": started,
        "_end": ended,
        "_duration": float(duration) if duration is not None else float(ended - started),
    }


def _span_step(span: dict[str, Any]) -> dict[str, Any]:
    started, ended = int(span["started_at"]), int(span["ended_at"])
    return {
        "kind": "span",
        "id": span["span_id"],
        "name": span["name"],
        "source": span["source"],
        "status": span["status"],
        "failed": span["status"] == "error",
        "http_status": span["http_status"],
        "error_message": span["error_message"],
        "trace_id": span["trace_id"],
        "span_id": span["span_id"],
        "parent_span_id": span["parent_span_id"],
        "correlation_id": None,
        "request_id": None,
        "failure_class": None,
        "failure_kind": None,
        "span_kind": span["kind"],
        "attributes": span["attributes"],
        "event_id": None,
        "links": {"event": None, "page": None},
        "_start": started,
        "_end": max(ended, started),
        "_duration": float(span["duration_ms"]),
    }


def _failing_index(steps: Sequence[dict[str, Any]]) -> int | None:
    for kind in ("span", "event"):
        for i, step in enumerate(steps):  # steps are in start order: the first match starts earliest
            if step["kind"] == kind and step["failed"]:
                return i
    return None


def pivot(conn: Connection, *, tenant: str, by: Pivot, value: str) -> dict[str, Any]:
    """The steps sharing `value` as their trace, correlation or request id; NotFound when there are none.

    Events match on their own id column; evidence spans on the trace ids of those events (and, for a trace, the
    trace id itself, so a trace whose outcome has not arrived yet still shows its failed calls).
    """
    rows, events_cut = event_store.list_linked(conn, tenant=tenant, link=_LINK[by], value=value, limit=MAX_EVENTS)
    trace_ids = sorted({r["trace_id"] for r in rows if r["trace_id"]} | ({value} if by == "trace" else set()))
    spans, spans_cut = span_store.list_spans(conn, tenant=tenant, trace_ids=trace_ids, limit=MAX_SPANS)
    if not rows and not spans:
        raise NotFound(
            f"no events or spans with {_LINK[by]} {value!r}", code=f"{by}_not_found", details={_LINK[by]: value}
        )
    steps = [_event_step(r) for r in rows] + [_span_step(s) for s in spans]
    # Enclosing steps first when two start together: a waterfall reads parent before child.
    steps.sort(key=lambda s: (s["_start"], -s["_end"], s["kind"] != "event", s["id"]))
    first = steps[0]["_start"]
    last = max(s["_end"] for s in steps)
    # Times are whole milliseconds but spans last microseconds: the trace lasts at least its longest step.
    span_ms = max([float(last - first)] + [s["_start"] - first + s["_duration"] for s in steps])
    failing = _failing_index(steps)
    out_steps = []
    for i, step in enumerate(steps):
        start, end, duration = step.pop("_start"), step.pop("_end"), step.pop("_duration")
        step.update(
            started_at=ms_to_rfc3339(start),
            ended_at=ms_to_rfc3339(end),
            start_offset_ms=start - first,
            duration_ms=duration,
            failing=i == failing,
        )
        out_steps.append(step)
    return {
        "pivot": by,
        "id": value,
        "trace_ids": trace_ids,
        "started_at": ms_to_rfc3339(first),
        "ended_at": ms_to_rfc3339(last),
        "duration_ms": span_ms,
        "event_count": len(rows),
        "span_count": len(spans),
        "failing_step": failing,
        "truncated": events_cut or spans_cut,
        "steps": out_steps,
    }
