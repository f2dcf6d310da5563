"""The dashboard's release and environment inputs in Chromium: the URL keeps them and every counting panel obeys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.browser.conftest import LiveServer, new_context, serve
from tests.helpers import ago, event


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(Path(tmp_path_factory.mktemp("release-filter")))


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    ctx = new_context(browser, live_server)
    try:
        yield ctx
    finally:
        ctx.close()


def test_release_and_environment_inputs_filter_the_cards(live_server: LiveServer, context: BrowserContext) -> None:
    batch = [event(release="v2", environment="production", occurred_at=ago(minutes=5 + i)) for i in range(3)]
    batch += [event(release="v1", environment="production", occurred_at=ago(minutes=9)) for _ in range(4)]
    batch += [event(release="v2", environment="staging", occurred_at=ago(minutes=7)) for _ in range(2)]
    with live_server.api() as api:
        assert api.post("/api/v1/events", json=batch).status_code == 200
    page = context.new_page()
    page.goto("/?window=24h")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    total = page.locator('[data-metric="total"] [data-role="value"]')
    expect(total).to_have_text("9")

    page.fill("#release-filter", "v2")
    page.dispatch_event("#release-filter", "change")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(total).to_have_text("5")
    page.fill("#environment-filter", "production")
    page.dispatch_event("#environment-filter", "change")
    expect(total).to_have_text("3")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert "release=v2" in page.url and "environment=production" in page.url
    expect(page.locator("#range-label")).to_contain_text("release v2")

    page.goto("/?window=24h&release=v1&environment=production")  # the state comes back from the URL
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#release-filter")).to_have_value("v1")
    expect(total).to_have_text("4")
