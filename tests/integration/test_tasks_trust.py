"""Trusting the task connectors: nothing deleted or requeued unless enabled per store, one retryable decision,
RQ's own retry state, deadlines that keep a hung Redis from starving the server, the envelope on every method."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import select

from faultlens.api.app import create_app
from faultlens.connectors import celery_adapter, native, registry, retention, sync
from faultlens.connectors.deadline import _limiters as redis_limiters
from faultlens.connectors.deadline import redis_deadline
from faultlens.errors import RedisUnavailable, RetentionNotEnabled, RetryPolicyError
from faultlens.services import Services
from faultlens.store.tables import events
from faultlens.timeutil import now_ms
from tests.integration import task_jobs
from tests.integration.task_support import (
    build_task_services,
    free_port,
    run_rq_burst,
    task_client,
    task_redis,
    task_services,
    wait_for,
)

__all__ = ["task_client", "task_redis", "task_services"]  # fixtures, imported for pytest

DAY = 86_400_000
OLD_ISO = "2026-10-20T00:00:00+00:00"
PATH = "/codebase-embedder/api/v1/tasks/failed"


def _sample(svc: Services, name: str, **labels: str) -> float:
    value = svc.metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not registered"
    return value


def _old_stores(r: redis.Redis, svc: Services) -> str:
    """One failed task 47+ days old in each store: a Celery meta, a native task, an RQ job; returns the RQ id."""
    r.set(
        "celery-task-meta-old",
        json.dumps(
            {
                "status": "FAILURE",
                "result": {"exc_type": "TimeoutError", "exc_message": ["timed out"], "exc_module": "builtins"},
                "traceback": None,
                "date_done": OLD_ISO,
                "task_id": "old",
                "name": "tasks.embed",
                "args": [],
                "kwargs": {},
            }
        ),
    )
    native.record_failure(
        r,
        prefix=svc.settings.redis_prefix,
        task_id="old-native",
        task_type="embedding",
        exception_type="TimeoutError",
        error_message="timed out",
        failed_at_ms=now_ms() - 47 * DAY,
    )
    job = Queue("old", connection=r).enqueue(task_jobs.clean_codebase, {"client_id": "c"})
    run_rq_burst(["old"])
    r.hset(job.key, "ended_at", "2026-10-20T00:00:00.000000Z")
    return job.id


def test_periodic_round_deletes_nothing_by_default(
    task_services: Services, task_redis: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rq_id = _old_stores(task_redis, task_services)
    prefix = task_services.settings.redis_prefix
    assert retention.enabled_stores(task_services.settings) == ()

    result = sync.run_round(task_services)  # what `faultlens serve` runs every task_sync_interval_s

    assert (result.found, result.archived, result.auto_retried) == (3, 0, 0)
    assert task_redis.exists("celery-task-meta-old") == 1
    assert task_redis.zscore(native.failed_key(prefix), "old-native") is not None
    assert task_redis.zcard(native.pending_key(prefix)) == 0  # nothing requeued either
    assert rq_id in Queue("old", connection=task_redis).failed_job_registry.get_job_ids()
    assert not task_services.settings.task_archive_dir.exists()
    for store, action in [(s, a) for s in ("native", "rq", "celery") for a in ("archived", "deleted")] + [
        ("native", "retry_log_trimmed")
    ]:
        assert _sample(task_services, "faultlens_tasks_retention_items_total", store=store, action=action) == 0
    with pytest.raises(RetentionNotEnabled):
        retention.archive_failed_tasks(task_services)

    # The operator turns retention on for RQ only: RQ's old job goes (archived first), the others stay.
    enabled = build_task_services(
        task_services.settings.database_url,
        tmp_path,
        redis_prefix=prefix,
        task_retention_rq=True,
        task_archive_dir=tmp_path / "rq-archive",
    )
    try:
        with caplog.at_level(logging.INFO, logger="faultlens.connectors"):
            result = sync.run_round(enabled)
        assert result.archived == 1
        assert rq_id not in Queue("old", connection=task_redis).failed_job_registry.get_job_ids()
        assert not Job.exists(rq_id, connection=task_redis)
        assert task_redis.exists("celery-task-meta-old") == 1
        assert task_redis.zscore(native.failed_key(prefix), "old-native") is not None
        lines = [json.loads(x) for f in (tmp_path / "rq-archive").iterdir() for x in f.read_text().splitlines()]
        assert [line["task_id"] for line in lines] == [rq_id]
        counts = {
            (store, action): _sample(enabled, "faultlens_tasks_retention_items_total", store=store, action=action)
            for store in ("native", "rq", "celery")
            for action in ("archived", "deleted")
        }
        assert counts == {
            ("native", "archived"): 0,
            ("native", "deleted"): 0,
            ("rq", "archived"): 1,
            ("rq", "deleted"): 1,
            ("celery", "archived"): 0,
            ("celery", "deleted"): 0,
        }
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "retention" in r.getMessage()]
        assert [r.getMessage() for r in warnings] == [
            "task retention (rq): archived 1 and deleted 1 failed task(s) that failed over 30 day(s) ago"
        ]
    finally:
        enabled.engine.dispose()


def test_auto_retry_only_for_the_stores_named(sqlite_url: str, tmp_path: Path, task_redis: redis.Redis) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("auto_retry: [rq]\ndefault: {max_retries: 2, base_delay_s: 0, jitter: 0}\n")
    svc = build_task_services(sqlite_url, tmp_path, retry_policy_file=policy)
    prefix = svc.settings.redis_prefix
    try:
        native.record_failure(
            task_redis, prefix=prefix, task_id="due", task_type="fast", exception_type="TimeoutError", error_message="x"
        )
        assert sync.run_round(svc).auto_retried == 0  # native is not named
        assert task_redis.zrange(native.failed_key(prefix), 0, -1) == [b"due"]

        policy.write_text("auto_retry: [native]\ndefault: {max_retries: 2, base_delay_s: 0, jitter: 0}\n")
        stamp = time.time() + 5  # the file is re-read when its mtime changes; coarse clocks need a push
        os.utime(policy, (stamp, stamp))
        assert sync.run_round(svc).auto_retried == 1
        assert task_redis.zrange(native.pending_key(prefix), 0, -1) == [b"due"]
        assert _sample(svc, "faultlens_tasks_requeued_total", store="native", trigger="auto") == 1
        assert _sample(svc, "faultlens_tasks_requeued_total", store="native", trigger="manual") == 0

        policy.write_text("auto_retry: [native, meteor]\n")
        os.utime(policy, (stamp + 5, stamp + 5))
        with pytest.raises(RetryPolicyError):
            sync.run_round(svc)
    finally:
        svc.engine.dispose()
        registry.close_clients()


# --- one retryable decision ----------------------------------------------------------------------

KINDS_OF_FAILURE = [
    ("oom", "MemoryError", "Cannot allocate memory: out of memory"),
    ("oom-killed", "", "Worker exited: Killed (OOMKilled)"),
    ("disk", "OSError", "[Errno 28] No space left on device"),
    ("timeout", "TimeoutError", "timed out after 30s"),
    ("refused", "ConnectionRefusedError", "[Errno 111] Connection refused"),
    ("denied", "PermissionError", "[Errno 13] Permission denied: '/p'"),
    ("data", "ValueError", "invalid manifest: expected a JSON object"),
    ("rate", "", "429 Too Many Requests: rate limit exceeded"),
]


def test_api_retryable_is_the_stored_events(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    prefix = task_services.settings.redis_prefix
    for task_id, exc, message in KINDS_OF_FAILURE:
        native.record_failure(
            task_redis,
            prefix=prefix,
            task_id=task_id,
            task_type="embedding",
            exception_type=exc or None,
            error_message=message,
            source="codebase-embedder",
        )
    items = {i["task_id"]: i for i in task_client.get("/api/v1/tasks/failed").json()["items"]}
    assert set(items) == {k for k, _, _ in KINDS_OF_FAILURE}
    assert sync.sync_failed_tasks(task_services).accepted == len(KINDS_OF_FAILURE)
    with task_services.engine.connect() as conn:
        rows = {r.job_id: r for r in conn.execute(select(events))}
    for task_id, item in items.items():
        row = rows[task_id]
        shown = (item["retryable"], item["classifier_category"], item["failure_kind"], item["status"])
        assert shown == (row.retryable, row.category, row.failure_kind, row.status), task_id
        assert item["retry_allowed"] is (item["status"] == "failure")
    # The classification decides; the policy follows it (OOM and disk full do not clear on retry).
    assert items["oom"]["retryable"] is False and items["oom"]["not_retryable_reason"] == "failure_not_retryable"
    assert items["disk"]["retryable"] is False and items["disk"]["status"] == "dead_letter"
    assert items["timeout"]["retryable"] is True and items["timeout"]["status"] == "failure"
    assert items["refused"]["retryable"] is True
    refused = task_client.post("/api/v1/tasks/native:oom/retry")
    assert refused.status_code == 409 and refused.json()["error"]["details"]["reason"] == "failure_not_retryable"


# --- RQ's own retry state --------------------------------------------------------------------------


def test_rq_retry_max_is_read_from_rq(task_client: TestClient, task_redis: redis.Redis) -> None:
    queue = Queue("retried", connection=task_redis)
    counted = queue.enqueue(task_jobs.clean_codebase, {"client_id": "c1"}, retry=Retry(max=2))
    hook = "faultlens.connectors.rq_adapter.count_runs"
    run_rq_burst(["retried"], extra=["--exception-handler", hook])  # 1 run + 2 retries: 3 runs
    items = {i["task_id"]: i for i in task_client.get("/api/v1/tasks/failed").json()["items"]}
    assert Job.fetch(counted.id, connection=task_redis).retries_left == 0
    c = items[counted.id]
    assert (c["retry_count"], c["max_retries"], c["not_retryable_reason"]) == (2, 2, "failure_not_retryable")
    envelope = {t["TaskId"]: t for t in task_client.get(PATH).json()["Data"]["Tasks"]}
    assert envelope[counted.id]["RetryCount"] == 2

    # Without the hook RQ keeps neither the max nor the runs: shown as exhausted, with no invented limit.
    bare = queue.enqueue(task_jobs.parse_manifest, "c3", codebasePath="/p", retry=Retry(max=2))
    timeout = queue.enqueue(task_jobs.embed_codebase, "c4", "/p", 5, job_timeout=1, retry=Retry(max=1))
    run_rq_burst(["retried"])
    items = {i["task_id"]: i for i in task_client.get("/api/v1/tasks/failed").json()["items"]}
    assert (items[bare.id]["retry_count"], items[bare.id]["max_retries"]) == (0, None)
    t = items[timeout.id]
    assert (t["retryable"], t["retry_allowed"], t["max_retries"]) == (True, False, None)
    assert t["not_retryable_reason"] == "retries_exhausted"


# --- deadlines -------------------------------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP port that completes connections (listen backlog) but never reads nor answers: a hung Redis."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(512)
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    registry.close_clients()


class _Server:
    def __init__(self, svc: Services) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(svc), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="uvicorn to start")
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def _redis_saturated(*, waiting: int) -> bool:
    """Whether the server's Redis limiter (connectors/deadline.py, one per event loop) lends every slot and at least
    `waiting` calls wait for one."""
    return any(
        lim.borrowed_tokens >= lim.total_tokens and lim.statistics().tasks_waiting >= waiting
        for lim in list(redis_limiters.values())
    )


def test_hung_redis_starves_nothing(sqlite_url: str, tmp_path: Path, black_hole: str) -> None:
    deadline = 2.0
    svc = build_task_services(sqlite_url, tmp_path, redis_url=black_hole, redis_timeout_s=deadline)

    async def timed(client: httpx.AsyncClient, method: str, path: str) -> tuple[float, int, Any]:
        started = time.monotonic()
        r = await client.request(method, path)
        return time.monotonic() - started, r.status_code, r.json()

    async def scenario(base: str) -> tuple[list[Any], list[Any]]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            paths = ["/api/v1/tasks/failed", PATH, "/api/v1/tasks/native:x/retry"]
            calls = [
                asyncio.create_task(timed(client, "POST" if "retry" in p else "GET", p))
                for i in range(60)
                for p in [paths[i % 3]]
            ]
            # Measure once the server holds every Redis slot and calls queue behind them (its own limiter, read in
            # this process): the unrelated routes must then answer at once. A fixed sleep measured the server's
            # start of those 60 requests instead, which on a loaded machine can itself take over a second.
            # 60 calls over the server's few slots, each held up to `deadline`: saturated for many seconds once they
            # arrive, however long a loaded machine takes to deliver them.
            until = time.monotonic() + 5 * deadline
            while not _redis_saturated(waiting=20) and time.monotonic() < until:
                await asyncio.sleep(0.01)
            assert _redis_saturated(waiting=1), "the task calls never filled the server's Redis slots"
            others = []
            for _ in range(3):
                others.append(await timed(client, "GET", "/healthz"))
                others.append(await timed(client, "GET", "/api/v1/stats/summary"))
            return list(await asyncio.gather(*calls)), others

    try:
        with _Server(svc) as base:
            task_calls, others = asyncio.run(scenario(base))
    finally:
        svc.engine.dispose()
    assert all(status == 200 for _, status, _ in others), others
    assert max(elapsed for elapsed, _, _ in others) < 1.0, others
    assert len(task_calls) == 60
    for elapsed, status, body in task_calls:
        assert status == 503, body
        assert body.get("error", {}).get("code") == "redis_unavailable" or body.get("Code") == 500, body
        # Within the deadline plus scheduling slack: 60 calls share a pool of 8 Redis threads on 2 cores beside the
        # suite's other workers, and have taken up to 3.5 s beyond the deadline on a loaded machine (with no deadline
        # they hang until the client gives up at 30 s).
        assert elapsed < deadline + 5.0, elapsed


def test_deadline_bounds_a_whole_scan(task_services: Services, task_redis: redis.Redis) -> None:
    """Many commands that each answer in time still stop at the call's total deadline."""
    client = registry.get_redis(task_services.settings)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError), redis_deadline(0.3):
        while True:  # each BLPOP answers (nil) after 50 ms, in time; together they outlast the deadline
            client.blpop([f"fltest:empty:{time.monotonic_ns()}"], timeout=0.05)
    # Stopped near the 0.3 s deadline (without it the loop never ends); the slack is for a machine running the
    # suite's other workers beside it.
    assert time.monotonic() - started < 1.0
    assert client.ping() is True  # outside a deadline the client works as before


def test_sync_thread_round_respects_the_deadline(sqlite_url: str, tmp_path: Path, black_hole: str) -> None:
    svc = build_task_services(sqlite_url, tmp_path, redis_url=black_hole, redis_timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            sync.run_round(svc)
        assert time.monotonic() - started < 2.0  # the 0.5 s deadline, with slack for a busy machine
    finally:
        svc.engine.dispose()


# --- the contract's envelope on every method --------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "POST", "DELETE"])
def test_every_other_method_gets_the_envelope(task_client: TestClient, method: str) -> None:
    r = task_client.request(method, PATH)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "GET"
    assert r.json() == {"Code": 405, "Message": "方法不允许，仅支持GET请求", "Success": False, "Data": None}


def test_celery_meta_left_alone_without_opt_in(task_services: Services, task_redis: redis.Redis) -> None:
    """The issue's repro: an old FAILURE meta survives a sync round with default settings."""
    task_redis.set(
        celery_adapter.META_PREFIX + "old",
        json.dumps({"status": "FAILURE", "result": {"exc_type": "X"}, "date_done": OLD_ISO}),
    )
    sync.run_round(task_services)
    assert task_redis.exists(celery_adapter.META_PREFIX + "old") == 1
