"""Shared by the test_tasks_* files: the owned Redis DB, private redis-servers, services and worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.connectors import registry
from faultlens.services import Services
from tests.conftest import make_services, missing_service

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The Redis DB the task tests own: flushed before and after each test, never db 0.
TASK_DB = int(os.environ.get("FAULTLENS_TEST_TASK_DB", "13"))
SHARED_REDIS = os.environ.get("FAULTLENS_TEST_REDIS", "redis://127.0.0.1:6379")
TASK_REDIS_URL = f"{SHARED_REDIS}/{TASK_DB}"

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


@pytest.fixture
def task_redis() -> Iterator[redis.Redis]:
    """The owned DB of the shared Redis, empty before and after the test."""
    client = redis.Redis.from_url(TASK_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
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


def build_task_services(db_url: str, tmp_path: Path, *, redis_url: str = TASK_REDIS_URL, **settings: Any) -> Services:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_prefix": f"fltest:{uuid.uuid4().hex[:8]}",
        "task_archive_dir": tmp_path / "archive",
        "start_jobs": False,
    }
    values.update(settings)
    return make_services(db_url, **values)


@pytest.fixture
def task_services(sqlite_url: str, tmp_path: Path, task_redis: redis.Redis) -> Iterator[Services]:
    svc = build_task_services(sqlite_url, tmp_path)
    yield svc
    svc.engine.dispose()
    registry.close_clients()


@pytest.fixture
def task_client(task_services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(task_services)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A private redis-server on a free port, for tests that stop, freeze and restart Redis."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing_service("redis-server is not installed")
            raise AssertionError("unreachable")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                assert self.process is not None and self.process.poll() is None, "redis-server exited"
                return False

        wait_for(up, timeout=10, what=f"redis-server on port {self.port}")
        client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        registry.close_clients()


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_rq_burst(
    queues: list[str], *, redis_url: str = TASK_REDIS_URL, timeout: float = 60, extra: Sequence[str] = ()
) -> str:
    """Run a real `rq worker --burst` over the queues until they are empty (`extra`: more worker options)."""
    proc = subprocess.run(
        [
            str(BIN / "rq"),
            "worker",
            "--burst",
            "--url",
            redis_url,
            "--logging_level",
            "WARNING",
            "--disable-job-desc-logging",
            *extra,
            *queues,
        ],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"rq worker failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@dataclass
class CeleryWorker:
    process: subprocess.Popen[str]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finishes the current task
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_celery_worker(tmp_path: Path, *, redis_url: str = TASK_REDIS_URL, queue: str = "celery") -> CeleryWorker:
    """A real Celery worker (solo pool) on the test's Redis DB as broker and result backend."""
    log_path = tmp_path / "celery-worker.log"
    process = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "tests.integration.celery_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
            "-n",
            f"faultlens-test-{uuid.uuid4().hex[:6]}@%h",
            f"--logfile={log_path}",
        ],
        cwd=REPO,
        env=worker_env(FAULTLENS_TEST_CELERY_URL=redis_url),
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return CeleryWorker(process, log_path)
