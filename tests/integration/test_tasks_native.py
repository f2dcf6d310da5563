"""Failed tasks in the native Redis layout: the codebase-embedder envelope, native API, retry, sync, retention, CLI."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.cli import app as cli_app
from faultlens.connectors import categories, native, registry, retention, service, sync
from faultlens.connectors.base import FailedTask
from faultlens.connectors.retry_policy import RetryPolicies, RetryPolicy, load_retry_policies
from faultlens.errors import RetryPolicyError
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import events
from faultlens.timeutil import now_ms
from tests.integration.task_support import (
    TASK_REDIS_URL,
    build_task_services,
    task_client,
    task_redis,
    task_services,
    wait_for,
)

__all__ = ["task_client", "task_redis", "task_services"]  # fixtures, imported for pytest

PATH = "/codebase-embedder/api/v1/tasks/failed"
MINUTE = 60_000
DAY = 86_400_000


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _seed_document_tasks(r: redis.Redis, prefix: str) -> None:
    """The three tasks of the seed document's example, written in a shuffled order."""
    native.record_failure(
        r,
        prefix=prefix,
        task_id="task_002",
        task_type="indexing",
        client_id="client456",
        codebase_path="/projects/another",
        started_at_ms=_ms("2025-01-24T09:20:00Z"),
        failed_at_ms=_ms("2025-01-24T09:22:00Z"),
        error_code="PERMISSION_DENIED",
        error_message="没有权限访问指定代码库",
        retry_count=0,
        processed_files=0,
    )
    native.record_failure(
        r,
        prefix=prefix,
        task_id="task_001",
        task_type="embedding",
        client_id="client123",
        codebase_path="/projects/myapp",
        started_at_ms=_ms("2025-01-24T09:00:00Z"),
        failed_at_ms=_ms("2025-01-24T09:15:00Z"),
        error_code="TIMEOUT_ERROR",
        error_message="向量嵌入服务超时，请求超过30秒未响应",
        retry_count=3,
        processed_files=75,
    )
    native.record_failure(
        r,
        prefix=prefix,
        task_id="task_003",
        task_type="cleaning",
        client_id="client789",
        codebase_path="/projects/old",
        started_at_ms=_ms("2025-01-24T10:00:00Z"),
        failed_at_ms=_ms("2025-01-24T10:01:00Z"),
        error_code="STORAGE_ERROR",
        error_message="存储空间不足，无法完成清理操作",
        retry_count=1,
        processed_files=50,
    )


def test_envelope_field_by_field_newest_first(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    _seed_document_tasks(task_redis, task_services.settings.redis_prefix)
    r = task_client.get(PATH)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "Code": 0,
        "Message": "ok",
        "Success": True,
        "Data": {
            "TotalTasks": 3,
            "Tasks": [
                {
                    "TaskId": "task_003",
                    "TaskType": "cleaning",
                    "ClientId": "client789",
                    "CodebasePath": "/projects/old",
                    "StartTime": "2025-01-24T10:00:00Z",
                    "FailTime": "2025-01-24T10:01:00Z",
                    "ErrorCode": "STORAGE_ERROR",
                    "ErrorMessage": "存储空间不足，无法完成清理操作",
                    "RetryCount": 1,
                    "ProcessedFiles": 50,
                    "ErrorCategory": "resource_exhausted",
                },
                {
                    "TaskId": "task_002",
                    "TaskType": "indexing",
                    "ClientId": "client456",
                    "CodebasePath": "/projects/another",
                    "StartTime": "2025-01-24T09:20:00Z",
                    "FailTime": "2025-01-24T09:22:00Z",
                    "ErrorCode": "PERMISSION_DENIED",
                    "ErrorMessage": "没有权限访问指定代码库",
                    "RetryCount": 0,
                    "ProcessedFiles": 0,
                    "ErrorCategory": "authorization",
                },
                {
                    "TaskId": "task_001",
                    "TaskType": "embedding",
                    "ClientId": "client123",
                    "CodebasePath": "/projects/myapp",
                    "StartTime": "2025-01-24T09:00:00Z",
                    "FailTime": "2025-01-24T09:15:00Z",
                    "ErrorCode": "TIMEOUT_ERROR",
                    "ErrorMessage": "向量嵌入服务超时，请求超过30秒未响应",
                    "RetryCount": 3,
                    "ProcessedFiles": 75,
                    "ErrorCategory": "service_timeout",
                },
            ],
        },
    }


def test_sparse_task_has_every_field(task_client: TestClient, task_services: Services, task_redis: redis.Redis) -> None:
    prefix = task_services.settings.redis_prefix
    # A task known only by the index (its hash is gone) and one whose hash holds junk.
    task_redis.zadd(native.failed_key(prefix), {"orphan": _ms("2025-02-01T00:00:00Z")})
    task_redis.hset(
        native.task_key(prefix, "junk"),
        mapping={"retry_count": "many", "processed_files": "-3", "start_time": "yesterday", "args": "{not json"},
    )
    task_redis.zadd(native.failed_key(prefix), {"junk": _ms("2025-01-01T00:00:00Z")})
    body = task_client.get(PATH).json()
    assert body["Data"]["TotalTasks"] == 2
    orphan, junk = body["Data"]["Tasks"]
    assert orphan == {
        "TaskId": "orphan",
        "TaskType": "",
        "ClientId": "",
        "CodebasePath": "",
        "StartTime": "",
        "FailTime": "2025-02-01T00:00:00Z",
        "ErrorCode": "",
        "ErrorMessage": "",
        "RetryCount": 0,
        "ProcessedFiles": 0,
        "ErrorCategory": "system_error",
    }
    assert junk["TaskId"] == "junk" and junk["RetryCount"] == 0 and junk["ProcessedFiles"] == 0
    assert junk["StartTime"] == "" and junk["FailTime"] == "2025-01-01T00:00:00Z"


def test_client_and_codebase_from_args(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    prefix = task_services.settings.redis_prefix
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="a1",
        task_type="embedding",
        error_message="x",
        kwargs={"clientId": "c-camel", "codebasePath": "/p/camel"},
    )
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="a2",
        task_type="embedding",
        error_message="x",
        args=[{"client_id": "c-dict", "codebase_path": "/p/dict"}, 3],
    )
    tasks = {t["TaskId"]: t for t in task_client.get(PATH).json()["Data"]["Tasks"]}
    assert (tasks["a1"]["ClientId"], tasks["a1"]["CodebasePath"]) == ("c-camel", "/p/camel")
    assert (tasks["a2"]["ClientId"], tasks["a2"]["CodebasePath"]) == ("c-dict", "/p/dict")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405_in_the_envelope(task_client: TestClient, method: str) -> None:
    r = task_client.request(method, PATH)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    body = r.json()
    assert body == {"Code": 405, "Message": body["Message"], "Success": False, "Data": None}
    assert "GET" in body["Message"]


def test_failed_scan_is_500_in_both_bodies(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    task_redis.set(native.failed_key(task_services.settings.redis_prefix), "not a sorted set")
    r = task_client.get(PATH)
    assert r.status_code == 500
    body = r.json()
    assert body["Code"] == 500 and body["Success"] is False and body["Data"] is None
    assert body["Message"].startswith("查询失败任务失败") and "WRONGTYPE" in body["Message"]
    native_r = task_client.get("/api/v1/tasks/failed")
    assert native_r.status_code == 500 and native_r.json()["error"]["code"] == "task_scan_failed"


def test_closed_port_is_503_envelope_fast(sqlite_url: str, tmp_path: Path) -> None:
    from tests.integration.task_support import free_port

    svc = build_task_services(sqlite_url, tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with TestClient(create_app(svc)) as c:
            started = time.monotonic()
            r = c.get(PATH)
            elapsed = time.monotonic() - started
            assert r.status_code == 503 and elapsed < 6.0
            assert r.json() == {"Code": 500, "Message": "Redis服务不可用，请稍后再试", "Success": False, "Data": None}
            n = c.get("/api/v1/tasks/failed")
            assert n.status_code == 503 and n.json()["error"]["code"] == "redis_unavailable"
            assert set(n.json()) == {"error", "request_id", "correlation_id", "trace_id"}
    finally:
        svc.engine.dispose()
        registry.close_clients()


def _task(message: str, exception_type: str = "", error_code: str = "") -> FailedTask:
    return FailedTask(
        kind="native",
        task_id="t",
        source="native",
        error_message=message,
        exception_type=exception_type,
        error_code=error_code,
    )


# Reported to the classifier's owner: the default pack decides these otherwise (see docs/tasks.md).

CATEGORY_CASES = [
    ("向量嵌入服务超时，请求超过30秒未响应", "", "TIMEOUT_ERROR", "service_timeout"),
    ("数据库查询超时", "", "", "service_timeout"),
    ("embedding service did not answer within 30s", "TimeoutError", "", "service_timeout"),
    ("Task exceeded maximum timeout value (1 seconds)", "rq.timeouts.JobTimeoutException", "", "service_timeout"),
    ("没有权限访问指定代码库", "", "PERMISSION_DENIED", "authorization"),
    ("认证失败", "", "", "authorization"),
    ("[Errno 13] Permission denied: '/projects/secret'", "PermissionError", "", "authorization"),
    ("文件损坏", "", "", "data_error"),
    ("数据完整性问题", "", "", "data_error"),
    ("存储空间不足，无法完成清理操作", "", "STORAGE_ERROR", "resource_exhausted"),
    ("内存不足", "", "", "resource_exhausted"),
    ("连接池耗尽", "", "", "resource_exhausted"),
    ("", "MemoryError", "", "resource_exhausted"),
    ("[Errno 28] No space left on device", "OSError", "", "resource_exhausted"),
    ("数据格式错误", "", "", "data_error"),
    ("系统资源不足", "", "", "system_error"),
    ("未知异常", "", "", "system_error"),
    ("invalid literal for int() with base 10: 'abc'", "ValueError", "", "data_error"),
    ("Expecting value: line 1 column 1 (char 0)", "json.decoder.JSONDecodeError", "", "data_error"),
    ("内部服务异常", "", "", "system_error"),
    ("something broke", "RuntimeError", "", "system_error"),
]


@pytest.mark.parametrize(("message", "exception_type", "code", "expected"), CATEGORY_CASES)
def test_error_category(task_services: Services, message: str, exception_type: str, code: str, expected: str) -> None:
    view = service.classify(task_services, _task(message, exception_type, code), RetryPolicies())
    assert view.category == expected, (view.classifier_category, view.failure_kind)


def test_category_map_covers_every_classifier_category() -> None:
    from faultlens.model import Category

    assert set(categories.CATEGORY_MAP) == {c.value for c in Category}
    assert set(categories.CATEGORY_MAP.values()) == {
        "service_timeout",
        "authorization",
        "resource_exhausted",
        "data_error",
        "system_error",
    }


def _recent(r: redis.Redis, prefix: str, n: int) -> list[str]:
    now = now_ms()
    ids = []
    kinds = [
        ("embedding", "TimeoutError", "timed out after 30s", "c1"),
        ("indexing", "AccessDenied", "没有权限访问指定代码库", "c2"),
        ("cleaning", "OSError", "[Errno 28] No space left on device", "c1"),
    ]
    for i in range(n):
        task_type, exc, msg, client = kinds[i % 3]
        task_id = f"n{i:03d}"
        native.record_failure(
            r,
            prefix=prefix,
            task_id=task_id,
            task_type=task_type,
            exception_type=exc,
            error_message=msg,
            client_id=client,
            codebase_path=f"/p/{i}",
            started_at_ms=now - (i + 2) * MINUTE,
            failed_at_ms=now - (i + 1) * MINUTE,
            source="codebase-embedder",
        )
        ids.append(task_id)
    return ids


def test_native_api_filters_and_cursor(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    ids = _recent(task_redis, task_services.settings.redis_prefix, 25)
    body = task_client.get("/api/v1/tasks/failed").json()
    assert body["total"] == 25 and [i["task_id"] for i in body["items"]] == ids  # n000 failed last
    first = body["items"][0]
    assert first["id"] == "native:n000" and first["kind"] == "native" and first["source"] == "codebase-embedder"
    assert first["error_message"] == "timed out after 30s" and first["exception_type"] == "TimeoutError"
    assert first["category"] == "service_timeout" and first["retryable"] is True and first["status"] == "failure"
    get = task_client.get
    assert {i["task_type"] for i in get("/api/v1/tasks/failed", params={"task_type": "indexing"}).json()["items"]} == {
        "indexing"
    }
    by_client = get("/api/v1/tasks/failed", params={"client_id": "c2"}).json()
    assert by_client["total"] == 8 and all(i["client_id"] == "c2" for i in by_client["items"])
    disk = get("/api/v1/tasks/failed", params={"category": "resource_exhausted"}).json()
    assert disk["total"] == 8 and all(i["task_type"] == "cleaning" for i in disk["items"])
    assert get("/api/v1/tasks/failed", params={"source": "rq"}).json()["total"] == 0
    assert get("/api/v1/tasks/failed", params={"source": "codebase-embedder"}).json()["total"] == 25

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = get("/api/v1/tasks/failed", params=params).json()
        seen += [i["task_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == ids

    for bad in ({"cursor": "!!!"}, {"limit": 0}, {"category": "meteor"}):
        r = get("/api/v1/tasks/failed", params=bad)
        assert r.status_code == 400 and set(r.json()) == {"error", "request_id", "correlation_id", "trace_id"}, bad


def test_retry_native_then_refusals(task_client: TestClient, task_services: Services, task_redis: redis.Redis) -> None:
    prefix = task_services.settings.redis_prefix
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="emb-1",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out",
        max_retries=2,
    )
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="idx-1",
        task_type="indexing",
        error_message="没有权限访问指定代码库",
        error_code="PERMISSION_DENIED",
    )

    r = task_client.post("/api/v1/tasks/emb-1/retry")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "native:emb-1" and r.json()["attempt"] == 1
    assert task_redis.zscore(native.failed_key(prefix), "emb-1") is None
    assert task_redis.zscore(native.pending_key(prefix), "emb-1") is not None
    assert task_redis.hget(native.task_key(prefix, "emb-1"), "status") == b"pending"
    assert native.claim_due(task_redis, prefix=prefix) == ["emb-1"]
    assert task_redis.hget(native.task_key(prefix, "emb-1"), "status") == b"running"

    # No longer failed: 404 until it fails again; then a second retry, then the limit (2) refuses.
    assert task_client.post("/api/v1/tasks/emb-1/retry").json()["error"]["code"] == "task_not_found"
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="emb-1",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out again",
    )
    assert task_client.post("/api/v1/tasks/native:emb-1/retry").json()["attempt"] == 2
    native.claim_due(task_redis, prefix=prefix)
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="emb-1",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out a third time",
    )
    exhausted = task_client.post("/api/v1/tasks/emb-1/retry")
    assert exhausted.status_code == 409
    err = exhausted.json()["error"]
    assert err["code"] == "task_not_retryable" and err["details"]["reason"] == "retries_exhausted"
    assert (err["details"]["retry_count"], err["details"]["max_retries"]) == (2, 2)

    never = task_client.post("/api/v1/tasks/idx-1/retry")
    assert never.status_code == 409
    assert never.json()["error"]["details"] == {
        "id": "native:idx-1",
        "reason": "category_never_retried",
        "category": "authorization",
        "retry_count": 0,
        "max_retries": 3,
    }
    assert task_redis.zscore(native.failed_key(prefix), "idx-1") is not None  # refused means untouched

    missing = task_client.post("/api/v1/tasks/nope/retry")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "task_not_found"
    bad_kind = task_client.post("/api/v1/tasks/emb-1/retry", params={"kind": "sidekiq"})
    assert bad_kind.status_code == 400

    # Each retry is an event with status retry and its attempt number.
    with task_services.engine.connect() as conn:
        rows = conn.execute(
            select(events.c.attempt, events.c.job_id).where(events.c.status == "retry").order_by(events.c.attempt)
        ).all()
    assert [(r.attempt, r.job_id) for r in rows] == [(1, "emb-1"), (2, "emb-1")]


def test_retry_needs_admin_scope(task_services: Services, task_redis: redis.Redis) -> None:
    native.record_failure(
        task_redis,
        prefix=task_services.settings.redis_prefix,
        task_id="t1",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out",
    )
    with task_services.engine.begin() as conn:
        _, reader = keys.create_key(conn, tenant="default", scopes=["read"])
        _, admin = keys.create_key(conn, tenant="default", scopes=["admin"])
        _, other = keys.create_key(conn, tenant="other", scopes=["admin"])
    with TestClient(create_app(task_services)) as c:
        assert c.post("/api/v1/tasks/t1/retry").status_code == 401
        assert c.post("/api/v1/tasks/t1/retry", headers={"X-API-Key": reader}).status_code == 403
        foreign = c.get("/api/v1/tasks/failed", headers={"X-API-Key": other})
        assert foreign.status_code == 403  # another tenant's key never reads the deployment's Redis
        envelope = c.get(PATH)
        assert envelope.status_code == 401 and envelope.json()["Code"] == 401 and envelope.json()["Data"] is None
        assert c.get(PATH, headers={"X-API-Key": reader}).json()["Data"]["TotalTasks"] == 1
        ok = c.post("/api/v1/tasks/t1/retry", headers={"X-API-Key": admin})
        assert ok.status_code == 200 and ok.json()["attempt"] == 1


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_sync_is_idempotent_and_counts_in_stats(
    db: str, request: pytest.FixtureRequest, tmp_path: Path, task_redis: redis.Redis
) -> None:
    url = str(request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url"))
    svc = build_task_services(url, tmp_path)
    try:
        ids = _recent(task_redis, svc.settings.redis_prefix, 6)
        native.record_retry(task_redis, prefix=svc.settings.redis_prefix, task_id="n000", attempt=1)
        first = sync.sync_failed_tasks(svc)
        assert (first.found, first.accepted, first.retry_events, first.errors) == (5, 6, 1, [])
        second = sync.sync_failed_tasks(svc)
        assert (second.accepted, second.duplicates) == (0, 6)
        with svc.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar() == 6
            rows = {r.job_id: r for r in conn.execute(select(events).where(events.c.status != "retry"))}
        assert set(rows) == set(ids) - {"n000"}
        n001 = rows["n001"]
        assert n001.item_type == "task" and n001.source == "codebase-embedder" and n001.operation == "indexing"
        assert n001.status == "dead_letter"  # authorization is never retried: final
        assert n001.error_message == "AccessDenied: 没有权限访问指定代码库"
        assert n001.id == f"task:native:n001:0:{n001.occurred_at}" and n001.duration_ms == 60_000
        assert json.loads(n001.attributes)["task_category"] == "authorization"
        # Disk full is classified not retryable: the task will not run again, so it is stored as final.
        assert rows["n002"].status == "dead_letter" and rows["n002"].category == "resource_exhausted"
        assert rows["n002"].retryable is False and rows["n003"].status == "failure" and rows["n003"].retryable
        with TestClient(create_app(svc)) as c:
            s = c.get("/api/v1/stats/summary").json()
            assert s["total"] == 6 and s["failure_count"] == 6
            assert (
                c.get("/api/v1/events", params={"item_type": "task", "status": "retry"}).json()["items"][0]["job_id"]
                == "n000"
            )
    finally:
        svc.engine.dispose()
        registry.close_clients()


def test_periodic_sync_runs_and_stops_promptly(task_services: Services, task_redis: redis.Redis) -> None:
    _recent(task_redis, task_services.settings.redis_prefix, 3)

    def count() -> int:
        with task_services.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar() or 0)

    stop = sync.start_sync(task_services, interval_s=0.2)
    try:
        assert wait_for(lambda: count() == 3, what="3 synced events")
        native.record_failure(
            task_redis,
            prefix=task_services.settings.redis_prefix,
            task_id="late",
            task_type="embedding",
            error_message="timed out",
        )
        assert wait_for(lambda: count() == 4, what="the 4th event")
    finally:
        started = time.monotonic()
        stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 1.0


def test_auto_retry_after_backoff(sqlite_url: str, tmp_path: Path, task_redis: redis.Redis) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "auto_retry: true\ndefault: {max_retries: 2, base_delay_s: 0, jitter: 0}\n"
        "task_types:\n  slow: {base_delay_s: 3600}\n"
    )
    svc = build_task_services(sqlite_url, tmp_path, retry_policy_file=policy)
    prefix = svc.settings.redis_prefix
    try:
        native.record_failure(
            task_redis,
            prefix=prefix,
            task_id="due",
            task_type="fast",
            exception_type="TimeoutError",
            error_message="timed out",
        )
        native.record_failure(
            task_redis,
            prefix=prefix,
            task_id="later",
            task_type="slow",
            exception_type="TimeoutError",
            error_message="timed out",
        )
        native.record_failure(
            task_redis,
            prefix=prefix,
            task_id="never",
            task_type="fast",
            exception_type="ValueError",
            error_message="bad row",
        )
        result = sync.run_round(svc)
        assert result.auto_retried == 1
        assert task_redis.zrange(native.pending_key(prefix), 0, -1) == [b"due"]
        assert sorted(task_redis.zrange(native.failed_key(prefix), 0, -1)) == [b"later", b"never"]
    finally:
        svc.engine.dispose()
        registry.close_clients()


def test_archive_before_delete(task_services: Services, task_redis: redis.Redis, tmp_path: Path) -> None:
    prefix = task_services.settings.redis_prefix
    now = now_ms()
    old_day = now - 40 * DAY
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="old-1",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out",
        failed_at_ms=old_day,
        client_id="c1",
        traceback="Traceback...\nTimeoutError: timed out",
    )
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="old-2",
        task_type="indexing",
        error_message="没有权限访问指定代码库",
        failed_at_ms=old_day + 1000,
    )
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="new-1",
        task_type="embedding",
        error_message="timed out",
        failed_at_ms=now - DAY,
    )
    # A retry logged 40 days ago (stream ids are the time an entry was written).
    task_redis.xadd(native.retries_key(prefix), {"task_id": "ancient", "attempt": 1, "at": old_day}, id=f"{old_day}-0")
    native.record_retry(task_redis, prefix=prefix, task_id="new-0", attempt=1)

    # The archive directory cannot be created: nothing may be deleted.
    blocked = build_task_services(
        task_services.settings.database_url,
        tmp_path,
        redis_prefix=prefix,
        task_archive_dir=tmp_path / "file-not-dir" / "x",
    )
    (tmp_path / "file-not-dir").write_text("in the way")
    with pytest.raises(OSError):
        retention.archive_failed_tasks(blocked, older_than_days=30, stores=["native"])
    assert task_redis.zcard(native.failed_key(prefix)) == 3
    assert task_redis.exists(native.task_key(prefix, "old-1")) == 1
    blocked.engine.dispose()

    result = retention.archive_failed_tasks(task_services, older_than_days=30, stores=["native"])
    assert (result.archived, result.deleted, result.errors) == (2, 2, [])
    day = datetime.fromtimestamp(old_day / 1000, tz=UTC).strftime("%Y-%m-%d")
    path = task_services.settings.task_archive_dir / f"failed-tasks-{day}.jsonl"
    assert result.files == [str(path)]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["task_id"], r["task_type"], r["category"]) for r in lines] == [
        ("old-2", "indexing", "authorization"),
        ("old-1", "embedding", "service_timeout"),
    ]
    assert lines[1]["client_id"] == "c1" and lines[1]["traceback"].endswith("TimeoutError: timed out")
    assert lines[1]["error_message"] == "timed out" and lines[1]["archived_at"]
    assert task_redis.zrange(native.failed_key(prefix), 0, -1) == [b"new-1"]
    assert task_redis.exists(native.task_key(prefix, "old-1"), native.task_key(prefix, "old-2")) == 0
    retry_log = task_redis.xrange(native.retries_key(prefix))
    assert [e[1][b"task_id"] for e in retry_log] == [b"new-0"]  # the retry log is trimmed to the retention too
    again = retention.archive_failed_tasks(task_services, older_than_days=30, stores=["native"])
    assert again.archived == 0 and len(path.read_text().splitlines()) == 2


def test_hints(task_client: TestClient) -> None:
    def ev(**fields: Any) -> dict[str, Any]:
        base = {
            "source": "embedder",
            "item_type": "task",
            "status": "failure",
            "occurred_at": datetime.fromtimestamp((now_ms() - 2 * MINUTE) / 1000, tz=UTC).isoformat(),
        }
        base.update(fields)
        return base

    hours_ago = datetime.fromtimestamp((now_ms() - 3 * 3_600_000) / 1000, tz=UTC).isoformat()
    batch = (
        [ev(status="retry", job_id="runaway", attempt=a, max_attempts=3) for a in (1, 2, 3, 4)]
        + [ev(status="retry", job_id="stuck", attempt=a) for a in (1, 2, 2, 2, 2)]
        + [ev(error_message="TimeoutError: upstream timed out", job_id=f"f{i}") for i in range(12)]
        + [ev(error_message="TimeoutError: upstream timed out", occurred_at=hours_ago) for _ in range(2)]
        + [ev(status="success") for _ in range(10)]
    )
    assert client_post(task_client, batch) == len(batch)
    hints = {h["code"]: h for h in task_client.get("/api/v1/tasks/hints").json()["items"]}
    assert set(hints) == {
        "task_retries_past_max",
        "task_silent_retry_loop",
        "task_failure_spike",
        "task_category_dominates",
        "task_failure_rate",
    }
    for h in hints.values():
        assert set(h) == {"code", "level", "observed", "threshold", "source", "message"}
        assert h["source"] == "embedder" and h["level"] in ("info", "warn", "critical")
    assert (hints["task_retries_past_max"]["observed"], hints["task_retries_past_max"]["threshold"]) == (4, 3)
    assert "runaway" in hints["task_retries_past_max"]["message"]
    assert hints["task_silent_retry_loop"]["observed"] == 4 and "stuck" in hints["task_silent_retry_loop"]["message"]
    assert hints["task_failure_spike"]["observed"] == 12
    assert hints["task_category_dominates"]["observed"] == 1.0
    assert hints["task_failure_rate"]["observed"] == round(14 / 24, 4)


def client_post(client: TestClient, batch: list[dict[str, Any]]) -> int:
    r = client.post("/api/v1/events", json=batch)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return int(r.json()["accepted"])


def test_retry_policy_file(tmp_path: Path) -> None:
    assert load_retry_policies(None) == RetryPolicies()
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps(
            {
                "default": {"max_retries": 5},
                "task_types": {"embedding": {"max_retries": 1}},
                "never_retry_categories": ["authorization"],
            }
        )
    )
    p = load_retry_policies(f)
    assert p.for_type("embedding").max_retries == 1 and p.for_type("tasks.embedding").max_retries == 1
    assert p.for_type("other").max_retries == 5
    assert p.decide(retryable=True, task_type="x", category="data_error", retry_count=0).allowed is True
    never = p.decide(retryable=True, task_type="x", category="authorization", retry_count=0)
    assert (never.allowed, never.reason) == (False, "category_never_retried")
    spent = p.decide(retryable=True, task_type="embedding", category="service_timeout", retry_count=1)
    assert (spent.allowed, spent.reason, spent.max_retries) == (False, "retries_exhausted", 1)
    # The policy reads the classification's verdict; it never turns a non-retryable failure retryable.
    oom = p.decide(retryable=False, task_type="x", category="resource_exhausted", retry_count=0)
    assert (oom.allowed, oom.reason) == (False, "failure_not_retryable")
    rq_spent = p.decide(retryable=True, task_type="x", category="service_timeout", retry_count=0, source_exhausted=True)
    assert (rq_spent.allowed, rq_spent.reason, rq_spent.max_retries) == (False, "retries_exhausted", None)
    assert load_retry_policies(None).auto_retry == ()  # nothing is requeued on a timer by default
    bad = tmp_path / "bad.yaml"
    bad.write_text("never_retry_categories: [meteor]\n")
    with pytest.raises(RetryPolicyError) as exc:
        load_retry_policies(bad)
    assert exc.value.code == "invalid_retry_policy" and "meteor" in exc.value.message


def test_backoff_is_exponential_capped_and_jittered() -> None:
    plain = RetryPolicy(base_delay_s=2, multiplier=2, max_delay_s=30, jitter=0)
    assert [plain.delay_s(n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
    jittery = RetryPolicy(base_delay_s=10, multiplier=2, max_delay_s=1000, jitter=0.5)
    samples = [jittery.delay_s(3, seed=f"task-{i}") for i in range(200)]
    assert all(20 <= s <= 60 for s in samples) and len({round(s, 6) for s in samples}) > 150
    assert jittery.delay_s(3, seed="same") == jittery.delay_s(3, seed="same")  # stable across sync rounds


def test_cli_list_sync_archive_retry(task_services: Services, task_redis: redis.Redis, tmp_path: Path) -> None:
    prefix = task_services.settings.redis_prefix
    _recent(task_redis, prefix, 3)
    native.record_failure(
        task_redis,
        prefix=prefix,
        task_id="old",
        task_type="embedding",
        error_message="timed out",
        failed_at_ms=now_ms() - 10 * DAY,
    )
    common = ["--db", task_services.settings.database_url, "--redis-url", TASK_REDIS_URL, "--prefix", prefix]
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["tasks", "list", *common])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    assert [r["task_id"] for r in rows] == ["n000", "n001", "n002", "old"]
    synced = runner.invoke(cli_app, ["tasks", "sync", *common])
    assert synced.exit_code == 0 and json.loads(synced.stdout)["accepted"] == 4
    retried = runner.invoke(cli_app, ["tasks", "retry", "n000", *common])
    assert retried.exit_code == 0 and json.loads(retried.stdout)["attempt"] == 1
    refused = runner.invoke(cli_app, ["tasks", "retry", "n001", *common])
    assert refused.exit_code == 1 and "task_not_retryable" in refused.stderr
    archive_dir = tmp_path / "cli-archive"
    archive = ["tasks", "archive", "--older-than-days", "7", "--archive-dir", str(archive_dir), *common]
    off = runner.invoke(cli_app, archive)  # no store named, none enabled: nothing is deleted
    assert off.exit_code == 1 and "task_retention_not_enabled" in off.stderr and not archive_dir.exists()
    assert task_redis.zscore(native.failed_key(prefix), "old") is not None
    archived = runner.invoke(cli_app, [*archive, "--store", "native"])
    assert archived.exit_code == 0, archived.output
    assert json.loads(archived.stdout)["archived"] == 1
    assert [json.loads(x)["task_id"] for f in archive_dir.iterdir() for x in f.read_text().splitlines()] == ["old"]
    down = runner.invoke(
        cli_app, ["tasks", "list", "--db", task_services.settings.database_url, "--redis-url", "redis://127.0.0.1:1/0"]
    )
    assert down.exit_code == 1 and "redis_unavailable" in down.stderr


def test_one_broken_source_does_not_stop_the_sync(task_services: Services, task_redis: redis.Redis) -> None:
    task_redis.set(native.failed_key(task_services.settings.redis_prefix), "not a sorted set")
    # A Celery result-backend meta as a worker with result_extended=True writes it.
    task_redis.set(
        "celery-task-meta-c-1",
        json.dumps(
            {
                "status": "FAILURE",
                "task_id": "c-1",
                "name": "codebase.embed",
                "args": [],
                "retries": 0,
                "kwargs": {"client_id": "c9", "codebase_path": "/p/9"},
                "queue": "celery",
                "result": {"exc_type": "TimeoutError", "exc_message": ["upstream timed out"], "exc_module": "builtins"},
                "traceback": 'Traceback (most recent call last):\n  File "x.py", line 1, in f\n    g()\n'
                "TimeoutError: upstream timed out\n",
                "date_done": "2026-01-02T03:04:05.678901+00:00",
            }
        ),
    )
    result = sync.sync_failed_tasks(task_services)
    assert (result.found, result.accepted) == (1, 1)
    assert len(result.errors) == 1 and result.errors[0].startswith("native:") and "WRONGTYPE" in result.errors[0]
    with task_services.engine.connect() as conn:
        row = conn.execute(select(events)).one()
    assert row.id == f"task:celery:c-1:0:{_ms('2026-01-02T03:04:05.678Z')}"
    assert (row.source, row.operation, row.error_message) == (
        "celery",
        "codebase.embed",
        "TimeoutError: upstream timed out",
    )
    assert json.loads(row.attributes)["client_id"] == "c9"
