"""The integrations' trace context: W3C traceparent and baggage parsing, ids, propagation headers."""

from __future__ import annotations

import pytest

from faultlens.integrations.context import (
    baggage_value,
    child_of,
    current_trace,
    from_headers,
    parse_traceparent,
    trace_scope,
)
from faultlens.integrations.events import event

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN, True)),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, False)),
        (f" 00-{TRACE.upper()}-{SPAN}-01 ", (TRACE, SPAN, True)),
        (f"01-{TRACE}-{SPAN}-01-future-part", (TRACE, SPAN, True)),  # a later version may append fields
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 has exactly four fields
        (f"ff-{TRACE}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_traceparent(header: str | None, expected: tuple[str, str, bool] | None) -> None:
    assert parse_traceparent(header) == expected


def test_headers_make_a_child_span_of_the_callers_trace() -> None:
    ctx = from_headers(
        {
            "traceparent": f"00-{TRACE}-{SPAN}-01",
            "x-request-id": "req-1",
            "baggage": "userId=alice, correlation_id = order%2D9;prop=1",
        }
    )
    assert (ctx.trace_id, ctx.parent_span_id, ctx.request_id, ctx.correlation_id) == (TRACE, SPAN, "req-1", "order-9")
    assert len(ctx.span_id) == 16 and ctx.span_id != SPAN
    assert ctx.headers() == {
        "traceparent": f"00-{TRACE}-{ctx.span_id}-01",
        "x-request-id": "req-1",
        "x-correlation-id": "order-9",
    }
    # x-correlation-id wins over baggage; a control character or an over-long id is no id.
    assert from_headers({"x-correlation-id": "c-1", "baggage": "correlation_id=c-2"}).correlation_id == "c-1"
    assert from_headers({"x-request-id": "a\x01b"}).request_id is None
    assert from_headers({"x-request-id": "r" * 129}).request_id is None
    fresh = from_headers({})
    assert len(fresh.trace_id) == 32 and fresh.parent_span_id is None
    assert baggage_value("a=1,b=2", "c") is None


def test_the_current_trace_stamps_events_and_children_keep_the_trace() -> None:
    assert current_trace() is None
    parent = from_headers({"traceparent": f"00-{TRACE}-{SPAN}-01", "x-correlation-id": "c-7"})
    with trace_scope(parent):
        stamped = event(source="s", operation="op", status="success")
        child = child_of(current_trace())
    assert current_trace() is None
    assert (stamped["trace_id"], stamped["span_id"], stamped["correlation_id"]) == (TRACE, parent.span_id, "c-7")
    assert (child.trace_id, child.parent_span_id, child.correlation_id) == (TRACE, parent.span_id, "c-7")
    assert stamped["occurred_at"].endswith("Z") and len(stamped["id"]) == 32
    assert "trace_id" not in event(source="s", operation="op", status="success")
