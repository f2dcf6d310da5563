"""Browser fixtures: a real uvicorn server over a temporary SQLite file and one Debian Chromium per module."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from faultlens.api.app import create_app
from faultlens.services import Services
from tests.conftest import make_services, missing_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveServer:
    base_url: str
    services: Services

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)


def _closed_port() -> int:
    """A port nothing listens on, so the Redis-backed task panel meets a refused connection at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(tmp: Path, *, db_name: str = "dashboard.db", **settings: object) -> Iterator[LiveServer]:
    """A real server in a thread on a SQLite file under `tmp`, no task store (a closed port), `settings` on top."""
    services = make_services(
        f"sqlite:///{tmp / db_name}",
        start_jobs=False,
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        redis_timeout_s=0.5,
        **settings,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(services), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    # uvicorn sets `started` once it accepts connections; polling it is the only signal it offers.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        services.engine.dispose()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        missing_service(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def new_context(browser: Browser, live_server: LiveServer, **options: Any) -> BrowserContext:
    """A fresh profile (empty storage) per test; pages time out fast so a broken page fails quickly."""
    context = browser.new_context(base_url=live_server.base_url, viewport=options.pop("viewport", DESKTOP), **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    ctx = new_context(browser, live_server)
    try:
        yield ctx
    finally:
        ctx.close()


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
