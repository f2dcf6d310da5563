"""Shared by the Celery and RQ integration tests: a real faultlens the workers report to, and their Redis DBs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from faultlens.api.app import create_app
from faultlens.services import Services
from faultlens.store import keys
from tests.conftest import make_services, missing_service
from tests.integration.task_support import SHARED_REDIS, wait_for, worker_env
from tests.live_server import LiveServer


@dataclass
class Receiver:
    """A running faultlens: its URL, an ingest key (for the workers) and a reader."""

    url: str
    ingest_key: str
    read_key: str
    services: Services

    def worker_env(self, **extra: str) -> dict[str, str]:
        return worker_env(FAULTLENS_URL=self.url, FAULTLENS_API_KEY=self.ingest_key, **extra)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/api/v1/events",
            params={"limit": 1000, **params},
            headers={"Authorization": f"Bearer {self.read_key}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def wait_events(self, job_id: str, count: int, *, timeout: float = 20) -> list[dict[str, Any]]:
        """The job's events once `count` of them are stored, oldest attempt first."""

        def ready() -> list[dict[str, Any]]:
            found = [e for e in self.events() if e["job_id"] == job_id]
            return found if len(found) >= count else []

        found = wait_for(ready, timeout=timeout, interval=0.2, what=f"{count} event(s) of job {job_id}")
        return sorted(found, key=lambda e: (e["attempt"] or 0, e["id"]))


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    path: Path = tmp_path_factory.mktemp("faultlens")
    services = make_services(f"sqlite:///{path / 'faultlens.db'}", start_jobs=False)
    with services.engine.begin() as conn:
        _, ingest = keys.create_key(conn, tenant="default", scopes=["ingest"], name="worker")
        _, reader = keys.create_key(conn, tenant="default", scopes=["read"], name="test")
    with LiveServer(create_app(services)) as server:
        yield Receiver(server.url, ingest, reader, services)
    services.engine.dispose()


def owned_redis(db: int) -> Iterator[redis.Redis]:
    """A Redis DB the test module owns: empty before and after."""
    client = redis.Redis.from_url(f"{SHARED_REDIS}/{db}", socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {SHARED_REDIS} is not reachable: {exc}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def integrations_db(name: str, default: int) -> int:
    return int(os.environ.get(f"FAULTLENS_TEST_{name}_DB", str(default)))
