"""Evidence helpers shared by the ingest drills: traced sends, stored ids by the API, access log lines, deltas."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from faultlens.drills.harness import DrillContext, Server, new_trace_id, series_key, trace_id_of, traceparent
from faultlens.timeutil import ms_to_rfc3339, now_ms


def now_rfc3339() -> str:
    """Now as the RFC 3339 text events carry."""
    text = ms_to_rfc3339(now_ms())
    assert text is not None  # only None for a None time
    return text


def traced_headers(label: str) -> tuple[dict[str, str], str, str]:
    """Headers a client sends to find its request later: (headers, request id, trace id)."""
    request_id = f"drill-{label}-{secrets.token_hex(4)}"
    trace_id = new_trace_id()
    return {"X-Request-ID": request_id, "traceparent": traceparent(trace_id)}, request_id, trace_id


def check_answer_ids(ctx: DrillContext, what: str, answer: httpx.Response, request_id: str, trace_id: str) -> None:
    """The answer names the request and its trace (X-Request-ID, traceparent / error body), so a client can quote it."""
    answered_request = answer.headers.get("x-request-id")
    answered_trace = trace_id_of(answer)
    ctx.check(
        f"{what}: answer carries its request id and trace id",
        answered_request == request_id and answered_trace == trace_id,
        f"X-Request-ID {answered_request}, trace {answered_trace}",
    )
    ctx.add_trace_id(answered_trace)


def access_line(server: Server, request_id: str) -> dict[str, Any] | None:
    """The access log line of one request (faultlens.access, JSON), or None while it is not written yet."""
    for line in server.logs():
        if line.get("logger") == "faultlens.access" and line.get("request_id") == request_id:
            return line
    return None


def check_logged(
    ctx: DrillContext,
    server: Server,
    what: str,
    request_id: str,
    trace_id: str,
    *,
    status: int,
    error_code: str | None = None,
) -> None:
    """The request's JSON access line carries its request id, trace id, status (and error code): logs find it."""
    line = ctx.try_wait(lambda: access_line(server, request_id), ctx.cfg.seconds(50, at_least=5.0))
    ok = (
        line is not None
        and line.get("trace_id") == trace_id
        and line.get("status") == status
        and line.get("error_code") == error_code
    )
    detail = "no access line" if line is None else f"{line.get('msg')} trace_id={line.get('trace_id')}"
    ctx.check(f"{what}: JSON access log line carries request id {request_id} and its trace id", ok, detail)
    if line is not None:
        ctx.add_log_lines([line])


def stored(server: Server, ids: Iterable[str]) -> dict[str, bool]:
    """Each id -> whether GET /api/v1/events/{id} finds it (200) rather than 404."""
    out: dict[str, bool] = {}
    for event_id in ids:
        answer = server.get(f"/api/v1/events/{quote(event_id, safe='')}")
        if answer.status_code not in (200, 404):
            answer.raise_for_status()
        out[event_id] = answer.status_code == 200
    return out


def events_of_source(server: Server, source: str) -> list[dict[str, Any]]:
    """Every stored event of `source` over the last 24 h, as the event list pages them (repeats kept)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"source": source, "window": "24h", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        answer = server.get("/api/v1/events", params=params)
        answer.raise_for_status()
        page = answer.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def ids_of_source(server: Server, source: str) -> list[str]:
    """The ids of events_of_source, repeats kept."""
    return [item["id"] for item in events_of_source(server, source)]


def delta(deltas: dict[str, float], name: str, **labels: str) -> float:
    """One series' change in a metric_delta() answer (0 when it did not move)."""
    return deltas.get(series_key(name, labels), 0.0)
