"""The alerts page in Debian's Chromium over real alerts: firing first with its level, a linked alert opened,
acknowledging (refused for a read-only key), silencing and expiring, re-sending a dead letter; screenshots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import update

from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import alert_notifications
from tests.browser.conftest import LiveServer, serve
from tests.helpers import ago, event

MINUTE = 60_000
SCREEN = {"width": 1280, "height": 900}
CHINESE_SOURCE = "退款服务"
CHINESE_OPERATION = "退款重试-" + "long-operation-name-" * 4
# Routing as a config file gives it: the refunds team's runbook is not a web link and must not become one.
ROUTING = f"""
version: 1
receivers:
  - name: default
    type: webhook
    url: http://127.0.0.1:9/hook
defaults:
  receivers: [default]
routes:
  - matchers: ["source=billing-worker"]
    runbook_url: "https://wiki.example/runbooks/{{alertname}}"
  - matchers: ["source={CHINESE_SOURCE}"]
    owner: 退款团队
    runbook_url: "javascript:window.__pwned='runbook'"
"""


@dataclass
class Alerts:
    server: LiveServer
    admin_key: str
    admin_id: str
    read_key: str
    firing_id: str
    pending_id: str
    dead_id: str


def retry_loop(source: str, operation: str, n: int = 2) -> list[dict[str, Any]]:
    """Retries past their max_attempts with one reason: the silent retry loop (P1)."""
    return [
        event(
            id=f"{source}-retry-{i}",
            source=source,
            item_type="task",
            status="retry",
            operation=operation,
            attempt=5 + i,
            max_attempts=3,
            error_message="card processor answered 503 for order 77",
            occurred_at=ago(minutes=2),
            release="v42",
        )
        for i in range(n)
    ]


def _serve(tmp: Path) -> Iterator[LiveServer]:
    routing = tmp / "routing.yaml"
    routing.write_text(ROUTING, encoding="utf-8")
    yield from serve(tmp, db_name="alerts.db", alert_routing_file=str(routing))


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerts]:
    for server in _serve(tmp_path_factory.mktemp("alerts")):
        svc: Services = server.services
        assert svc.alerting is not None
        now = int(time.time() * 1000)
        svc.pipeline.ingest(retry_loop("billing-worker", "charge-card"), tenant="default")
        svc.alerting.evaluate_once(now=now - MINUTE)
        # Seen first on the second pass: still inside its minute of `for`, so pending.
        svc.pipeline.ingest(retry_loop(CHINESE_SOURCE, CHINESE_OPERATION), tenant="default")
        svc.alerting.evaluate_once(now=now)
        with svc.engine.begin() as conn:
            admin, admin_secret = keys.create_key(conn, tenant="default", scopes=["admin"], name="oncall")
            _, read_secret = keys.create_key(conn, tenant="default", scopes=["read"], name="viewer")
        with server.api() as api:
            listed = api.get("/api/v1/alerting/alerts", headers={"Authorization": f"Bearer {read_secret}"}).json()
        by_state = {a["state"]: a for a in listed["alerts"]}
        assert set(by_state) == {"firing", "pending"}, listed
        firing = by_state["firing"]
        # Its one firing notification ran out of attempts (the receiver never answered).
        with svc.engine.begin() as conn:
            dead = conn.execute(
                update(alert_notifications)
                .where(alert_notifications.c.alert_id == firing["id"])
                .values(state="dead", attempts=10, last_status=503, last_error="receiver answered 503")
                .returning(alert_notifications.c.id)
            ).scalar_one()
        yield Alerts(server, admin_secret, admin.id, read_secret, firing["id"], by_state["pending"]["id"], str(dead))


def keyed(browser: Browser, alerts: Alerts, key: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=alerts.server.base_url, viewport=SCREEN, **options)
    context.set_default_timeout(10_000)
    context.add_init_script(f"sessionStorage.setItem('faultlens.apiKey', {key!r})")
    return context


def open_page(context: BrowserContext, path: str = "/alerts") -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#alerts-root")).to_have_attribute("data-state", "ready")
    assert errors == []
    return page


def item(page: Page, alert_id: str) -> Any:
    return page.locator(f'li.alert-item[data-alert-id="{alert_id}"]')


def test_firing_first_with_level_owner_runbook_and_a_linked_alert_opened(browser: Browser, alerts: Alerts) -> None:
    context = keyed(browser, alerts, alerts.read_key)
    try:
        page = open_page(context, f"/alerts?alert={alerts.firing_id}")
        counts = page.locator('.count-tile[data-level="P1"]')
        expect(counts.locator('[data-field="firing"]')).to_have_text("1")
        expect(counts.locator('[data-field="pending"]')).to_have_text("1")
        expect(page.locator('.count-tile[data-level="P0"] [data-field="firing"]')).to_have_text("0")

        items = page.locator("#alert-list li.alert-item")
        expect(items).to_have_count(2)
        assert items.evaluate_all("els => els.map(e => e.dataset.state)") == ["firing", "pending"]
        first = item(page, alerts.firing_id)
        badge = first.locator('[data-field="level"]')
        expect(badge).to_have_text("P1")
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(194, 65, 12)"  # orange
        expect(first.locator('[data-field="name"]')).to_have_text("silent_retry_loop")
        expect(first.locator('[data-field="owner"]')).to_have_text("unassigned")
        runbook = first.locator('[data-field="runbook"] a')
        expect(runbook).to_have_text("https://wiki.example/runbooks/silent_retry_loop")
        assert runbook.get_attribute("rel") == "noopener noreferrer"
        assert runbook.get_attribute("href") == "https://wiki.example/runbooks/silent_retry_loop"
        expect(first.locator('[data-field="last-change"]')).to_contain_text("release v42")
        expect(first.locator('[data-field="since"] time')).to_have_count(1)

        # The linked alert: its details open by themselves, history oldest last, and it is scrolled into view.
        history = first.locator('[data-role="history"] li')
        expect(history).to_have_count(2)
        assert history.evaluate_all("els => els.map(e => e.dataset.event)") == ["firing", "pending"]
        expect(first.locator(".notification-table tbody tr")).to_have_attribute("data-state", "dead")
        expect(first).to_be_in_viewport()

        # The refunds team's alert: Chinese text as text, and a runbook that is no web link stays text.
        second = item(page, alerts.pending_id)
        expect(second.locator('[data-field="summary"]')).to_contain_text(CHINESE_SOURCE)
        expect(second.locator('[data-field="owner"]')).to_have_text("退款团队")
        expect(second.locator('[data-field="runbook"] a')).to_have_count(0)
        expect(second.locator('[data-field="runbook"] code')).to_have_text("javascript:window.__pwned='runbook'")

        # A read-only key may look but not acknowledge: the refusal is said inline, in words.
        first.locator('[data-action="ack"]').click()
        expect(first.locator('[data-role="problem"]')).to_contain_text("Not allowed to acknowledge this alert")
        expect(first.locator('[data-role="problem"]')).to_contain_text("admin scope")
        expect(first.locator('[data-action="ack"]')).to_be_enabled()
        assert page.evaluate("() => window.__pwned") is None

        page.locator("#show-resolved").check()
        expect(page.locator("#resolved-list")).to_have_text("No resolved alerts.")
        assert page.url.endswith("resolved=1")

        # A link to an alert that is not listed is looked up on its own; an unknown id says so.
        page.goto("/alerts?alert=no-such-alert")
        expect(page.locator("#linked-panel")).to_be_visible()
        expect(page.locator("#linked")).to_have_text("No alert with id “no-such-alert”.")
    finally:
        context.close()


def test_acknowledge_silence_expire_and_resend(browser: Browser, alerts: Alerts) -> None:
    context = keyed(browser, alerts, alerts.admin_key)
    try:
        page = open_page(context)
        first = item(page, alerts.firing_id)
        first.locator('[data-action="ack"]').click()
        expect(first.locator('[data-field="ack-by"]')).to_have_text(f"key:{alerts.admin_id}")
        expect(first.locator('[data-field="acknowledged"]')).to_contain_text("just now")
        expect(first.locator('[data-action="ack"]')).to_be_disabled()

        # Silence: a comment is required; the silence names the alert and its labels but not its level.
        expect(page.locator("#silences-panel")).to_be_hidden()
        first.locator('[data-action="silence"]').click()
        form = first.locator('[data-role="silence-form"]')
        form.locator("select").select_option("4h")
        form.locator('button[type="submit"]').click()
        expect(form.locator(".silence-comment")).to_be_focused()  # the browser refuses an empty required field
        form.locator(".silence-comment").fill("card processor maintenance")
        form.locator('button[type="submit"]').click()
        silences = page.locator("#silences li.silence-item")
        expect(silences).to_have_count(1)
        matchers = silences.first.locator(".matcher").all_inner_texts()
        assert matchers[0] == "alertname=silent_retry_loop"
        assert "source=billing-worker" in matchers and not any(m.startswith("level") for m in matchers)
        expect(silences.first).to_contain_text("card processor maintenance")
        expect(silences.first).to_contain_text("in 4 h")

        # Dead letters: the firing notification, named by its alert.
        dead = page.locator(f'#dead tr[data-notification-id="{alerts.dead_id}"]')
        expect(dead).to_contain_text("silent_retry_loop")
        expect(dead).to_contain_text("HTTP 503 · receiver answered 503")

        first.locator('[data-role="detail"] summary').click()
        history = first.locator('[data-role="history"] li')
        expect(history).to_have_count(3)
        assert history.evaluate_all("els => els.map(e => e.dataset.event)") == ["acknowledged", "firing", "pending"]
        page.screenshot(path="/tmp/alerts-page.png", full_page=True)
        page.locator("#theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.screenshot(path="/tmp/alerts-page-dark.png", full_page=True)

        silences.first.locator('[data-action="expire"]').click()
        expect(page.locator("#silences-panel")).to_be_hidden()
        with alerts.server.api() as api:
            auth = {"Authorization": f"Bearer {alerts.read_key}"}
            states = [s["status"]["state"] for s in api.get("/api/v1/alerting/silences", headers=auth).json()["items"]]
            assert states == ["expired"]

            dead.locator('[data-action="resend"]').click()
            expect(page.locator("#dead-status")).to_contain_text("back in the outbox as pending")
            expect(page.locator("#dead tr")).to_have_count(0)
            [sent] = api.get("/api/v1/alerting/notifications", headers=auth).json()["items"]
            assert (sent["id"], sent["state"], sent["attempts"]) == (alerts.dead_id, "pending", 0)
        # Each action redraws the list; the alert opened before stays open with its history.
        expect(first.locator('[data-role="history"] li')).to_have_count(3)
        expect(first.locator(".notification-table tbody tr")).to_have_attribute("data-state", "pending")
    finally:
        context.close()


def test_the_overview_counts_firing_alerts_and_links_the_page(browser: Browser, alerts: Alerts) -> None:
    context = keyed(browser, alerts, alerts.read_key)
    try:
        page = context.new_page()
        page.goto("/")
        firing = page.locator('[data-testid="alerts-firing"]')
        expect(firing).to_be_visible()
        expect(firing.locator('[data-level="P1"]')).to_have_text("1 P1")
        expect(firing.locator("a")).to_have_attribute("href", "/alerts")
        expect(page.locator('[data-testid="alerts-page-link"]')).to_have_attribute("href", "/alerts")
    finally:
        context.close()
