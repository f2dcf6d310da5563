"""A real faultlens on a loopback port with an ingest key and a read key, for the ASGI/logging/sender tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import keys
from tests.conftest import make_services
from tests.live_server import LiveServer


@dataclass
class Faultlens:
    url: str
    ingest_key: str
    read_key: str
    services: Services

    def events(self, **params: Any) -> list[dict[str, Any]]:
        query = {"window": "24h", "limit": 1000, **params}
        r = httpx.get(f"{self.url}/api/v1/events", params=query, headers={"X-API-Key": self.read_key}, timeout=10)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def event(self, event_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1/events/{event_id}", headers={"X-API-Key": self.read_key}, timeout=10)
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        return found

    def wait_for(self, count: int, *, timeout_s: float = 20.0, **params: Any) -> list[dict[str, Any]]:
        """The events matching `params` once at least `count` are stored (or what is there at the deadline)."""
        deadline = time.monotonic() + timeout_s
        while True:
            items = self.events(**params)
            if len(items) >= count or time.monotonic() > deadline:
                return items
            time.sleep(0.05)


@contextmanager
def running_faultlens(tmp_path: Path) -> Iterator[Faultlens]:
    services = make_services(f"sqlite:///{tmp_path / 'faultlens.db'}", start_jobs=False)
    with services.engine.begin() as conn:
        _, ingest_key = keys.create_key(conn, tenant="default", scopes=["ingest"])
        _, read_key = keys.create_key(conn, tenant="default", scopes=["read"])
    try:
        with LiveServer(create_app(services)) as server:
            yield Faultlens(server.url, ingest_key, read_key, services)
    finally:
        services.engine.dispose()
