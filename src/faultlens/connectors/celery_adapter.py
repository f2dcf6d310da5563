"""The Celery adapter: FAILURE metas of the Redis result backend (SCAN celery-task-meta-*), re-sent via send_task."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import redis

from faultlens.connectors.base import (
    CELERY,
    FailedTask,
    RetryRecord,
    as_int,
    as_text,
    client_and_codebase,
    datetime_ms,
    last_exception,
    processed_files_of,
    short_type,
)
from faultlens.errors import Conflict, TaskNotFound, TaskNotRetryable

log = logging.getLogger("faultlens.connectors.celery")

META_PREFIX = "celery-task-meta-"
# Set on a meta faultlens re-sent, so the RETRY state it writes is not read back as the task's own retry.
RESENT_MARK = "faultlens_resent"
_SCAN_COUNT = 1000
_MGET_BATCH = 500

_apps: dict[tuple[str, float], Any] = {}
_apps_lock = threading.Lock()


def celery_app(broker_url: str, timeout_s: float) -> Any:
    """A producer-only Celery app on the broker the failed task came through; one per URL."""
    key = (broker_url, timeout_s)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            from celery import Celery

            app = Celery("faultlens-retry", broker=broker_url, set_as_current=False)
            app.conf.broker_connection_timeout = timeout_s
            app.conf.broker_connection_retry_on_startup = False
            app.conf.broker_transport_options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
            _apps[key] = app
    return app


def close_apps() -> None:
    with _apps_lock:
        for app in _apps.values():
            app.close()
        _apps.clear()


def _exception_text(meta: Mapping[str, Any]) -> tuple[str, str]:
    """(exception type, message): the traceback's last line first, else the stored exception."""
    traceback = as_text(meta.get("traceback"))
    exc_type, message = last_exception(traceback) if traceback else ("", "")
    if exc_type:
        return exc_type, message
    result = meta.get("result")
    if isinstance(result, Mapping):
        exc_type = as_text(result.get("exc_type"))
        module = as_text(result.get("exc_module"))
        if module and module != "builtins" and exc_type:
            exc_type = f"{module}.{exc_type}"
        raw = result.get("exc_message")
        if isinstance(raw, list | tuple):
            message = as_text(raw[0]) if len(raw) == 1 else " ".join(as_text(a) for a in raw)
        else:
            message = as_text(raw)
    return exc_type, message or traceback.strip()


def _date_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


class CeleryAdapter:
    """Result-backend metas in the configured Redis; task name and args need result_extended=True."""

    kind = CELERY

    def __init__(self, r: redis.Redis, *, broker_url: str, timeout_s: float = 5.0) -> None:
        self.redis = r
        self.broker_url = broker_url
        self.timeout_s = timeout_s

    def _metas(self) -> list[tuple[str, dict[str, Any]]]:
        keys = [as_text(k) for k in self.redis.scan_iter(match=f"{META_PREFIX}*", count=_SCAN_COUNT)]
        out: list[tuple[str, dict[str, Any]]] = []
        for i in range(0, len(keys), _MGET_BATCH):
            chunk = keys[i : i + _MGET_BATCH]
            for key, raw in zip(chunk, self.redis.mget(chunk), strict=True):
                meta = _decode(raw)
                if meta is not None:
                    out.append((key[len(META_PREFIX) :], meta))
        return out

    def _task(self, task_id: str, meta: Mapping[str, Any]) -> FailedTask:
        args_raw, kwargs_raw = meta.get("args"), meta.get("kwargs")
        args = list(args_raw) if isinstance(args_raw, list | tuple) else []
        kwargs = dict(kwargs_raw) if isinstance(kwargs_raw, Mapping) else {}
        exc_type, message = _exception_text(meta)
        client, codebase = client_and_codebase(args, kwargs)
        kind = short_type(exc_type)
        return FailedTask(
            kind=CELERY,
            task_id=task_id,
            source=CELERY,
            task_type=as_text(meta.get("name")),
            client_id=client,
            codebase_path=codebase,
            start_ms=_date_ms(meta.get("date_started")),
            fail_ms=_date_ms(meta.get("date_done")),
            error_code=kind,
            error_message=f"{kind}: {message}" if kind and message else (message or kind),
            exception_type=exc_type,
            traceback=as_text(meta.get("traceback")),
            retry_count=max(0, as_int(meta.get("retries"))),
            processed_files=processed_files_of(kwargs),
            args=args,
            kwargs=kwargs,
            queue=as_text(meta.get("queue")),
        )

    def list_failed(self) -> list[FailedTask]:
        return [self._task(tid, meta) for tid, meta in self._metas() if meta.get("status") == "FAILURE"]

    def _meta(self, task_id: str) -> dict[str, Any] | None:
        return _decode(self.redis.get(META_PREFIX + task_id))

    def find_failed(self, task_id: str) -> FailedTask | None:
        meta = self._meta(task_id)
        if meta is None or meta.get("status") != "FAILURE":
            return None
        return self._task(task_id, meta)

    def retry(self, task: FailedTask, *, delay_s: float = 0.0) -> None:
        key = META_PREFIX + task.task_id
        if not task.task_type:
            raise TaskNotRetryable(
                f"Celery task {task.task_id!r} cannot be re-sent: its result keeps no task name "
                "(configure the workers with result_extended=True)",
                details={"reason": "no_task_name", "id": task.key},
            )
        # Mark the meta before sending: the worker may finish the new run before this call returns,
        # and its SUCCESS must not be overwritten by our RETRY.
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                meta = _decode(pipe.get(key))
                if meta is None or meta.get("status") != "FAILURE":
                    pipe.unwatch()
                    raise TaskNotFound(f"Celery task {task.task_id!r} is no longer failed", details={"id": task.key})
                previous = dict(meta)
                meta.update({"status": "RETRY", "retries": task.retry_count + 1, RESENT_MARK: True})
                pipe.multi()
                pipe.set(key, orjson.dumps(meta), keepttl=True)
                pipe.execute()
        except redis.WatchError as exc:
            raise Conflict(
                f"Celery task {task.task_id!r} changed while it was being retried; try again",
                details={"id": task.key},
                code="task_changed",
            ) from exc
        options: dict[str, Any] = {"task_id": task.task_id, "retries": task.retry_count + 1, "retry": False}
        if task.queue:
            options["queue"] = task.queue
        if delay_s > 0:
            options["countdown"] = delay_s
        try:
            celery_app(self.broker_url, self.timeout_s).send_task(
                task.task_type, args=list(task.args), kwargs=dict(task.kwargs), **options
            )
        except Exception:
            self.redis.set(key, orjson.dumps(previous), keepttl=True)
            raise

    def delete(self, task: FailedTask) -> bool:
        return bool(self.redis.delete(META_PREFIX + task.task_id))

    def list_retries(self) -> list[RetryRecord]:
        """Tasks in RETRY because they called self.retry(): one record per attempt number."""
        out = []
        for task_id, meta in self._metas():
            if meta.get("status") != "RETRY" or meta.get(RESENT_MARK):
                continue
            task = self._task(task_id, meta)
            out.append(
                RetryRecord(
                    kind=CELERY,
                    task_id=task_id,
                    source=CELERY,
                    task_type=task.task_type,
                    attempt=task.retry_count,
                    at_ms=0,
                    error_message=task.error_message,
                    marker=str(task.retry_count),
                )
            )
        return out


def _decode(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # not a JSON meta (another serializer): not ours to read
    return doc if isinstance(doc, dict) else None
