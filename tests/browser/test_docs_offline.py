"""/docs in real Chromium with the internet cut off: Swagger UI loads from this server and renders every operation."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Route

from tests.browser.conftest import LiveServer, new_context, screenshot_path


def test_swagger_ui_renders_operations_offline(browser: Browser, live_server: LiveServer) -> None:
    local = urlsplit(live_server.base_url).netloc
    blocked: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == local or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    context = new_context(browser, live_server)
    try:
        context.route("**/*", only_local)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto("/docs")
        # Swagger UI fetches and renders a ~290 KB document here: seconds on a machine busy with the rest of the
        # suite (one CI run passed 10 s), so this one wait gets more than the context's fast-failing default.
        page.locator(".opblock").first.wait_for(timeout=60_000)
        operations = page.locator(".opblock")
        assert operations.count() >= 20
        summaries = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/events" in [s.replace("\u200b", "") for s in summaries]
        assert page.locator(".info .title").inner_text().startswith("faultlens")
        # An operation opens and shows its 400 answer with the one error body.
        page.locator("#operations-events-list_events_api_v1_events_get .opblock-summary").click()
        page.locator("#operations-events-list_events_api_v1_events_get .responses-table").first.wait_for()
        assert (
            page.locator("#operations-events-list_events_api_v1_events_get tr.response[data-code='400']").count() == 1
        )
        page.screenshot(path=screenshot_path("docs-offline"))
        assert blocked == [], f"the docs page tried to reach the internet: {blocked}"
        assert errors == [], errors
    finally:
        context.close()
