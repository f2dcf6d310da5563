"""The dashboard in Debian's Chromium: cards and legend equal the API, URL state, detail page, hostile strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import PHONE, LiveServer, new_context, screenshot_path
from tests.helpers import ago, event

HOSTILE_SOURCE = "<img src=x onerror=\"window.__pwned='source'\">"
HOSTILE_MESSAGE = (
    "<script>window.__pwned='script'</script><img src=x onerror=\"window.__pwned='message';"
    "console.log('PWNED')\"> & <b>bold</b>"
)
HOSTILE_CODE = "<img src=x onerror=console.log('PWNED')>"
HOSTILE_OPERATION = "<svg/onload=window.__pwned='operation'>"
HOSTILE_ATTRIBUTE = "<iframe src=\"javascript:window.__pwned='attribute'\"></iframe>"


def fmt_percent(rate: float) -> str:
    """The page's formatPercent: one decimal, halves away from zero (JavaScript's toFixed)."""
    pct = rate * 100
    if pct == 0:
        return "0%"
    if pct < 0.1:
        return "<0.1%"
    return f"{Decimal(pct).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def fmt_count(n: int) -> str:
    return f"{n:,}"


@dataclass
class Dataset:
    root_id: str
    hostile_id: str
    failures_now: int


@pytest.fixture(scope="module")
def dataset(live_server: LiveServer) -> Dataset:
    now: list[dict[str, Any]] = []
    for i in range(6):
        now.append(
            event(
                id=f"fcu-{i}",
                error_message="failed_contact_upstream: connection refused",
                occurred_at=ago(minutes=10 + i),
            )
        )
    now += [
        event(id=f"rbt-{i}", error_message="request_body_read_timeout", occurred_at=ago(minutes=30 + i))
        for i in range(3)
    ]
    now += [
        event(
            id=f"dl-{i}",
            source="billing-api",
            error_message="deadlock detected",
            http_status=500,
            occurred_at=ago(hours=2, minutes=i),
        )
        for i in range(2)
    ]
    now += [
        event(id=f"dc-{i}", error_message="downstream_closed", occurred_at=ago(hours=3, minutes=i)) for i in range(5)
    ]
    now += [
        event(id=f"key-{i}", error_message="Invalid API key", http_status=401, occurred_at=ago(hours=5, minutes=i))
        for i in range(4)
    ]
    now += [
        event(
            id=f"to-{i}", error_message="upstream request timeout", http_status=504, occurred_at=ago(hours=8, minutes=i)
        )
        for i in range(6)
    ]
    now += [event(id=f"ok-{i}", status="success", occurred_at=ago(minutes=20 + i)) for i in range(10)]
    # Steady traffic every 5 minutes, and failures older than most of it: the failure list then spans
    # pages whether or not the server filters successes out itself.
    now += [
        event(id=f"steady-{i}", source="checkout-web", status="success", occurred_at=ago(minutes=7 + 5 * i))
        for i in range(240)
    ]
    now += [
        event(
            id=f"old-{i}",
            source="checkout-web",
            error_message="no healthy upstream",
            http_status=503,
            occurred_at=ago(hours=22, minutes=i),
        )
        for i in range(4)
    ]
    now += [
        event(
            id="root",
            trace_id="t-dash-1",
            correlation_id="c-dash-9",
            operation="POST /v1/responses",
            error_message="upstream_stream_error: stream disconnected before completion",
            http_status=502,
            occurred_at=ago(minutes=40),
            attributes={"region": "eu-west-1"},
        ),
        event(id="child", trace_id="t-dash-1", source="billing-api", status="success", occurred_at=ago(minutes=41)),
        event(
            id="cousin",
            correlation_id="c-dash-9",
            source="billing-api",
            error_message="deadlock detected",
            occurred_at=ago(minutes=39),
        ),
        event(id="stranger", trace_id="t-dash-2", error_message="downstream_closed", occurred_at=ago(minutes=38)),
        event(
            id="hostile",
            source=HOSTILE_SOURCE,
            operation=HOSTILE_OPERATION,
            error_message=HOSTILE_MESSAGE,
            error_code=HOSTILE_CODE,
            trace_id="t-hostile",
            attributes={"note": HOSTILE_ATTRIBUTE},
            occurred_at=ago(minutes=3),
        ),
        event(
            id="hostile-twin", source=HOSTILE_SOURCE, status="success", trace_id="t-hostile", occurred_at=ago(minutes=2)
        ),
    ]
    # The previous 24 hours: fewer failures, so the cards have a change to show.
    before = [
        event(id=f"prev-{i}", error_message="failed_contact_upstream", occurred_at=ago(hours=30, minutes=i))
        for i in range(3)
    ]
    before += [event(id=f"prev-ok-{i}", status="success", occurred_at=ago(hours=31, minutes=i)) for i in range(5)]
    with live_server.api() as api:
        r = api.post("/api/v1/events", json=now + before)
        assert r.status_code == 200 and r.json()["accepted"] == len(now + before), r.text
    failures = sum(1 for e in now if e["status"] != "success")
    return Dataset(root_id="root", hostile_id="hostile", failures_now=failures)


@pytest.fixture
def page(context: BrowserContext, dataset: Dataset) -> Iterator[Page]:
    page = context.new_page()
    yield page
    page.close()


def api_get(live_server: LiveServer, path: str, **params: Any) -> Any:
    with live_server.api() as api:
        r = api.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def open_dashboard(page: Page, query: str = "") -> None:
    page.goto("/" + query)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def legend_of(page: Page) -> list[tuple[str, int, str]]:
    rows: list[list[str]] = page.locator("[data-testid=error-distribution] [data-kind]").evaluate_all(
        "els => els.map(e => [e.dataset.kind, e.dataset.count, e.querySelector('.legend-count').textContent])"
    )
    return [(kind, int(count), shown) for kind, count, shown in rows]


def test_summary_cards_equal_the_api(page: Page, live_server: LiveServer, dataset: Dataset) -> None:
    open_dashboard(page)
    summary = api_get(live_server, "/api/v1/stats/summary", window="24h")
    assert summary["failure_count"] == dataset.failures_now
    rate_card = page.get_by_test_id("actionable-failure-rate")
    expect(rate_card.locator("[data-role=value]")).to_have_text(fmt_percent(summary["actionable_failure_rate"]))
    expect(page.locator("[data-metric=total] [data-role=value]")).to_have_text(fmt_count(summary["total"]))
    expect(page.locator("[data-metric=failures] [data-role=value]")).to_have_text(fmt_count(summary["failure_count"]))
    for metric, field in (
        ("service", "service_failure_count"),
        ("client", "client_failure_count"),
        ("abort", "client_abort_count"),
    ):
        expect(page.locator(f"[data-metric={metric}] [data-role=value]")).to_have_text(fmt_count(summary[field]))

    # The change against the previous 24 hours, asked for the same way the page asks.
    now = datetime.now(UTC)
    prev = api_get(
        live_server,
        "/api/v1/stats/summary",
        since=(now - timedelta(hours=48)).isoformat(),
        until=(now - timedelta(hours=24)).isoformat(),
    )
    assert prev["failure_count"] == 3
    change = (summary["failure_count"] - 3) / 3 * 100
    expected = f"+{Decimal(change).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"
    expect(page.locator("[data-metric=failures] [data-role=delta]")).to_contain_text(expected)
    pp = (summary["actionable_failure_rate"] - prev["actionable_failure_rate"]) * 100
    sign = "+" if pp > 0 else "−"
    pp_text = f"{sign}{Decimal(abs(pp)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} pp"
    expect(rate_card.locator("[data-role=delta]")).to_contain_text(pp_text)

    # The default view is 24h / service, written into the URL so a copied link reproduces it.
    assert "window=24h" in page.url and "scope=service" in page.url
    expect(page.locator("[data-window='24h']")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=screenshot_path("dashboard-light-1280x800"))
    page.screenshot(path=screenshot_path("dashboard-light-1280-full"), full_page=True)


def test_scope_switch_redraws_legend_from_the_api(page: Page, live_server: LiveServer) -> None:
    open_dashboard(page)
    dist = page.get_by_test_id("error-distribution")
    for scope in ("all", "client", "abort", "service"):
        page.locator(f"#scope-tabs [data-scope={scope}]").click()
        expect(dist).to_have_attribute("data-scope", scope)
        expect(dist).to_have_attribute("data-state", "ready")
        expect(page.locator(f"#scope-tabs [data-scope={scope}]")).to_have_attribute("aria-pressed", "true")
        api = api_get(live_server, "/api/v1/stats/errors", scope=scope, window="24h")
        assert api["items"], f"the data set has failures in scope {scope}"
        expected = [(i["failure_kind"], i["count"], fmt_count(i["count"])) for i in api["items"]]
        assert legend_of(page) == expected, scope
        label = dist.locator("svg[role=img]").get_attribute("aria-label") or ""
        assert f"{fmt_count(api['total'])} failures" in label
        assert f"scope={scope}" in page.url

    page.locator("#scope-tabs [data-scope=abort]").click()
    expect(dist).to_have_attribute("data-scope", "abort")
    abort_kinds = [kind for kind, _count, _shown in legend_of(page)]
    assert "downstream_closed" in abort_kinds
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(dist).to_have_attribute("data-scope", "abort")
    expect(page.locator("#scope-tabs [data-scope=abort]")).to_have_attribute("aria-pressed", "true")
    assert [kind for kind, _c, _s in legend_of(page)] == abort_kinds
    page.go_back()
    expect(dist).to_have_attribute("data-scope", "service")


def test_link_reproduces_window_and_source(page: Page, live_server: LiveServer) -> None:
    open_dashboard(page, "?window=7d&scope=all&source=billing-api")
    expect(page.locator("[data-window='7d']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#source-filter")).to_have_value("billing-api")
    summary = api_get(live_server, "/api/v1/stats/summary", window="7d", source="billing-api")
    expect(page.get_by_test_id("actionable-failure-rate").locator("[data-role=value]")).to_have_text(
        fmt_percent(summary["actionable_failure_rate"])
    )
    api = api_get(live_server, "/api/v1/stats/errors", scope="all", window="7d", source="billing-api")
    assert legend_of(page) == [(i["failure_kind"], i["count"], fmt_count(i["count"])) for i in api["items"]]
    rows = page.locator("#failures-body tr[data-event-id] .source-name").all_inner_texts()
    assert rows and set(rows) == {"billing-api"}

    page.locator("[data-window='1h']").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert "window=1h" in page.url and "source=billing-api" in page.url


def test_trend_chart_has_the_api_buckets(page: Page, live_server: LiveServer, dataset: Dataset) -> None:
    # The dashboard speaks the one window vocabulary: no deprecated window_days, no refused parameter.
    asked: list[tuple[str, int]] = []
    page.on("response", lambda r: asked.append((r.url, r.status)) if "/api/" in r.url else None)
    open_dashboard(page)
    chart = page.locator("#trend-chart")
    expect(chart).to_have_attribute("data-state", "ready")
    expect(page.locator("#alerts-sub")).to_have_text("SLO hints, last 24 hours")
    assert any("/api/v1/trends?" in url and "window=24h" in url for url, _status in asked), asked
    assert not [(url, status) for url, status in asked if "window_days" in url or status == 400], asked
    trends = api_get(live_server, "/api/v1/trends", window="24h", bucket="1h")
    rows = chart.locator("table tbody tr")
    expect(rows).to_have_count(len(trends["buckets"]))
    failures = sum(b["failures"] for b in trends["buckets"])
    assert failures == dataset.failures_now
    label = chart.locator("svg[role=img]").get_attribute("aria-label") or ""
    assert f"{fmt_count(failures)} in total" in label

    # Under a day there is no trends call: the buckets come from the summary API.
    page.locator("[data-window='6h']").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(chart).to_have_attribute("data-state", "ready")
    cells = chart.locator("table tbody tr td:nth-child(2)").all_inner_texts()
    summary = api_get(live_server, "/api/v1/stats/summary", window="6h")
    assert sum(int(c.replace(",", "")) for c in cells) == summary["failure_count"]


def test_missing_endpoints_degrade_quietly(context: BrowserContext, dataset: Dataset) -> None:
    page = context.new_page()
    not_found = {
        "status": 404,
        "content_type": "application/json",
        "body": '{"error":{"code":"not_found","message":"Not Found","details":null},"request_id":"x"}',
    }

    def refuse(route: Route) -> None:
        route.fulfill(**not_found)  # type: ignore[arg-type]

    for pattern in (
        "**/api/v1/trends?**",
        "**/api/v1/alerts?**",
        "**/api/v1/fingerprints?**",
        "**/api/v1/tasks/failed?**",
    ):
        page.route(pattern, refuse)
    # The fallback of the trend asks the summary with since/until; refuse those too, keep the cards' own call.
    page.route(re.compile(r".*/api/v1/stats/summary\?since=.*"), refuse)
    open_dashboard(page, "?window=24h")
    expect(page.locator("#trend-chart .chart-empty")).to_contain_text("No data")
    for panel in ("alerts", "fingerprints", "tasks"):
        expect(page.locator(f"#{panel} [data-state=unavailable]")).to_have_text("Not available on this server.")
    expect(page.get_by_test_id("actionable-failure-rate").locator("[data-role=value]")).not_to_have_text("—")
    page.close()


def test_failures_table_pages_and_filters(page: Page, live_server: LiveServer, dataset: Dataset) -> None:
    open_dashboard(page)
    ids = page.locator("#failures-body tr[data-event-id]")

    probe = api_get(live_server, "/api/v1/events", window="24h", limit=25, failures_only="true")
    # The page asks for failures only; a server that ignores that gets wider pages filtered in the page.
    limit = 100 if any(i["failure_class"] == "none" for i in probe["items"]) else 25

    def expected(**params: Any) -> tuple[list[str], str | None]:
        body = api_get(live_server, "/api/v1/events", window="24h", limit=limit, failures_only="true", **params)
        return [i["id"] for i in body["items"] if i["failure_class"] != "none"], body["next_cursor"]

    first, cursor = expected()
    assert first
    expect(ids).to_have_count(len(first))
    assert ids.evaluate_all("rows => rows.map(r => r.dataset.eventId)") == first
    assert cursor is not None
    page.locator("#page-next").click()
    second, _ = expected(cursor=cursor)
    assert second and not set(first) & set(second)
    expect(ids.first).to_have_attribute("data-event-id", second[0])
    assert ids.evaluate_all("rows => rows.map(r => r.dataset.eventId)") == second
    expect(page.locator("#page-label")).to_have_text("Page 2")
    page.locator("#page-prev").click()
    expect(ids.first).to_have_attribute("data-event-id", first[0])
    expect(page.locator("#page-prev")).to_be_disabled()

    page.locator("#class-filter").select_option("client_abort")
    expect(page.locator("#failures-body .badge").first).to_have_text("Client abort")
    aborts, _ = expected(failure_class="client_abort")
    expect(ids).to_have_count(len(aborts))
    assert set(page.locator("#failures-body .badge").all_inner_texts()) == {"Client abort"}
    assert "class=client_abort" in page.url

    page.locator("#filters-reset").click()
    page.locator("#q-filter").fill("deadlock")
    page.locator("#q-filter").press("Enter")
    deadlocks, _ = expected(q="deadlock")
    expect(ids).to_have_count(len(deadlocks))
    assert all("deadlock" in t for t in page.locator("#failures-body .row-link").all_inner_texts())
    assert "q=deadlock" in page.url

    page.locator(f"#failures-body tr[data-event-id='{deadlocks[0]}'] .row-link").click()
    page.wait_for_url(f"**/events/{deadlocks[0]}")
    expect(page.locator("[data-field=failure_kind]").first).to_be_visible()


def test_event_detail_shows_classification_fingerprint_and_related(
    page: Page, live_server: LiveServer, dataset: Dataset
) -> None:
    ev = api_get(live_server, f"/api/v1/events/{dataset.root_id}")
    page.goto(f"/events/{dataset.root_id}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("[data-field=message]")).to_have_text(ev["error_message"])
    expect(page.locator("h1[data-field=failure_kind]")).to_have_text(ev["failure_kind"])
    expect(page.locator("#classification [data-field=rule_name]")).to_have_text(ev["rule_name"])
    expect(page.locator("#classification [data-field=rule_version]")).to_have_text(ev["rule_version"])
    expect(page.locator("#classification [data-field=category]")).to_have_text(ev["category"])
    expect(page.locator("#classification [data-field=is_actionable]")).to_have_text(
        "yes" if ev["is_actionable"] else "no"
    )
    assert ev["fingerprint"] is not None
    expect(page.locator("#fingerprint [data-field=template]")).to_have_text(ev["fingerprint"]["template"])
    expect(page.locator("#fingerprint [data-field=fingerprint_id]")).to_have_text(ev["fingerprint"]["id"])

    related = page.locator("#related tr[data-event-id]")
    expected = [r["id"] for r in ev["related"]]
    assert sorted(expected) == ["child", "cousin"]
    expect(related).to_have_count(len(expected))
    assert related.evaluate_all("rows => rows.map(r => r.dataset.eventId)") == expected
    hrefs = page.locator("#related a.related-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == [f"/events/{i}" for i in expected]
    page.screenshot(path=screenshot_path("event-light-1280x800"), full_page=True)

    page.locator("#related tr[data-event-id=cousin] a.related-link").click()
    page.wait_for_url("**/events/cousin")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("[data-field=message]")).to_have_text("deadlock detected")
    expect(page.locator("#related tr[data-event-id=root]")).to_have_count(1)

    page.goto("/events/no-such-event")
    expect(page.locator("p[data-state=error]")).to_contain_text("No event with id")


def _shell_counts(live_server: LiveServer, path: str) -> dict[str, int]:
    with live_server.api() as api:
        r = api.get(path)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    html = r.text.lower()
    return {tag: html.count(f"<{tag}") for tag in ("img", "script", "iframe", "svg")}


def _dom_counts(page: Page) -> dict[str, int]:
    counts: dict[str, int] = page.evaluate(
        "() => Object.fromEntries(['img', 'script', 'iframe'].map(t => [t, document.getElementsByTagName(t).length]))"
    )
    return counts


def test_hostile_strings_stay_text(context: BrowserContext, live_server: LiveServer, dataset: Dataset) -> None:
    page = context.new_page()
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append("dialog: " + dialog.message))

    shell = _shell_counts(live_server, "/")
    query = httpx.QueryParams({"source": HOSTILE_SOURCE, "scope": "all", "q": "<img"})
    open_dashboard(page, f"?{query}")
    expect(page.locator("#failures-body tr[data-event-id=hostile]")).to_have_count(1)
    row = page.locator("#failures-body tr[data-event-id=hostile]")
    expect(row.locator(".row-link")).to_have_text(HOSTILE_MESSAGE)
    expect(row.locator(".source-name")).to_have_text(HOSTILE_SOURCE)
    expect(row.locator(".op-name")).to_have_text(HOSTILE_OPERATION)
    expect(page.locator("#source-filter")).to_have_value(HOSTILE_SOURCE)
    expect(page.locator("#range-label")).to_contain_text(HOSTILE_SOURCE)
    expect(page.locator("#q-filter")).to_have_value("<img")
    assert _dom_counts(page) == {"img": shell["img"], "script": shell["script"], "iframe": 0}
    assert page.evaluate("() => window.__pwned") is None

    detail_shell = _shell_counts(live_server, "/events/hostile")
    page.goto(f"/events/{dataset.hostile_id}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("[data-field=message]")).to_have_text(HOSTILE_MESSAGE)
    expect(page.locator("[data-field=source]")).to_have_text(HOSTILE_SOURCE)
    expect(page.locator("dd", has_text="onerror=console.log")).to_have_text(HOSTILE_CODE)
    expect(page.locator("dd", has_text="iframe")).to_have_text(HOSTILE_ATTRIBUTE)
    expect(page.locator("#related tr[data-event-id=hostile-twin] a")).to_have_text(HOSTILE_SOURCE)
    assert _dom_counts(page) == {"img": detail_shell["img"], "script": detail_shell["script"], "iframe": 0}
    assert page.evaluate("() => window.__pwned") is None

    # A hostile id in the path comes back through the shell's data attribute and the "not found" text.
    page.goto("/events/" + quote("<img src=x onerror=window.__pwned=1>", safe=""))
    expect(page.locator("p[data-state=error]")).to_contain_text("<img src=x onerror=window.__pwned=1>")
    assert _dom_counts(page)["img"] == detail_shell["img"]
    assert page.evaluate("() => window.__pwned") is None
    assert not [m for m in console if "PWNED" in m or "Content Security Policy" in m], console
    assert not errors, errors
    page.close()


def test_phone_width_and_dark_mode(browser: Browser, live_server: LiveServer, dataset: Dataset) -> None:
    phone = new_context(browser, live_server, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        open_dashboard(page)
        overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        assert page.evaluate(overflow) <= 0
        rate = page.get_by_test_id("actionable-failure-rate")
        box = rate.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        page.screenshot(path=screenshot_path("dashboard-light-390x844"))
        page.screenshot(path=screenshot_path("dashboard-light-390-full"), full_page=True)

        light_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        dark_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert dark_bg != light_bg
        assert page.evaluate("() => localStorage.getItem('faultlens.theme')") == "dark"
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == dark_bg
        assert page.evaluate(overflow) <= 0
        page.screenshot(path=screenshot_path("dashboard-dark-390-full"), full_page=True)

        page.goto(f"/events/{dataset.root_id}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert page.evaluate(overflow) <= 0
        page.screenshot(path=screenshot_path("event-dark-390-full"), full_page=True)
        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == light_bg
    finally:
        phone.close()

    # The system preference decides until the person chooses.
    desktop = new_context(browser, live_server, color_scheme="dark")
    try:
        page = desktop.new_page()
        open_dashboard(page)
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == dark_bg
        page.screenshot(path=screenshot_path("dashboard-dark-1280x800"))
        page.screenshot(path=screenshot_path("dashboard-dark-1280-full"), full_page=True)
    finally:
        desktop.close()


def test_api_key_form_when_the_api_answers_401(context: BrowserContext, dataset: Dataset) -> None:
    page = context.new_page()
    seen: list[str | None] = []

    def guard(route: Route) -> None:
        # Stands in for a server with keys: only this bearer key gets through.
        auth = route.request.headers.get("authorization")
        seen.append(auth)
        if auth == "Bearer fl_test_key":
            # The stand-in key is not a real one: the open-mode server behind would refuse it, so it is dropped.
            headers = {k: v for k, v in route.request.headers.items() if k.lower() != "authorization"}
            route.continue_(headers=headers)
        else:
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error":{"code":"unauthorized","message":"an API key is required",'
                '"details":null},"request_id":"r"}',
            )

    page.route("**/api/v1/**", guard)
    page.route("**/ui/**", guard)
    open_dashboard(page)
    form = page.locator("#auth-panel")
    expect(form).to_be_visible()
    expect(page.locator("#auth-reason")).to_have_text("an API key is required")
    expect(page.get_by_test_id("actionable-failure-rate").locator("[data-role=value]")).to_have_text("—")
    page.locator("#auth-key").fill("fl_test_key")
    page.locator("#auth-form button[type=submit]").click()
    expect(form).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("actionable-failure-rate").locator("[data-role=value]")).to_have_text(re.compile(r"%$"))
    assert page.evaluate("() => sessionStorage.getItem('faultlens.apiKey')") == "fl_test_key"
    assert "Bearer fl_test_key" in seen
    expect(page.locator("#key-status")).to_be_visible()
    page.close()
