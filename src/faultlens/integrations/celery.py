"""Celery signal handlers: every task outcome becomes a faultlens event, and the enqueuing trace follows the task.

    from faultlens.integrations import celery as faultlens_celery
    faultlens_celery.install(app)          # sends to FAULTLENS_URL with FAULTLENS_API_KEY

`before_task_publish` stamps the publisher's trace context into the message headers; in the worker `task_prerun`
makes it (as a child span) the current context, so the task's events carry the request's trace_id.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import signals
from celery.exceptions import MaxRetriesExceededError

from faultlens.integrations import context
from faultlens.integrations.outcomes import error_fields, outcome, source_name
from faultlens.integrations.sender import Sender, default_sender

# The message header that carries the trace context (its W3C headers as a dict).
HEADER = "faultlens_trace"
_FLUSH_S = 2.0


@dataclass
class _Running:
    started_s: float
    started_mono: float
    token: Any


@dataclass
class CeleryReporter:
    """What install() connected: the sender, the source name and the tasks running in this process."""

    sender: Sender | None
    source: str
    running: dict[str, _Running] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, task_id: str, attempt: int, **fields: Any) -> None:
        sender = self.sender or default_sender()
        if sender is None:
            return
        with self.lock:
            run = self.running.get(task_id)
        if run is not None:
            fields.setdefault("started_s", run.started_s)
            fields.setdefault("duration_ms", (time.monotonic() - run.started_mono) * 1000.0)
        fields.setdefault("item_type", "task")
        sender.submit(outcome(kind="celery", job_id=task_id, attempt=attempt, source=self.source, **fields))

    # -- publishing side -------------------------------------------------------------------------------------

    def before_publish(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        trace = context.current_trace()
        if trace is not None and isinstance(headers, dict):
            headers[HEADER] = trace.headers()

    # -- worker side ------------------------------------------------------------------------------------------

    def prerun(self, task_id: str = "", task: Any = None, **_: Any) -> None:
        carried = _carried(getattr(task, "request", None))
        token = context.set_trace(context.from_headers(carried) if carried else context.child_of(None))
        with self.lock:
            self.running[task_id] = _Running(time.time(), time.monotonic(), token)

    def postrun(self, task_id: str = "", **_: Any) -> None:
        with self.lock:
            run = self.running.pop(task_id, None)
        if run is not None:
            try:
                context.reset_trace(run.token)
            except ValueError:  # set in another context (a pool that switched threads): just clear it
                context.set_trace(None)

    def success(self, sender: Any = None, **_: Any) -> None:
        request = sender.request
        self.submit(
            request.id,
            _attempt(request),
            operation=sender.name,
            status="success",
            max_attempts=_max_attempts(sender),
        )

    def failure(self, sender: Any = None, task_id: str = "", exception: BaseException | None = None, **_: Any) -> None:
        request = sender.request
        status = "dead_letter" if _exhausted(sender, exception) else "failure"
        self.submit(
            task_id or request.id,
            _attempt(request),
            operation=sender.name,
            status=status,
            max_attempts=_max_attempts(sender),
            **error_fields(exception),
        )

    def retry(self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
        exc = reason.exc if getattr(reason, "exc", None) is not None else reason
        self.submit(
            request.id,
            _attempt(request),
            operation=sender.name,
            status="retry",
            max_attempts=_max_attempts(sender),
            **error_fields(exc if isinstance(exc, BaseException) else None),
        )

    def revoked(
        self, sender: Any = None, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
    ) -> None:
        """A revoked task (before or while it ran; expired or terminated) is cancelled, never retried."""
        carried = _carried(request)
        reason = "expired" if expired else ("terminated" if terminated else "revoked")
        with context.trace_scope(context.from_headers(carried) if carried else context.current_trace()):
            self.submit(
                request.id,
                _attempt(request),
                operation=getattr(sender, "name", None) or getattr(request, "task", None),
                status="cancelled",
                error_code=f"celery.Task{reason.capitalize()}",
                error_message=f"task {reason}",
                attributes={"terminated": bool(terminated), "expired": bool(expired)},
            )

    def unroutable(self, message: Any = None, exc: BaseException | None = None, **kw: Any) -> None:
        """task_rejected / task_unknown: the worker dropped a message it cannot run (it is never retried)."""
        headers = getattr(message, "headers", None) or {}
        task_id = str(kw.get("id") or headers.get("id") or "")
        if not task_id:
            return
        name = str(kw.get("name") or headers.get("task") or "") or None
        if "name" in kw:  # task_unknown: exc is the worker's lookup error; what matters is the missing task
            error = {
                "error_code": "celery.exceptions.NotRegistered",
                "error_message": f"NotRegistered: task {name!r} is not registered in the worker",
            }
        else:
            error = error_fields(exc) or {"error_code": "celery.TaskRejected", "error_message": "message rejected"}
        carried = headers.get(HEADER)
        with context.trace_scope(context.from_headers(carried) if isinstance(carried, dict) else None):
            self.submit(
                task_id,
                int(headers.get("retries") or 0) + 1,
                operation=name,
                status="dead_letter",
                **error,
            )

    def flush(self, **_: Any) -> None:
        sender = self.sender or default_sender()
        if sender is not None:
            sender.flush(_FLUSH_S)


def _carried(request: Any) -> dict[str, str] | None:
    """The trace headers a task's message carried (protocol 2 puts custom headers on the request)."""
    value = getattr(request, HEADER, None)
    if value is None:
        headers = getattr(request, "headers", None)
        value = headers.get(HEADER) if isinstance(headers, dict) else None
    return {str(k).lower(): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def _attempt(request: Any) -> int:
    return int(getattr(request, "retries", 0) or 0) + 1


def _max_retries(task: Any) -> int | None:
    override = getattr(task, "override_max_retries", None)
    value = override if override is not None else getattr(task, "max_retries", None)
    return int(value) if value is not None else None


def _max_attempts(task: Any) -> int | None:
    value = _max_retries(task)
    return value + 1 if value is not None else None


def _exhausted(task: Any, exc: BaseException | None) -> bool:
    """The task failed because its retries ran out (Celery raised MaxRetriesExceeded or re-raised the cause)."""
    if isinstance(exc, MaxRetriesExceededError):
        return True
    limit = _max_retries(task)
    retries = int(getattr(task.request, "retries", 0) or 0)
    if limit is None or retries < limit:
        return False
    autoretry = tuple(getattr(task, "autoretry_for", ()) or ())
    return retries > 0 or (bool(autoretry) and isinstance(exc, autoretry))


_installed: CeleryReporter | None = None


def install(app: Any = None, *, sender: Sender | None = None, source: str | None = None) -> CeleryReporter:
    """Connect the handlers (once per process; a second call replaces the sender and source).

    `sender` defaults to the process's Sender from FAULTLENS_URL / FAULTLENS_API_KEY; `source` to
    FAULTLENS_SOURCE, OTEL_SERVICE_NAME, the app's main name, "celery" (the first set).
    """
    global _installed
    name = source_name(source, (getattr(app, "main", None) if app is not None else None) or "celery")
    if _installed is not None:
        _installed.sender, _installed.source = sender, name
        return _installed
    reporter = CeleryReporter(sender, name)
    connections = [
        (signals.before_task_publish, reporter.before_publish),
        (signals.task_prerun, reporter.prerun),
        (signals.task_postrun, reporter.postrun),
        (signals.task_success, reporter.success),
        (signals.task_failure, reporter.failure),
        (signals.task_retry, reporter.retry),
        (signals.task_revoked, reporter.revoked),
        (signals.task_rejected, reporter.unroutable),
        (signals.task_unknown, reporter.unroutable),
        (signals.worker_process_shutdown, reporter.flush),
        (signals.worker_shutdown, reporter.flush),
    ]
    for signal, handler in connections:
        signal.connect(handler, weak=False, dispatch_uid=f"faultlens.{signal.name}")
    _installed = reporter
    return reporter
