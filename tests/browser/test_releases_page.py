"""The Releases page in Debian's Chromium over real data: the release list from the API, a release's canary verdicts
over time, rollbacks, readiness reports, replays and rollouts from seeded gate records; deploy markers on the
overview's trend; the nav link; no CSP violation; a phone without sideways scrolling; screenshots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from faultlens.services import Services
from tests.browser.conftest import DESKTOP, PHONE, LiveServer, screenshot_path, serve
from tests.helpers import ago, event
from tests.release_seed import Seeded, seed_release

SHOT = Path("/tmp/team/releases.png")
RELEASE = "v2.4.0"
BASELINE = "v2.3.1"


def _events(release: str, environment: str, n: int, failures: int, *, first_hours_ago: float) -> list[dict[str, Any]]:
    """n events of `release` spread from `first_hours_ago` to now; the first `failures` answered 500."""
    step = first_hours_ago * 60 / n
    return [
        event(
            id=f"{release}-{environment}-{i}",
            source="checkout-api",
            operation="POST /orders",
            status="failure" if i < failures else "success",
            http_status=500 if i < failures else 200,
            error_message="upstream answered 500" if i < failures else None,
            duration_ms=80 + i,
            release=release,
            environment=environment,
            occurred_at=ago(minutes=first_hours_ago * 60 - i * step),
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    for server in serve(tmp_path_factory.mktemp("releases"), db_name="releases.db"):
        svc: Services = server.services
        batch = (
            _events(BASELINE, "production", 40, 1, first_hours_ago=20)
            + _events(RELEASE, "production", 30, 6, first_hours_ago=2.5)
            + _events(RELEASE, "staging", 12, 0, first_hours_ago=6)
        )
        svc.pipeline.ingest(batch, tenant="default")
        with svc.engine.begin() as conn:
            gates = seed_release(
                conn,
                tenant="default",
                release=RELEASE,
                baseline=BASELINE,
                environment="production",
                now=int(time.time() * 1000),
            )
        yield server, gates


def _context(browser: Browser, server: LiveServer, viewport: Any = DESKTOP) -> BrowserContext:
    context = browser.new_context(base_url=server.base_url, viewport=viewport)
    context.set_default_timeout(10_000)
    return context


def _open(context: BrowserContext, path: str) -> tuple[Page, list[str]]:
    """The page once ready, and the problems it reports as they come: script errors and CSP violations."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Failed fetches are logged too (the overview's task panel has no Redis here): only CSP refusals count.
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page, problems


@pytest.fixture
def context(browser: Browser, seeded: tuple[LiveServer, Seeded]) -> Iterator[BrowserContext]:
    ctx = _context(browser, seeded[0])
    try:
        yield ctx
    finally:
        ctx.close()


def test_list_then_a_release_timeline(context: BrowserContext, seeded: tuple[LiveServer, Seeded]) -> None:
    server, gates = seeded
    page, problems = _open(context, "/releases")
    expect(page.locator("#releases-table")).to_have_attribute("data-state", "ready")
    rows = page.locator("#releases-body tr[data-release]")
    expect(rows).to_have_count(3)
    # Newest first_seen first: the canary in production (2.5 h ago), in staging (6 h), the baseline (20 h).
    assert rows.evaluate_all("els => els.map(e => [e.dataset.release, e.dataset.environment])") == [
        [RELEASE, "production"],
        [RELEASE, "staging"],
        [BASELINE, "production"],
    ]
    with server.api() as api:
        listed = api.get("/api/v1/releases", params={"window": "7d"}).json()["releases"]
    canary = next(r for r in listed if r["release"] == RELEASE and r["environment"] == "production")
    assert canary["actionable"] == 6 and canary["total"] == 30
    expect(rows.first.locator('[data-field="rate"]')).to_have_text("20.0%")
    expect(page.locator("#release-detail")).to_be_hidden()
    expect(page.locator('.topnav a[href="/releases"]')).to_have_attribute("aria-current", "page")

    rows.first.locator("td").nth(4).click()  # the row, not its link: the whole row selects
    detail = page.locator("#release-detail")
    expect(detail).to_have_attribute("data-state", "ready")
    assert "release=v2.4.0" in page.url and "release_environment=production" in page.url
    expect(rows.first).to_have_class("is-selected")
    expect(page.locator("#release-title")).to_have_text(RELEASE)
    expect(page.locator('[data-field="blocked"]')).to_have_text("blocked until a replay passes")
    expect(page.locator('[data-field="latest-verdict"] [data-field="verdict"]')).to_have_text("fail")
    overview = page.locator('[data-testid="release-overview"]')
    expect(overview).to_have_attribute("href", "/?window=7d&release=v2.4.0&environment=production")

    # Canary verdicts over time: one point per analysis, oldest to newest, coloured by verdict.
    points = page.locator("#canary-chart circle.canary-point")
    expect(points).to_have_count(5)
    assert points.evaluate_all("els => els.map(e => e.dataset.verdict)") == [
        "pass",
        "pass",
        "inconclusive",
        "fail",
        "fail",
    ]
    assert points.evaluate_all("els => els.map(e => e.dataset.analysisId)") == gates.analyses
    heights = points.evaluate_all("els => els.map(e => Number(e.getAttribute('cy')))")
    assert heights[0] == heights[1] < heights[2] < heights[3] < heights[4], "a lower score sits lower"
    expect(page.locator("#canary-chart line.rollback-mark")).to_have_count(1)
    analyses = page.locator("#canary-list tr[data-analysis-id]")
    expect(analyses).to_have_count(5)
    assert analyses.first.get_attribute("data-analysis-id") == gates.analyses[-1]
    expect(analyses.first.locator('[data-metric="actionable_failure_rate"]')).to_have_attribute("data-verdict", "fail")

    # In production only the real rollback; all environments add the staging drill.
    rollbacks = page.locator("#rollbacks li.rollback-item")
    expect(rollbacks).to_have_count(1)
    expect(rollbacks.first).to_have_attribute("data-recovery", "recovered")
    expect(rollbacks.first.locator(".pill", has_text="replay failed")).to_be_visible()
    expect(rollbacks.first.locator('[data-field="took"]')).to_have_text("after 12.0 min")
    page.locator('#release-envs button[data-env=""]').click()
    expect(detail).to_have_attribute("data-state", "ready")
    expect(rollbacks).to_have_count(2)
    assert rollbacks.evaluate_all("els => els.map(e => [e.dataset.rollbackId, e.dataset.drill])") == [
        [gates.rollback_id, "false"],
        [gates.drill_id, "true"],
    ]
    assert "release_environment" not in page.url

    readiness = page.locator("#readiness li.readiness-item")
    expect(readiness).to_have_count(2)
    assert readiness.evaluate_all("els => els.map(e => [e.dataset.evidenceId, e.dataset.admitted])") == [
        [gates.readiness[1], "false"],
        [gates.readiness[0], "true"],
    ]
    expect(readiness.first.locator('[data-field="failed-checks"]')).to_have_text("Failed: rollout, replay")
    expect(readiness.first.locator('[data-check="rollout"]')).to_have_class("check-chip check-fail")
    # Seven checks and the replay, each once.
    expect(readiness.first.locator(".check-chip")).to_have_count(8)
    expect(readiness.first.locator('[data-check="replay"]')).to_have_count(1)
    replay = page.locator("#replays tr[data-replay-id]")
    expect(replay).to_have_count(1)
    expect(replay.first).to_contain_text("37/40")
    expect(replay.first).to_contain_text("413 ms")
    rollout = page.locator("#rollouts tr[data-rollout-id]")
    expect(rollout).to_have_attribute("data-state", "rolled_back")
    expect(rollout).to_contain_text("2/2 failing")

    page.screenshot(path=str(SHOT), full_page=True)
    page.screenshot(path=screenshot_path("releases-desktop"), full_page=True)
    assert problems == []

    # Back: the production view again, from the URL alone.
    page.go_back()
    expect(rollbacks).to_have_count(1)


def test_a_link_to_an_unknown_release_says_so(context: BrowserContext) -> None:
    page, problems = _open(context, "/releases?release=never-deployed")
    expect(page.locator("#release-detail")).to_have_attribute("data-state", "error")
    expect(page.locator('#timeline-problem [data-role="problem"]')).to_contain_text("No release “never-deployed”")
    expect(page.locator(".release-grid")).to_be_hidden()
    # The list still loads: the link was wrong, not the page.
    expect(page.locator("#releases-body tr[data-release]")).to_have_count(3)
    assert problems == []


def test_opening_a_release_by_name(context: BrowserContext) -> None:
    page, _problems = _open(context, "/releases?window=24h")
    page.locator("#release-input").fill(BASELINE)
    page.locator("#open-release button").click()
    expect(page.locator("#release-detail")).to_have_attribute("data-state", "ready")
    expect(page.locator("#release-title")).to_have_text(BASELINE)
    expect(page.locator("#canary-chart")).to_contain_text("No canary analysis of this release yet.")
    expect(page.locator("#rollbacks")).to_contain_text("No rollback of this release.")


def test_deploy_markers_on_the_overview_trend(context: BrowserContext) -> None:
    page, problems = _open(context, "/?window=24h")
    expect(page.locator("#trend-chart")).to_have_attribute("data-state", "ready")
    markers = page.locator("#trend-chart line.deploy-marker")
    expect(markers).to_have_count(3)
    assert sorted(markers.evaluate_all("els => els.map(e => e.dataset.release + '/' + e.dataset.environment)")) == [
        f"{BASELINE}/production",
        f"{RELEASE}/production",
        f"{RELEASE}/staging",
    ]
    xs = markers.evaluate_all("els => els.map(e => Number(e.getAttribute('x1')))")
    assert xs == sorted(xs), "oldest release first, left to right"
    expect(page.locator("#trend-chart text.deploy-label").first).to_be_visible()
    expect(page.locator("#trend-chart .trend-legend")).to_contain_text("Release first seen")
    assert "releases first seen" in (page.locator("#trend-chart svg.trend").get_attribute("aria-label") or "")
    page.locator("#trend-chart").screenshot(path=screenshot_path("overview-deploy-markers"))
    # The nav goes to the Releases page.
    page.locator('.topnav a[href="/releases"]').click()
    expect(page.locator("body")).to_have_attribute("data-page", "releases")
    assert problems == []


def test_phone_layout_has_no_sideways_scrolling(browser: Browser, seeded: tuple[LiveServer, Seeded]) -> None:
    context = _context(browser, seeded[0], PHONE)
    try:
        page, problems = _open(context, f"/releases?release={RELEASE}")
        expect(page.locator("#release-detail")).to_have_attribute("data-state", "ready")
        overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        assert page.evaluate(overflow) <= 0
        page.screenshot(path=screenshot_path("releases-phone"), full_page=True)
        assert problems == []
    finally:
        context.close()


def test_the_readiness_rollback_chip_and_the_drill_card_open_the_drill_report(
    context: BrowserContext, seeded: tuple[LiveServer, Seeded]
) -> None:
    """A rollback drill recorded through the API with its report; readiness' rollback check passes from it, and both
    its chip and the drill's card open the report as text on this page (a release of its own, no events)."""
    server, _ = seeded
    release, environment = "v9.0.0-drill", "drill-env"
    text = "# rollback drill: PASS\n\n- [x] recovered within ROLLBACK_MAX_MINUTES\n<b>markup stays text</b>\n"
    now = time.time()
    with server.api() as api:
        r = api.post(
            "/api/v1/releases/rollbacks/drills",
            json={
                "release": release,
                "environment": environment,
                "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600)),
                "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 480)),
                "recovered": True,
                "report": {"format": "markdown", "text": text},
            },
        )
        assert r.status_code == 201, r.text
        drill_id = r.json()["id"]
        ready = api.post("/api/v1/releases/readiness", json={"release": release, "environment": environment})
        assert ready.json()["checks"]["rollback"]["evidence"]["rollback"]["id"] == drill_id
    page, problems = _open(context, f"/releases?release={release}")
    expect(page.locator("#release-detail")).to_have_attribute("data-state", "ready")
    chip = page.locator('#readiness [data-check="rollback"] a[data-field="check-report"]')
    expect(chip).to_have_attribute("data-rollback-id", drill_id)
    expect(chip).to_have_text("✓ rollback")
    card = page.locator(f'#rollbacks li[data-rollback-id="{drill_id}"] a[data-field="drill-report"]')
    expect(card).to_be_visible()

    chip.click()
    panel = page.locator("#drill-report")
    expect(panel).to_have_attribute("data-state", "ready")
    assert f"rollback_report={drill_id}" in page.url
    assert panel.locator('pre[data-field="report"]').text_content() == text
    expect(panel.locator("b")).to_have_count(0)
    panel.locator('[data-field="close-report"]').click()
    expect(panel).to_have_count(0)
    assert "rollback_report" not in page.url
    card.click()
    expect(page.locator("#drill-report")).to_have_attribute("data-state", "ready")
    page.go_back()
    expect(page.locator("#drill-report")).to_have_count(0)

    # A rollback without a report (or an id nobody has) says so in the panel.
    page.goto(f"/releases?release={release}&rollback_report=no-such-rollback")
    expect(page.locator("#drill-report")).to_have_attribute("data-state", "error")
    expect(page.locator("#drill-report [data-role='problem']")).to_contain_text("No drill report")
    assert problems == []
