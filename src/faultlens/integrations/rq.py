"""RQ callbacks and a worker exception handler that report each job outcome to faultlens, with the enqueuing trace.

    from faultlens.integrations import rq as faultlens_rq
    faultlens_rq.enqueue(queue, send_invoice, order_id)     # the current trace in job.meta, callbacks attached
    queue.enqueue(f, on_failure=Callback(faultlens_rq.on_failure))     # or by hand (rq.Callback)
    rq worker --exception-handler faultlens.integrations.rq.exception_handler      # or on the worker

RQ runs each job in a forked work horse that leaves with os._exit (no atexit): every report is flushed with a
short deadline before the callback returns.
"""

from __future__ import annotations

import time
from datetime import datetime
from types import TracebackType
from typing import Any

from rq import Callback
from rq.job import Job

from faultlens.integrations import context
from faultlens.integrations.outcomes import error_fields, outcome, source_name
from faultlens.integrations.sender import Sender, default_sender

# job.meta keys: the enqueuing trace (its W3C headers) and the retries the job was enqueued with.
TRACE_META = "faultlens_trace"
RETRIES_META = "faultlens_max_retries"
FLUSH_S = 2.0

_config: dict[str, Any] = {"sender": None, "source": None}


def configure(*, sender: Sender | None = None, source: str | None = None) -> None:
    """The Sender (default: from FAULTLENS_URL / FAULTLENS_API_KEY) and source name the reports use.

    Call it where the worker imports it (the jobs' module, or a custom worker class); the source defaults to
    FAULTLENS_SOURCE, OTEL_SERVICE_NAME, "rq" (the first set).
    """
    _config["sender"] = sender
    _config["source"] = source


def enqueue(queue: Any, f: Any, *args: Any, **kwargs: Any) -> Job:
    """`queue.enqueue(f, ...)` with the current trace context in job.meta and the faultlens callbacks attached."""
    meta = dict(kwargs.pop("meta", None) or {})
    trace = context.current_trace()
    if trace is not None:
        meta[TRACE_META] = trace.headers()
    retry = kwargs.get("retry")
    if retry is not None:
        meta[RETRIES_META] = int(retry.max)
    kwargs.setdefault("on_success", Callback(on_success))
    kwargs.setdefault("on_failure", Callback(on_failure))
    job: Job = queue.enqueue(f, *args, meta=meta, **kwargs)
    return job


def carried_trace(job: Job) -> context.TraceContext | None:
    """A child span of the trace the job was enqueued under (None when it carried none)."""
    headers = (job.meta or {}).get(TRACE_META)
    if not isinstance(headers, dict):
        return None
    return context.from_headers({str(k).lower(): str(v) for k, v in headers.items()})


class TracedJob(Job):
    """`rq worker --job-class faultlens.integrations.rq.TracedJob`: the job runs inside its enqueuing trace."""

    def perform(self) -> Any:
        with context.trace_scope(carried_trace(self) or context.current_trace()):
            return super().perform()


def on_success(job: Job, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    """RQ success callback (`on_success=`)."""
    _report(job, "success", None)


def on_failure(
    job: Job,
    connection: Any,
    exc_type: type[BaseException] | None = None,
    exc_value: BaseException | None = None,
    tb: TracebackType | None = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    """RQ failure callback (`on_failure=`)."""
    _report(job, _failure_status(job), exc_value)


def exception_handler(
    job: Job, exc_type: type[BaseException] | None, exc_value: BaseException | None, tb: TracebackType | None
) -> bool:
    """RQ worker exception handler (`Worker(exception_handlers=[...])`); lets the next handler run."""
    _report(job, _failure_status(job), exc_value)
    return True


def _failure_status(job: Job) -> str:
    """retry while rq will run the job again; dead_letter when its Retry ran out; failure without a Retry."""
    left = job.retries_left
    if left is None:
        return "failure"
    meta = job.meta if isinstance(job.meta, dict) else {}
    if RETRIES_META not in meta:
        # Reported at the first failure, so `retries_left` is still the Retry's max; rq saves meta when it requeues.
        meta[RETRIES_META] = int(left)
    return "retry" if left > 0 else "dead_letter"


def _attempts(job: Job) -> tuple[int, int]:
    """(this attempt, max attempts), 1-based."""
    left = job.retries_left
    retries = (job.meta or {}).get(RETRIES_META)
    if left is None or not isinstance(retries, int):
        return 1, 1 if left is None else int(left) + 1
    return max(1, retries - int(left) + 1), retries + 1


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _report(job: Job, status: str, exc: BaseException | None) -> None:
    """Never raises into rq: a reporting failure must not change what happens to the job."""
    try:
        sender = _config["sender"] or default_sender()
        if sender is None:
            return
        attempt, max_attempts = _attempts(job)
        started = _epoch(job.started_at)
        ended = _epoch(job.ended_at) or time.time()
        with context.trace_scope(carried_trace(job) or context.current_trace()):
            event = outcome(
                kind="rq",
                job_id=job.id,
                attempt=attempt,
                max_attempts=max_attempts,
                source=source_name(_config["source"], "rq"),
                operation=job.func_name,
                item_type="job",
                status=status,
                started_s=started if started is not None and started <= ended else None,
                ended_s=ended,
                attributes={"queue": job.origin},
                **error_fields(exc),
            )
        sender.submit(event)
        # The work horse leaves with os._exit right after: send now, within a short deadline.
        sender.flush(FLUSH_S)
    except Exception:  # the job's outcome is rq's business, not ours
        pass
