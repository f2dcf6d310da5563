"""The failure group pages in Debian's Chromium over failures ingested over HTTP: the list with counts, sparklines,
sorting and the status filter in the URL; one group resolved, assigned, noted and ignored for a count, its activity
naming who and when; a rule drafted from it with its YAML and preview numbers; a regressed group; the overview's
box linking into the group page; text shown as text; screenshots of both pages in both themes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from faultlens.jobs import group_lifecycle
from faultlens.store import keys
from tests.browser.conftest import DESKTOP, LiveServer, serve
from tests.helpers import ago, event

SHOTS = "/tmp/groups-{name}.png"
PAYMENT = "payment gateway timeout after {n}ms for order {n}7788"
KEYERROR = "KeyError: 'customer_{n}' in handlers/checkout.py line 42"
CHINESE = "库存服务返回错误: 订单 {n} 不存在"
MARKUP = "<img src=x onerror=window.__pwned=1> frobnicator failed for job {n}"
DISK = "disk quota exceeded on volume vol-{n} while writing exports"


def _batch(template: str, n: int, *, prefix: str, hours: float, **fields: Any) -> list[dict[str, Any]]:
    """n failures of one message template, spread evenly over the last `hours`."""
    return [
        event(
            id=f"{prefix}-{i}",
            source=fields.get("source", "checkout-api"),
            operation="POST /orders",
            http_status=fields.get("http_status", 500),
            error_message=template.format(n=100 + i),
            release=fields.get("release", "v1.2.0"),
            environment="production",
            occurred_at=ago(minutes=hours * 60 * (i + 1) / n),
        )
        for i in range(n)
    ]


@dataclass
class Groups:
    server: LiveServer
    admin_key: str
    read_key: str
    ids: dict[str, str]  # name -> group id

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, timeout=10, headers={"Authorization": f"Bearer {self.admin_key}"}
        )


def _ingest(api: httpx.Client, events: list[dict[str, Any]]) -> None:
    r = api.post("/api/v1/events", json=events)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events), r.text


def _group_id(api: httpx.Client, q: str) -> str:
    r = api.get("/api/v1/groups", params={"window": "7d", "q": q})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1, items
    return str(items[0]["id"])


@pytest.fixture(scope="module")
def groups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Groups]:
    for server in serve(tmp_path_factory.mktemp("groups"), db_name="groups.db"):
        with server.services.engine.begin() as conn:
            _, admin = keys.create_key(conn, tenant="default", scopes=["admin", "read", "ingest"], name="oncall")
            _, read = keys.create_key(conn, tenant="default", scopes=["read"], name="viewer")
        seeded = Groups(server, admin, read, {})
        with seeded.api() as api:
            _ingest(api, _batch(PAYMENT, 30, prefix="pay", hours=120))
            _ingest(api, _batch(KEYERROR, 12, prefix="key", hours=10, release="v1.3.0"))
            _ingest(api, _batch(CHINESE, 6, prefix="zh", hours=30, source="库存服务"))
            # No status code and no words a rule knows: unclassified, so the overview's box lists it.
            _ingest(api, _batch(MARKUP, 3, prefix="xss", hours=50, source="frob", http_status=None))
            _ingest(api, _batch(DISK, 4, prefix="disk", hours=20, source="exporter"))
            ids = {
                "payment": _group_id(api, "payment gateway"),
                "keyerror": _group_id(api, "KeyError"),
                "chinese": _group_id(api, "库存服务"),
                "markup": _group_id(api, "frobnicator"),
                "disk": _group_id(api, "disk quota"),
            }
            # One group resolved, then seen again: the lifecycle pass marks it regressed.
            r = api.post(f"/api/v1/groups/{ids['disk']}/status", json={"status": "resolved"})
            assert r.status_code == 200, r.text
            # Seen again after it was resolved: stamped now, after the answer to the resolve came back.
            again = _batch(DISK, 2, prefix="disk-again", hours=1, source="exporter")
            _ingest(api, [{**e, "occurred_at": ago(seconds=0)} for e in again])
            group_lifecycle.run_pass(server.services)
            disk = api.get(f"/api/v1/groups/{ids['disk']}", params={"window": "7d"}).json()
            assert disk["status"] == "regressed", disk["status"]
        seeded.ids.update(ids)
        yield seeded


def _context(browser: Browser, groups: Groups, key: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=groups.server.base_url, viewport=options.pop("viewport", DESKTOP), **options)
    context.set_default_timeout(10_000)
    context.add_init_script(f"sessionStorage.setItem('faultlens.apiKey', {key!r})")
    return context


@pytest.fixture
def context(browser: Browser, groups: Groups) -> Iterator[BrowserContext]:
    ctx = _context(browser, groups, groups.admin_key)
    try:
        yield ctx
    finally:
        ctx.close()


def _open(context: BrowserContext, path: str) -> tuple[Page, list[str]]:
    """The page once ready, and the problems it reports as they come: script errors and CSP violations."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page, problems


def _row_ids(page: Page) -> list[str]:
    return list(page.locator("#groups-body tr[data-group-id]").evaluate_all("els => els.map(e => e.dataset.groupId)"))


def _row_counts(page: Page) -> list[int]:
    rows = page.locator("#groups-body tr[data-group-id]")
    return [int(n) for n in rows.evaluate_all("els => els.map(e => e.dataset.count)")]


def test_list_sorts_filters_and_keeps_its_state_in_the_url(context: BrowserContext, groups: Groups) -> None:
    page, problems = _open(context, "/groups")
    table = page.locator("#groups-table")
    expect(table).to_have_attribute("data-state", "ready")
    expect(page.locator('.topnav a[href="/groups"]')).to_have_attribute("aria-current", "page")
    ids = groups.ids
    with groups.api() as api:
        listed = api.get("/api/v1/groups", params={"window": "7d"}).json()
    # Every seeded group, with the API's counts; by events, highest first (the default).
    assert sorted(_row_ids(page)) == sorted(ids.values())
    by_id = {item["id"]: item for item in listed["items"]}
    assert _row_counts(page) == sorted((by_id[i]["count"] for i in _row_ids(page)), reverse=True)
    assert _row_ids(page)[0] == ids["payment"]
    payment = page.locator(f'#groups-body tr[data-group-id="{ids["payment"]}"]')
    expect(payment.locator('[data-field="count"]')).to_have_text("30")
    # A sparkline per row, drawn from `trend`: one point per bucket, its total the window's count.
    spark = payment.locator("svg.sparkline")
    expect(spark).to_have_attribute("data-points", str(len(by_id[ids["payment"]]["trend"])))
    expect(spark).to_have_attribute("data-total", "30")
    assert spark.locator("path.spark-line").count() == 1
    expect(payment.locator('[data-field="first-seen"]')).to_have_attribute("title", ABSOLUTE)
    # Chinese text renders as text; a message with markup stays text and runs nothing.
    chinese = page.locator(f'#groups-body tr[data-group-id="{ids["chinese"]}"] [data-field="title"]')
    expect(chinese).to_contain_text("库存服务返回错误")
    markup = page.locator(f'#groups-body tr[data-group-id="{ids["markup"]}"] [data-field="title"]')
    expect(markup).to_contain_text("<img src=x")
    assert page.locator("#groups-body img").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    # The regressed group says so, and the status chips count every status.
    disk = page.locator(f'#groups-body tr[data-group-id="{ids["disk"]}"]')
    expect(disk.locator('[data-field="status"]')).to_have_text("regressed")
    expect(page.locator('.status-chip[data-status="regressed"] [data-field="count"]')).to_have_text("1")

    # Sorting by events, lowest first: the order reverses and the URL says so.
    page.locator('button.sort-button[data-sort="count"]').click()
    expect(page).to_have_url(_url_with("order=asc"))
    expect(table).to_have_attribute("data-state", "ready")
    expect(page.locator("#groups-body tr[data-group-id]").first).to_have_attribute("data-group-id", ids["markup"])
    assert _row_counts(page) == sorted(_row_counts(page))
    expect(page.locator('th[data-sort="count"]')).to_have_attribute("aria-sort", "ascending")

    # The status filter: only the regressed group; a shared link opens the same view; back walks the states.
    page.locator('.status-chip[data-status="regressed"]').click()
    expect(page).to_have_url(_url_with("status=regressed"))
    expect(page.locator("#groups-body tr[data-group-id]")).to_have_count(1)
    assert _row_ids(page) == [ids["disk"]]
    shared = page.url
    other, _ = _open(context, shared)
    expect(other.locator("#groups-body tr[data-group-id]")).to_have_count(1)
    expect(other.locator('.status-chip[data-status="regressed"]')).to_have_attribute("aria-pressed", "true")
    other.close()
    page.go_back()
    expect(page.locator("#groups-body tr[data-group-id]")).to_have_count(len(ids))
    expect(page.locator('.status-chip[data-status="regressed"]')).to_have_attribute("aria-pressed", "false")

    # Text search narrows to the matching template.
    page.fill("#q-filter", "KeyError")
    page.locator("#group-filters button[type=submit]").click()
    expect(page).to_have_url(_url_with("q=KeyError"))
    expect(page.locator("#groups-body tr[data-group-id]")).to_have_count(1)
    assert _row_ids(page) == [ids["keyerror"]]
    assert problems == []


def test_pages_follow_the_next_cursor_and_the_back_button(context: BrowserContext, groups: Groups) -> None:
    page, problems = _open(context, "/groups?limit=2")
    expect(page.locator("#groups-table")).to_have_attribute("data-state", "ready")
    first = _row_ids(page)
    assert len(first) == 2
    expect(page.locator("#page-prev")).to_be_disabled()
    seen = list(first)
    while page.locator("#page-next").is_enabled():
        page.locator("#page-next").click()
        expect(page).to_have_url(_url_with("cursor="))
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#page-prev")).to_be_enabled()
        seen += _row_ids(page)
    # Every group exactly once, in the order of the one-page answer.
    with groups.api() as api:
        whole = [item["id"] for item in api.get("/api/v1/groups", params={"window": "7d"}).json()["items"]]
    assert seen == whole
    expect(page.locator("#page-label")).to_have_text(f"Page {(len(whole) + 1) // 2}")
    page.go_back()
    expect(page.locator("#page-label")).to_have_text(f"Page {(len(whole) + 1) // 2 - 1}")
    page.locator("#page-prev").click()
    expect(page.locator("#page-label")).to_have_text("Page 1")
    assert _row_ids(page) == first
    assert problems == []


def _url_with(part: str) -> re.Pattern[str]:
    return re.compile(".*" + re.escape(part) + ".*")


# The absolute time on hover carries its year.
ABSOLUTE = re.compile(r"\d{4}")


def test_a_group_resolved_assigned_noted_ignored_and_a_rule_drafted(context: BrowserContext, groups: Groups) -> None:
    gid = groups.ids["keyerror"]
    page, problems = _open(context, "/groups")
    page.locator(f'#groups-body tr[data-group-id="{gid}"] a.group-link').click()
    expect(page).to_have_url(_url_with(f"/groups/{gid}"))
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    root = page.locator("#group-root")
    expect(root).to_have_attribute("data-state", "ready")
    expect(page.locator("#group-title")).to_contain_text("KeyError: ")
    expect(page.locator('#group-status [data-field="status"]')).to_have_text("new")
    expect(page.locator('#facts [data-field="first-release"]')).to_have_text("v1.3.0")
    expect(page.locator('#mix [data-field="mix"] li')).to_have_count(1)
    # The chart of counts per hour/day, the member template, its samples and events linking to the event page.
    expect(page.locator("#group-chart")).to_have_attribute("data-state", "ready")
    expect(page.locator("#group-chart svg.trend")).to_have_count(1)
    expect(page.locator("#members li")).to_have_count(1)
    expect(page.locator('#samples [data-field="samples"] li')).to_have_count(10)
    events = page.locator("#group-events-body tr[data-event-id]")
    expect(events).to_have_count(12)
    first_event = events.first.get_attribute("data-event-id")
    assert first_event is not None and first_event.startswith("key-")
    expect(events.first.locator("a.row-link")).to_have_attribute("href", f"/events/{first_event}")

    # Resolve.
    page.locator('[data-action="resolve"]').click()
    expect(page.locator('#group-status [data-field="status"]')).to_have_text("resolved")
    expect(page.locator('[data-action="unresolve"]')).to_be_visible()
    expect(page.locator('#facts [data-field="resolved-at"]')).to_contain_text("just now")
    # Assign.
    page.locator('[data-action="assign"]').click()
    page.fill("#assignee-input", "支付团队 payments")
    page.locator("#assign-form button[type=submit]").click()
    expect(page.locator('#group-status [data-field="assignee"]')).to_have_text("支付团队 payments")
    # A note: the activity names who (the key's name) and when, newest first; markup stays text.
    page.locator('[data-action="note"]').click()
    page.fill("#note-input", "Customer ids missing after the v1.3.0 migration <b>again</b>")
    page.locator("#note-form button[type=submit]").click()
    activity = page.locator('#activity [data-role="activity"] li')
    expect(activity).to_have_count(3)
    assert activity.evaluate_all("els => els.map(e => e.dataset.activity)") == ["note", "assign", "status"]
    newest = activity.first
    expect(newest.locator('[data-field="actor"]')).to_have_text("oncall")
    expect(newest.locator('[data-field="at"]')).to_have_text("just now")
    expect(newest.locator('[data-field="at"]')).to_have_attribute("title", ABSOLUTE)
    expect(newest.locator('[data-field="detail"]')).to_contain_text("<b>again</b>")
    assert page.locator("#activity b").count() == 0
    # Ignore for a count of events.
    page.locator('[data-action="ignore"]').click()
    page.fill("#ignore-count", "5")
    page.locator("#ignore-form button[type=submit]").click()
    expect(page.locator('#group-status [data-field="status"]')).to_have_text("ignored")
    expect(page.locator('#group-status [data-field="ignore"]')).to_contain_text("5 more events")
    expect(activity.first).to_have_attribute("data-activity", "status")
    expect(activity.first.locator('[data-field="detail"]')).to_contain_text("5")
    with groups.api() as api:
        stored = api.get(f"/api/v1/groups/{gid}", params={"window": "7d"}).json()
    assert stored["status"] == "ignored" and stored["ignore"]["count"] == 5, stored["ignore"]
    assert stored["assignee"] == "支付团队 payments"

    # A rule drafted from the group: its YAML, the preview numbers, a link to the rules flow; nothing activated.
    with groups.api() as api:
        before = api.get("/api/v1/rules").json()["active_version"]
    page.locator("#rule-draft").click()
    rule = page.locator("#rule-panel")
    expect(rule).to_have_attribute("data-state", "ready")
    yaml = page.locator('#rule-body [data-field="yaml"]')
    expect(yaml).to_contain_text("error_message")
    expect(yaml).to_contain_text("failure_class:")
    expect(page.locator('#rule-body [data-field="changed"]')).to_have_text("12")
    expect(page.locator('#rule-body [data-field="move-count"]').first).to_have_text("12")
    activate = page.locator('#rule-body [data-field="activate-link"]')
    expect(activate).to_have_attribute("href", _url_with("/docs#/rules/"))
    # Another class re-requests the draft: the YAML and the move's target follow.
    page.select_option('#rule-body select[name="failure_class"]', "client_failure")
    expect(yaml).to_contain_text("failure_class: client_failure")
    expect(page.locator('#rule-body [data-field="to"]').first).to_contain_text("Client failure")
    with groups.api() as api:
        assert api.get("/api/v1/rules").json()["active_version"] == before
    assert problems == []


def test_a_read_only_key_is_told_why_it_cannot_change_a_group(browser: Browser, groups: Groups) -> None:
    context = _context(browser, groups, groups.read_key)
    try:
        page, _ = _open(context, f"/groups/{groups.ids['chinese']}")
        expect(page.locator("#group-title")).to_contain_text("库存服务返回错误")
        page.locator('[data-action="resolve"]').click()
        refusal = page.locator('#action-status [data-role="problem"]')
        expect(refusal).to_contain_text("Not allowed to resolve this group")
        expect(refusal).to_contain_text("admin scope")
        expect(page.locator('#group-status [data-field="status"]')).not_to_have_text("resolved")
    finally:
        context.close()


def test_the_overview_box_links_into_the_group_page(context: BrowserContext, groups: Groups) -> None:
    page, problems = _open(context, "/?window=7d")
    links = page.locator('#fingerprints [data-field="group-link"]')
    expect(links.first).to_be_visible()
    box_title = page.locator('[data-testid="fp-groups-link"]')
    expect(box_title).to_have_attribute("href", "/groups?status=new,ongoing,regressed")
    # Each row of the box opens its group: the fingerprint id is the group id.
    gid = page.locator("#fingerprints li[data-group-id]").first.get_attribute("data-group-id")
    assert gid in groups.ids.values(), gid
    title = links.first.get_attribute("title")
    links.first.click()
    # 7d is the group page's own default, so the address carries no window.
    expect(page).to_have_url(re.compile(f".*/groups/{gid}$"))
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#group-root")).to_have_attribute("data-state", "ready")
    expect(page.locator("#group-title")).to_have_text(title or "")
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.locator('[data-testid="fp-groups-link"]').click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator('.status-chip[data-status="ongoing"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator('.status-chip[data-status="resolved"]')).to_have_attribute("aria-pressed", "false")
    # A template merged into another group: its id (as the box may still show it) leads to the group it is in.
    into, merged = groups.ids["chinese"], groups.ids["markup"]
    with groups.api() as api:
        r = api.post(f"/api/v1/groups/{into}/merge", json={"group_ids": [merged]})
        assert r.status_code == 200, r.text
    page.goto(f"/groups/{merged}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#group-root")).to_have_attribute("data-state", "ready")
    expect(page).to_have_url(_url_with(f"/groups/{into}"))
    expect(page.locator('#group-note [data-field="redirect"]')).to_contain_text(merged)
    expect(page.locator("#members li")).to_have_count(2)
    # An unknown id says so in words.
    page.goto("/groups/nosuchgroup0000")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator('#group-problem [data-role="problem"]')).to_have_text("No group with id “nosuchgroup0000”.")
    assert problems == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_in_both_themes(browser: Browser, groups: Groups, theme: str) -> None:
    context = _context(browser, groups, groups.admin_key, color_scheme=theme)
    try:
        page, problems = _open(context, "/groups")
        expect(page.locator("#groups-table")).to_have_attribute("data-state", "ready")
        _no_sideways_scroll(page)
        page.screenshot(path=SHOTS.format(name=f"list-{theme}"), full_page=True)
        page, problems = _open(context, f"/groups/{groups.ids['payment']}")
        page.locator("#rule-draft").click()
        expect(page.locator("#rule-panel")).to_have_attribute("data-state", "ready")
        _no_sideways_scroll(page)
        page.evaluate("() => window.scrollTo(0, 0)")  # the sticky top bar then stays at the top of the shot
        page.screenshot(path=SHOTS.format(name=f"detail-{theme}"), full_page=True)
        assert problems == []
    finally:
        context.close()


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
