"""The trace waterfall in Chromium: the event page draws its trace's events and evidence spans by time, highlights
the failing step, and links every id to its pivot page, which draws the same waterfall."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from faultlens.store import traces as span_store
from faultlens.timeutil import ms_to_rfc3339, now_ms
from tests.browser.conftest import LiveServer, screenshot_path

T0 = now_ms() - 600_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _at(offset: int) -> str:
    return str(ms_to_rfc3339(T0 + offset))


def _span(span_id: str, name: str, start: int, end: int, kind: str, message: str) -> dict[str, Any]:
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": "a1",
        "name": name,
        "kind": kind,
        "source": "checkout-api",
        "started_at": T0 + start,
        "ended_at": T0 + end,
        "duration_ms": float(end - start),
        "status": "error",
        "http_status": None,
        "error_message": message,
        "attributes": {"db.system": "postgresql"},
    }


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()


@pytest.fixture(scope="module")
def trace(live_server: LiveServer) -> None:
    common = {"trace_id": TRACE, "correlation_id": "wf-order-42"}
    events = [
        {
            "id": "wf-checkout",
            "source": "checkout-api",
            "operation": "POST /checkout",
            "status": "failure",
            "http_status": 502,
            "error_message": "upstream payments returned 502",
            "started_at": _at(0),
            "duration_ms": 1200,
            "occurred_at": _at(1200),
            "request_id": "wf-req-7",
            **common,
        },
        {
            "id": "wf-auth",
            "source": "auth",
            "operation": "check token",
            "status": "success",
            "started_at": _at(20),
            "duration_ms": 80,
            "occurred_at": _at(100),
            **common,
        },
        {
            "id": "wf-payments",
            "source": "payments",
            "operation": "charge",
            "status": "failure",
            "error_message": "connection pool exhausted",
            "duration_ms": 500,
            "occurred_at": _at(1100),
            **common,
        },
    ]
    with live_server.api() as api:
        r = api.post("/api/v1/events", json=events)
        assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    spans = [
        _span("b2", "SELECT orders", 300, 900, "client", "canceling statement due to statement timeout"),
        _span("c3", "render receipt", 950, 1000, "internal", "template missing"),
    ]
    assert span_store.insert_spans(live_server.services.engine, spans, tenant="default", max_per_trace=64) == (2, 0)


def _rows(page: Page, root: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.locator(f"{root} .wf-row").evaluate_all(
        "rows => rows.map(r => ({id: r.dataset.stepId, kind: r.dataset.kind, failing: r.dataset.failing,"
        " left: r.querySelector('.wf-bar').style.left, width: r.querySelector('.wf-bar').style.width}))"
    )
    return rows


def test_event_page_waterfall_and_pivot_links(page: Page, live_server: LiveServer, trace: None) -> None:
    page.goto("/events/wf-checkout")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#trace")).to_have_attribute("data-state", "ready")
    rows = _rows(page, "#trace")
    assert [(r["kind"], r["id"]) for r in rows] == [
        ("event", "wf-checkout"),
        ("event", "wf-auth"),
        ("span", "b2"),
        ("event", "wf-payments"),
        ("span", "c3"),
    ]
    # Bars are offset and sized by time over the trace's 1,200 ms.
    assert rows[0]["left"] == "0%" and rows[0]["width"] == "100%"
    assert rows[2]["left"] == "25%" and rows[2]["width"] == "50%"
    assert rows[3]["left"] == "50%" and rows[3]["width"] == "41.667%"
    # The failing step: the earliest failed evidence span, highlighted, its message shown.
    assert [r["id"] for r in rows if r["failing"] == "true"] == ["b2"]
    failing = page.locator("#trace .wf-row.wf-failing")
    expect(failing).to_have_count(1)
    expect(failing).to_have_attribute("data-step-id", "b2")
    expect(failing.locator(".wf-root")).to_have_text("failing step")
    expect(failing.locator(".wf-message")).to_have_text("canceling statement due to statement timeout")
    background = failing.evaluate("r => getComputedStyle(r).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    # Event steps link to their event pages; this event is marked instead of linked.
    links = page.locator("#trace a.wf-name").evaluate_all("a => a.map(x => x.getAttribute('href'))")
    assert links == ["/events/wf-auth", "/events/wf-payments"]
    expect(page.locator("#trace .wf-here")).to_have_count(1)
    # Every id links to its pivot.
    hrefs = {
        name: page.locator(f"#details [data-field={name}] a.pivot-link").get_attribute("href")
        for name in ("trace_id", "correlation_id", "request_id")
    }
    assert hrefs == {
        "trace_id": f"/traces/{TRACE}",
        "correlation_id": "/correlations/wf-order-42",
        "request_id": "/requests/wf-req-7",
    }
    page.locator("#trace").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_path("event-trace-light-1280x800"), full_page=True)

    page.locator("#details [data-field=correlation_id] a.pivot-link").click()
    page.wait_for_url("**/correlations/wf-order-42")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#pivot-root")).to_have_attribute("data-state", "ready")
    assert [r["id"] for r in _rows(page, "#waterfall")] == ["wf-checkout", "wf-auth", "b2", "wf-payments", "c3"]
    expect(page.locator("#waterfall .wf-row.wf-failing")).to_have_attribute("data-step-id", "b2")
    expect(page.locator("[data-field=summary]")).to_contain_text("3 events · 2 evidence spans")
    expect(page.locator("#traces a.pivot-link")).to_have_attribute("href", f"/traces/{TRACE}")
    page.screenshot(path=screenshot_path("pivot-correlation-light-1280x800"), full_page=True)

    page.locator("#waterfall a.wf-name", has_text="charge").click()
    page.wait_for_url("**/events/wf-payments")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#trace .wf-here")).to_have_count(1)

    page.goto("/requests/wf-req-7")
    expect(page.locator("#pivot-root")).to_have_attribute("data-state", "ready")
    assert [r["id"] for r in _rows(page, "#waterfall")] == ["wf-checkout", "b2", "c3"]

    page.goto("/traces/no-such-trace")
    expect(page.locator("p[data-state=error]")).to_contain_text("No events or spans with trace id")


def test_phone_and_dark_waterfall(page: Page, trace: None) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    page.goto(f"/traces/{TRACE}")
    expect(page.locator("#pivot-root")).to_have_attribute("data-state", "ready")
    expect(page.locator("#waterfall .wf-row")).to_have_count(5)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    page.screenshot(path=screenshot_path("pivot-trace-dark-390-full"), full_page=True)
