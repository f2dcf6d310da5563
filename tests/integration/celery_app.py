"""The Celery app of the task tests: broker and result backend on the test's Redis DB, result_extended on."""

from __future__ import annotations

import errno
import os
from typing import Any

import redis
from celery import Celery

URL = os.environ.get("FAULTLENS_TEST_CELERY_URL", "redis://127.0.0.1:6379/13")

app = Celery("faultlens_tests", broker=URL, backend=URL)
app.conf.update(
    result_extended=True,  # keeps task name, args and kwargs in the meta, so faultlens can re-send it
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
)


@app.task(name="codebase.embed")
def embed(client_id: str, codebase_path: str) -> None:
    raise TimeoutError("向量嵌入服务超时，请求超过30秒未响应")


@app.task(name="codebase.index")
def index(client_id: str, codebase_path: str) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", codebase_path)


@app.task(name="codebase.clean")
def clean(*, clientId: str, codebasePath: str) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@app.task(name="codebase.parse")
def parse(payload: dict[str, Any]) -> None:
    raise ValueError("数据格式错误: manifest is not valid JSON")


@app.task(name="codebase.flaky")
def flaky(counter_key: str, client_id: str = "") -> str:
    """Times out on its first run, succeeds on the next: the retry test's witness."""
    runs = redis.Redis.from_url(URL).incr(counter_key)
    if runs == 1:
        raise TimeoutError("upstream embedding service timed out after 30s")
    return f"ok after {runs} runs"
