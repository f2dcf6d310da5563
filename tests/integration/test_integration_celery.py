"""faultlens.integrations.celery in a real Celery worker (solo pool) reporting to a real faultlens over HTTP."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from faultlens.integrations.context import TraceContext, trace_scope
from tests.integration.task_support import BIN, REPO, CeleryWorker
from tests.integration.worker_support import Receiver, integrations_db, owned_redis, receiver

__all__ = ["receiver"]  # a fixture, imported for pytest

DB = integrations_db("CELERY", 11)
TRACE = TraceContext("5d1f0c7e9a2b4c6d8e0f1a2b3c4d5e6f", "1a2b3c4d5e6f7a8b", None, "req-checkout-17", "order-4411")


@pytest.fixture(scope="module")
def celery_redis() -> Iterator[redis.Redis]:
    yield from owned_redis(DB)


@pytest.fixture(scope="module")
def app(celery_redis: redis.Redis) -> Iterator[Any]:
    from tests.integration import integration_celery_app as module

    url = f"redis://127.0.0.1:6379/{DB}"
    module.app.conf.broker_url = url
    module.app.conf.result_backend = url
    yield module.app
    module.app.close()


@pytest.fixture(scope="module")
def worker(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, celery_redis: redis.Redis
) -> Iterator[CeleryWorker]:
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = receiver.worker_env(FAULTLENS_TEST_INTEGRATIONS_CELERY_URL=f"redis://127.0.0.1:6379/{DB}")
    process = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "tests.integration.integration_celery_app",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
            "-n",
            f"faultlens-integration-{uuid.uuid4().hex[:6]}@%h",
            f"--logfile={log_path}",
        ],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    w = CeleryWorker(process, log_path)
    try:
        yield w
    finally:
        w.stop()


def _one(receiver: Receiver, task_id: str, count: int = 1) -> list[dict[str, Any]]:
    return receiver.wait_events(task_id, count)


def test_success_carries_the_enqueuing_trace_and_a_duration(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    with trace_scope(TRACE):
        result = app.send_task("billing.charge", args=[21])
    assert result.get(timeout=20) == 42
    [event] = _one(receiver, result.id)
    assert event["id"] == f"celery:{result.id}:1"
    assert (event["status"], event["item_type"], event["source"], event["operation"]) == (
        "success",
        "task",
        "billing-worker",
        "billing.charge",
    )
    assert (event["trace_id"], event["request_id"], event["correlation_id"]) == (
        TRACE.trace_id,
        "req-checkout-17",
        "order-4411",
    )
    assert event["span_id"] not in (None, TRACE.span_id)  # the task is its own span of the request's trace
    assert event["failure_class"] == "none"
    assert event["duration_ms"] is not None and 0 <= event["duration_ms"] < 10_000
    assert event["attempt"] == 1 and event["max_attempts"] == 4  # Celery's default max_retries is 3


def test_a_failure_is_classified_with_its_exception(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    with trace_scope(TRACE):
        task_id = app.send_task("billing.fetch_rates", args=["ecb"]).id
    [event] = _one(receiver, task_id)
    assert (event["status"], event["operation"], event["error_code"]) == (
        "failure",
        "billing.fetch_rates",
        "TimeoutError",
    )
    assert event["error_message"].startswith("TimeoutError: rates provider ecb did not answer within 30s")
    assert "Traceback" in event["error_message"]  # the traceback follows, for fingerprints and people
    assert event["trace_id"] == TRACE.trace_id
    assert (event["failure_class"], event["retryable"]) == ("service_failure", True)


def test_retries_then_dead_letter_each_stored_once(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    with trace_scope(TRACE):
        task_id = app.send_task("billing.reconcile", args=["b-9"]).id
    events = _one(receiver, task_id, 3)
    assert [(e["status"], e["attempt"], e["max_attempts"]) for e in events] == [
        ("retry", 1, 3),
        ("retry", 2, 3),
        ("dead_letter", 3, 3),
    ]
    assert {e["trace_id"] for e in events} == {TRACE.trace_id}  # the retries were published inside the trace
    assert {e["error_code"] for e in events} == {"ConnectionError"}
    assert events[-1]["failure_class"] == "service_failure"
    assert len([e for e in receiver.events() if e["job_id"] == task_id]) == 3


def test_an_expired_task_is_cancelled(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    with trace_scope(TRACE):
        task_id = app.send_task("billing.charge", args=[1], expires=datetime.now(UTC) - timedelta(seconds=5)).id
    [event] = _one(receiver, task_id)
    assert (event["status"], event["error_code"]) == ("cancelled", "celery.TaskExpired")
    assert event["attributes"]["expired"] is True and event["attributes"]["terminated"] is False
    assert event["trace_id"] == TRACE.trace_id
    assert event["failure_class"] == "client_abort"


def test_a_revoked_task_is_cancelled(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    assert app.send_task("billing.charge", args=[0]).get(timeout=20) == 0  # the worker is up and listening
    with trace_scope(TRACE):
        task_id = app.send_task("billing.charge", args=[3], countdown=3).id
    app.control.revoke(task_id)
    [event] = _one(receiver, task_id)
    assert (event["status"], event["error_code"], event["operation"]) == (
        "cancelled",
        "celery.TaskRevoked",
        "billing.charge",
    )
    assert event["attributes"]["expired"] is False
    assert event["trace_id"] == TRACE.trace_id
    assert event["failure_class"] == "client_abort"


def test_an_unknown_task_is_dead_lettered(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    task_id = app.send_task("billing.no_such_task", args=[1]).id
    [event] = _one(receiver, task_id)
    assert (event["status"], event["operation"], event["error_code"]) == (
        "dead_letter",
        "billing.no_such_task",
        "celery.exceptions.NotRegistered",
    )
    assert event["trace_id"] is None


def test_a_signal_delivered_twice_is_stored_once(receiver: Receiver, app: Any, worker: CeleryWorker) -> None:
    """The same outcome submitted again (a re-delivered message, a second handler) keeps one row."""
    from faultlens.integrations.outcomes import outcome
    from faultlens.integrations.sender import Sender

    result = app.send_task("billing.charge", args=[2])
    assert result.get(timeout=20) == 4
    [first] = _one(receiver, result.id)
    sender = Sender(receiver.url, receiver.ingest_key, flush_interval_s=0.01)
    again = outcome(
        kind="celery", job_id=result.id, attempt=1, source="billing-worker", operation="x", status="failure"
    )
    assert sender.submit(again) and sender.flush(10)
    sender.close(5)
    assert sender.stats()["sent"] == 1  # accepted by ingest as a duplicate, not stored again
    stored = [e for e in receiver.events() if e["job_id"] == result.id]
    assert [(e["id"], e["status"]) for e in stored] == [(first["id"], "success")]
