"""Failed Celery tasks from a real worker (result backend metas): envelope, retry via send_task, refusal, archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from faultlens.connectors import celery_adapter, retention, sync
from faultlens.services import Services
from faultlens.store.tables import events
from tests.integration import celery_app
from tests.integration.task_support import (
    TASK_REDIS_URL,
    CeleryWorker,
    start_celery_worker,
    task_client,
    task_redis,
    task_services,
    wait_for,
)

__all__ = ["task_client", "task_redis", "task_services"]  # fixtures, imported for pytest

PATH = "/codebase-embedder/api/v1/tasks/failed"


@pytest.fixture
def producer() -> Iterator[Any]:
    app = celery_app.app
    app.conf.broker_url = TASK_REDIS_URL
    app.conf.result_backend = TASK_REDIS_URL
    yield app
    app.close()
    celery_adapter.close_apps()


@pytest.fixture
def worker(tmp_path: Path, task_redis: redis.Redis) -> Iterator[CeleryWorker]:
    w = start_celery_worker(tmp_path)
    try:
        yield w
    finally:
        w.stop()
    assert w.process.returncode is not None


def _status(r: redis.Redis, task_id: str) -> str | None:
    raw = r.get(f"celery-task-meta-{task_id}")
    return None if raw is None else str(json.loads(raw)["status"])


def test_celery_failures_retry_and_archive(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis, producer: Any, worker: CeleryWorker
) -> None:
    counter = "fltest:celery:flaky-runs"
    sent = {
        "timeout": celery_app.embed.delay("c1", "/p/slow"),
        "permission": celery_app.index.delay("c2", codebase_path="/p/secret"),
        "disk": celery_app.clean.delay(clientId="c3", codebasePath="/p/full"),
        "data": celery_app.parse.delay({"client_id": "c4", "codebase_path": "/p/bad"}),
        "flaky": celery_app.flaky.delay(counter, client_id="c5"),
    }
    ids = {name: res.id for name, res in sent.items()}
    wait_for(
        lambda: all(_status(task_redis, i) == "FAILURE" for i in ids.values()),
        timeout=60,
        what=f"5 failed Celery tasks (worker log: {worker.log()[-2000:]})",
    )

    body = task_client.get(PATH).json()
    assert (body["Code"], body["Success"], body["Data"]["TotalTasks"]) == (0, True, 5)
    tasks = body["Data"]["Tasks"]
    fail_times = [t["FailTime"] for t in tasks]
    assert fail_times == sorted(fail_times, reverse=True) and all(fail_times)
    by = {name: next(t for t in tasks if t["TaskId"] == tid) for name, tid in ids.items()}

    t = by["timeout"]
    assert (t["TaskType"], t["ClientId"], t["CodebasePath"], t["ErrorCode"]) == (
        "codebase.embed",
        "",
        "",
        "TimeoutError",
    )  # positional args carry no names
    assert t["ErrorMessage"] == "TimeoutError: 向量嵌入服务超时，请求超过30秒未响应"
    assert t["ErrorCategory"] == "service_timeout" and t["RetryCount"] == 0 and t["StartTime"] == ""
    p = by["permission"]
    assert (p["CodebasePath"], p["ErrorCode"]) == ("/p/secret", "PermissionError")
    assert p["ErrorMessage"] == "PermissionError: [Errno 13] Permission denied: '/p/secret'"
    d = by["disk"]
    assert (d["ClientId"], d["CodebasePath"]) == ("c3", "/p/full")
    assert d["ErrorMessage"] == "OSError: [Errno 28] No space left on device"
    assert d["ErrorCategory"] == "resource_exhausted"
    v = by["data"]
    assert (v["ClientId"], v["CodebasePath"], v["ErrorCategory"]) == ("c4", "/p/bad", "data_error")
    assert v["ErrorMessage"] == "ValueError: 数据格式错误: manifest is not valid JSON"
    f = by["flaky"]
    assert (f["TaskType"], f["ClientId"], f["ErrorCategory"]) == ("codebase.flaky", "c5", "service_timeout")

    first = sync.sync_failed_tasks(task_services)
    assert (first.found, first.accepted, first.errors) == (5, 5, [])
    assert sync.sync_failed_tasks(task_services).accepted == 0

    refused = task_client.post(f"/api/v1/tasks/{ids['data']}/retry")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "task_not_retryable"

    r = task_client.post(f"/api/v1/tasks/celery:{ids['flaky']}/retry")
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["attempt"]) == ("celery", 1)
    wait_for(
        lambda: _status(task_redis, ids["flaky"]) == "SUCCESS",
        timeout=30,
        what=f"the re-sent task to succeed (worker log: {worker.log()[-2000:]})",
    )
    assert int(task_redis.get(counter) or 0) == 2  # it really ran a second time
    meta = json.loads(task_redis.get(f"celery-task-meta-{ids['flaky']}") or b"{}")
    assert meta["result"] == "ok after 2 runs" and meta["retries"] == 1 and meta["kwargs"] == {"client_id": "c5"}
    after = {t["TaskId"] for t in task_client.get(PATH).json()["Data"]["Tasks"]}
    assert after == {ids[n] for n in ("timeout", "permission", "disk", "data")}
    with task_services.engine.connect() as conn:
        retry_rows = conn.execute(
            select(events.c.job_id, events.c.attempt, events.c.source).where(events.c.status == "retry")
        ).all()
    assert [(x.job_id, x.attempt, x.source) for x in retry_rows] == [(ids["flaky"], 1, "celery")]

    result = retention.archive_failed_tasks(task_services, older_than_days=0, stores=["celery"])
    assert (result.archived, result.deleted, result.errors) == (4, 4, [])
    archived = [json.loads(line) for file in result.files for line in Path(file).read_text().splitlines()]
    assert {a["task_id"] for a in archived} == after
    assert all(a["kind"] == "celery" and "Traceback" in a["traceback"] for a in archived)
    assert all(task_redis.exists(f"celery-task-meta-{i}") == 0 for i in after)
    assert task_redis.exists(f"celery-task-meta-{ids['flaky']}") == 1  # a success is not ours to delete
    assert task_client.get(PATH).json()["Data"]["TotalTasks"] == 0
