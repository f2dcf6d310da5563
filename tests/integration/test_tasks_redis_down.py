"""Redis frozen, stopped and restarted under the API and the sync thread (a private redis-server per test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from faultlens.api.app import create_app
from faultlens.connectors import native, registry, sync
from faultlens.errors import RedisUnavailable
from faultlens.services import Services
from faultlens.store.tables import events
from tests.integration.task_support import RedisServer, build_task_services, own_redis, wait_for

__all__ = ["own_redis"]  # fixture, imported for pytest

PATH = "/codebase-embedder/api/v1/tasks/failed"
DOWN = {"Code": 500, "Message": "Redis服务不可用，请稍后再试", "Success": False, "Data": None}


@pytest.fixture
def down_services(sqlite_url: str, tmp_path: Path, own_redis: RedisServer) -> Iterator[Services]:
    svc = build_task_services(sqlite_url, tmp_path, redis_url=own_redis.url)
    yield svc
    svc.engine.dispose()
    registry.close_clients()


def _record(server: RedisServer, services: Services, task_id: str) -> None:
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    native.record_failure(
        client,
        prefix=services.settings.redis_prefix,
        task_id=task_id,
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out",
    )
    client.close()


def _timed_get(client: TestClient, path: str) -> tuple[float, int, Any]:
    started = time.monotonic()
    r = client.get(path)
    return time.monotonic() - started, r.status_code, r.json()


def test_frozen_stopped_restarted(own_redis: RedisServer, down_services: Services) -> None:
    _record(own_redis, down_services, "t1")
    with TestClient(create_app(down_services)) as c:
        assert c.get(PATH).json()["Data"]["TotalTasks"] == 1

        own_redis.freeze()  # accepts connections, answers nothing
        try:
            elapsed, status, body = _timed_get(c, PATH)
        finally:
            own_redis.thaw()
        assert (status, body) == (503, DOWN) and elapsed < 6.0
        assert elapsed >= down_services.settings.redis_timeout_s * 0.9  # it did wait for the timeout

        elapsed, status, body = _timed_get(c, PATH)
        assert status == 200 and body["Data"] == {"TotalTasks": 1, "Tasks": body["Data"]["Tasks"]}

        own_redis.stop()
        elapsed, status, body = _timed_get(c, PATH)
        assert (status, body) == (503, DOWN) and elapsed < 6.0
        elapsed, status, body = _timed_get(c, "/api/v1/tasks/failed")
        assert status == 503 and body["error"]["code"] == "redis_unavailable" and elapsed < 6.0
        retry = c.post("/api/v1/tasks/t1/retry")
        assert retry.status_code == 503 and retry.json()["error"]["code"] == "redis_unavailable"

        own_redis.start()  # same port, empty (no persistence)
        elapsed, status, body = _timed_get(c, PATH)
        assert status == 200 and body["Data"] == {"TotalTasks": 0, "Tasks": []}
        _record(own_redis, down_services, "t2")
        assert [t["TaskId"] for t in c.get(PATH).json()["Data"]["Tasks"]] == ["t2"]


def test_sync_thread_survives_redis_outage(own_redis: RedisServer, down_services: Services) -> None:
    def count() -> int:
        with down_services.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)

    own_redis.stop()
    stop = sync.start_sync(down_services, interval_s=0.1)
    try:
        with pytest.raises(RedisUnavailable):
            sync.sync_failed_tasks(down_services)
        own_redis.start()
        _record(own_redis, down_services, "t1")
        assert wait_for(lambda: count() == 1, what="the event synced after Redis came back")
    finally:
        started = time.monotonic()
        stop()
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
