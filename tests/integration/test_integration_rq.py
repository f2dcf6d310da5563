"""faultlens.integrations.rq in a real `rq worker --burst` (each job in a forked work horse) reporting to faultlens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq import Callback, Queue, Retry

from faultlens.integrations import rq as faultlens_rq
from faultlens.integrations.context import TraceContext, trace_scope
from tests.integration import integration_rq_jobs as jobs
from tests.integration.task_support import run_rq_burst
from tests.integration.worker_support import Receiver, integrations_db, owned_redis, receiver

__all__ = ["receiver"]  # a fixture, imported for pytest

DB = integrations_db("RQ", 10)
URL = f"redis://127.0.0.1:6379/{DB}"
TRACE = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", None, "req-pay-3", "order-981")
TRACED = ["--job-class", "faultlens.integrations.rq.TracedJob"]
HANDLER = ["--exception-handler", "faultlens.integrations.rq.exception_handler"]


@pytest.fixture
def rq_redis() -> Iterator[redis.Redis]:
    yield from owned_redis(DB)


@pytest.fixture
def queue(rq_redis: redis.Redis, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Queue:
    # run_rq_burst hands the worker this process's environment: the work horses send where the test reads.
    for name, value in receiver.worker_env().items():
        if name.startswith("FAULTLENS_"):
            monkeypatch.setenv(name, value)
    return Queue("invoices", connection=rq_redis)


def _burst(*extra: str) -> str:
    return run_rq_burst(["invoices"], redis_url=URL, timeout=30, extra=list(extra))


def test_success_runs_and_reports_inside_the_enqueuing_trace(receiver: Receiver, queue: Queue) -> None:
    with trace_scope(TRACE):
        job = faultlens_rq.enqueue(queue, jobs.render_invoice, 77)
        seen = faultlens_rq.enqueue(queue, jobs.seen_trace)
    _burst(*TRACED)
    assert job.latest_result().return_value == "invoice-77.pdf"  # type: ignore[union-attr]
    assert seen.latest_result().return_value == TRACE.trace_id  # type: ignore[union-attr]
    [event] = receiver.wait_events(job.id, 1)
    assert event["id"] == f"rq:{job.id}:1"
    assert (event["status"], event["item_type"], event["source"], event["operation"]) == (
        "success",
        "job",
        "invoice-worker",
        "tests.integration.integration_rq_jobs.render_invoice",
    )
    assert (event["trace_id"], event["request_id"], event["correlation_id"]) == (
        TRACE.trace_id,
        "req-pay-3",
        "order-981",
    )
    assert event["failure_class"] == "none" and event["attributes"]["queue"] == "invoices"
    assert event["duration_ms"] is not None and 0 <= event["duration_ms"] < 10_000
    assert (event["attempt"], event["max_attempts"]) == (1, 1)


def test_retries_then_dead_letter_each_stored_once(receiver: Receiver, queue: Queue) -> None:
    with trace_scope(TRACE):
        job = faultlens_rq.enqueue(queue, jobs.send_invoice, 5, retry=Retry(max=2))
    _burst()
    events = receiver.wait_events(job.id, 3)
    assert [(e["status"], e["attempt"], e["max_attempts"]) for e in events] == [
        ("retry", 1, 3),
        ("retry", 2, 3),
        ("dead_letter", 3, 3),
    ]
    assert {e["error_code"] for e in events} == {"ConnectionRefusedError"}
    assert events[0]["error_message"].startswith("ConnectionRefusedError: smtp.example.com:587 refused")
    assert {e["trace_id"] for e in events} == {TRACE.trace_id}
    assert events[-1]["failure_class"] == "service_failure"
    assert len([e for e in receiver.events() if e["job_id"] == job.id]) == 3


def test_callback_and_worker_handler_report_one_failure(receiver: Receiver, queue: Queue) -> None:
    """A plain queue.enqueue: the failure callback and the worker's exception handler both report; one row."""
    job = queue.enqueue(
        jobs.send_invoice, 6, on_failure=Callback(faultlens_rq.on_failure), on_success=Callback(faultlens_rq.on_success)
    )
    output = _burst(*HANDLER)
    [event] = receiver.wait_events(job.id, 1)
    assert (event["status"], event["attempt"], event["error_code"]) == ("failure", 1, "ConnectionRefusedError")
    assert event["trace_id"] is None  # enqueued outside any trace
    assert "Traceback" in event["error_message"], output
    assert len([e for e in receiver.events() if e["job_id"] == job.id]) == 1


def test_a_job_timeout_is_reported_by_the_worker_handler(receiver: Receiver, queue: Queue) -> None:
    with trace_scope(TRACE):
        job = queue.enqueue(jobs.hang, 10, job_timeout=1, meta={faultlens_rq.TRACE_META: TRACE.headers()})
    _burst(*HANDLER)
    [event] = receiver.wait_events(job.id, 1)
    assert (event["status"], event["error_code"]) == ("failure", "rq.timeouts.JobTimeoutException")
    assert event["trace_id"] == TRACE.trace_id
    assert 900 <= event["duration_ms"] < 10_000
    assert event["failure_class"] == "service_failure"
