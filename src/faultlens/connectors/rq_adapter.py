"""The RQ adapter: failed job registries of every queue, read and requeued through rq's own API."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import redis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from faultlens.connectors.base import (
    RQ,
    FailedTask,
    RetryRecord,
    as_int,
    client_and_codebase,
    datetime_ms,
    last_exception,
    processed_files_of,
    short_type,
)
from faultlens.errors import TaskNotFound

log = logging.getLogger("faultlens.connectors.rq")

# Requeues through faultlens are counted in the job's meta. RQ itself keeps `number_of_retries` (jobs that
# return Retry) and `retries_left` (Retry(max=n) on exceptions), but neither n nor how many runs raised;
# the count_runs exception handler records those two in the meta.
RETRIES_META = "faultlens_retries"
RUNS_META = "faultlens_runs"
RETRY_MAX_META = "faultlens_retry_max"
_BATCH = 500


def count_runs(job: Job, *exc_info: Any) -> bool:
    """An RQ exception handler: `rq worker --exception-handler faultlens.connectors.rq_adapter.count_runs`.

    Counts the runs of a job that raised and, at its first failure, keeps its Retry max (RQ calls exception
    handlers before it decrements retries_left). Returns True so RQ's own failure handling still runs.
    """
    meta = job.meta if isinstance(job.meta, dict) else {}
    runs = as_int(meta.get(RUNS_META)) + 1
    meta[RUNS_META] = runs
    if runs == 1 and job.retries_left is not None:
        meta[RETRY_MAX_META] = job.retries_left
    job.meta = meta
    job.save_meta()  # type: ignore[no-untyped-call]
    return True


def retry_state(job: Job, meta: Mapping[str, Any]) -> tuple[int, int | None, bool]:
    """(retries done, the retry limit or None when RQ did not keep it, whether RQ's own retries are used up).

    Retries done = runs that raised after the first (count_runs) + retries of jobs returning Retry
    (number_of_retries); without count_runs, requeues through faultlens stand in for the runs.
    """
    returned = job.number_of_retries or 0
    if RUNS_META in meta:
        done = max(0, as_int(meta.get(RUNS_META)) - 1) + returned
    else:
        done = returned + as_int(meta.get(RETRIES_META))
    limit = as_int(meta[RETRY_MAX_META]) if RETRY_MAX_META in meta else None
    exhausted = job.retries_left is not None and job.retries_left <= 0
    return done, limit, exhausted


class RQAdapter:
    """Every queue in `rq:queues`, each queue's FailedJobRegistry, each job's latest failed result."""

    kind = RQ

    def __init__(self, r: redis.Redis) -> None:
        self.redis = r

    def _task(self, job: Job, queue: str) -> FailedTask:
        func_name, args, kwargs = "", (), {}
        try:
            func_name = job.func_name or ""
            args, kwargs = tuple(job.args), dict(job.kwargs)
        except Exception:  # a job pickled with classes this process cannot import
            log.debug("rq job %s: arguments do not deserialize here", job.id, exc_info=True)
            func_name = func_name or (job.description or "")
        meta: Mapping[str, Any] = job.meta if isinstance(job.meta, dict) else {}
        result = job.latest_result()
        exc_string = (result.exc_string if result is not None else None) or ""
        exc_type, message = last_exception(exc_string)
        client, codebase = client_and_codebase(args, kwargs)
        retries, max_retries, exhausted = retry_state(job, meta)
        ended = job.ended_at or (result.created_at if result is not None else None)
        return FailedTask(
            kind=RQ,
            task_id=job.id,
            source=f"rq:{queue}",
            task_type=func_name,
            client_id=client,
            codebase_path=codebase,
            start_ms=datetime_ms(job.started_at) or datetime_ms(job.enqueued_at),
            fail_ms=datetime_ms(ended),
            error_code=short_type(exc_type),
            error_message=f"{short_type(exc_type)}: {message}" if exc_type and message else (message or exc_type),
            exception_type=exc_type,
            traceback=exc_string,
            retry_count=retries,
            max_retries=max_retries,
            retries_exhausted=exhausted,
            processed_files=processed_files_of(meta, kwargs),
            args=args,
            kwargs=kwargs,
            queue=queue,
        )

    def list_failed(self) -> list[FailedTask]:
        out: list[FailedTask] = []
        for queue in Queue.all(connection=self.redis):
            registry = FailedJobRegistry(queue=queue)
            ids = registry.get_job_ids(cleanup=False)
            for i in range(0, len(ids), _BATCH):
                for job in Job.fetch_many(ids[i : i + _BATCH], connection=self.redis):
                    if job is not None:
                        out.append(self._task(job, queue.name))
        return out

    def _fetch_failed(self, task_id: str) -> Job | None:
        try:
            job = Job.fetch(task_id, connection=self.redis)
        except (NoSuchJobError, ValueError):  # ValueError: an id RQ refuses to hold (e.g. non-ASCII) is no job
            return None
        if not job.origin or task_id not in FailedJobRegistry(job.origin, connection=self.redis):
            return None
        return job

    def find_failed(self, task_id: str) -> FailedTask | None:
        job = self._fetch_failed(task_id)
        return None if job is None else self._task(job, job.origin)

    def retry(self, task: FailedTask, *, delay_s: float = 0.0) -> None:
        # RQ's requeue is immediate; the delay of a policy is honoured by when faultlens calls it.
        job = self._fetch_failed(task.task_id)
        if job is None:
            raise TaskNotFound(
                f"RQ job {task.task_id!r} is no longer in a failed job registry", details={"id": task.key}
            )
        count = as_int(job.meta.get(RETRIES_META))
        # Counted before the requeue: once queued, a worker may run (and fail) it before we could write.
        job.meta[RETRIES_META] = count + 1
        job.save_meta()  # type: ignore[no-untyped-call]
        try:
            job.requeue()
        except InvalidJobOperation as exc:
            job.meta[RETRIES_META] = count
            job.save_meta()  # type: ignore[no-untyped-call]
            raise TaskNotFound(
                f"RQ job {task.task_id!r} was requeued or removed meanwhile", details={"id": task.key}
            ) from exc

    def delete(self, task: FailedTask) -> bool:
        registry = FailedJobRegistry(task.queue or "default", connection=self.redis)
        # Only a job still in the failed registry is deleted: one requeued meanwhile is live again.
        if not registry.remove(task.task_id):
            return False
        with contextlib.suppress(NoSuchJobError):
            Job.fetch(task.task_id, connection=self.redis).delete()
        return True

    def list_retries(self) -> list[RetryRecord]:
        return []
