"""The native Redis task layout (docs/tasks.md): the helpers a service calls to write it, and its adapter."""

from __future__ import annotations

import traceback as tb_module
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack, cast

import orjson
import redis

from faultlens.connectors.base import (
    NATIVE,
    FailedTask,
    RetryRecord,
    as_int,
    as_text,
    client_and_codebase,
    parse_time_ms,
)
from faultlens.errors import TaskNotFound
from faultlens.timeutil import now_ms

DEFAULT_PREFIX = "faultlens:tasks"
RETRY_LOG_MAXLEN = 10_000

# Statuses a task hash moves through; only `failed` tasks are in the failed index.
PENDING = "pending"
RUNNING = "running"
FAILED = "failed"
RETRYING = "retrying"
SUCCEEDED = "succeeded"


def task_key(prefix: str, task_id: str) -> str:
    return f"{prefix}:task:{task_id}"


def failed_key(prefix: str) -> str:
    return f"{prefix}:failed"


def pending_key(prefix: str) -> str:
    return f"{prefix}:pending"


def retries_key(prefix: str) -> str:
    return f"{prefix}:retries"


def _clean(fields: Mapping[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | dict):
            out[name] = orjson.dumps(value, default=str).decode()
        elif isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, int | str):
            out[name] = value
        else:
            out[name] = str(value)
    return out


class TaskFields(TypedDict, total=False):
    """What describes a task in its hash, beside its id and type; each write may give any of them."""

    client_id: str | None
    codebase_path: str | None
    source: str | None
    args: Sequence[Any] | None
    kwargs: Mapping[str, Any] | None
    max_retries: int | None


def _described(task_id: str, task_type: str, task: TaskFields) -> dict[str, Any]:
    args, kwargs = task.get("args"), task.get("kwargs")
    return {
        "task_id": task_id,
        "task_type": task_type,
        "client_id": task.get("client_id"),
        "codebase_path": task.get("codebase_path"),
        "source": task.get("source"),
        "args": list(args) if args is not None else None,
        "kwargs": dict(kwargs) if kwargs is not None else None,
        "max_retries": task.get("max_retries"),
    }


def record_start(
    r: redis.Redis,
    *,
    task_id: str,
    task_type: str,
    started_at_ms: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    **task: Unpack[TaskFields],
) -> None:
    """A task began (or began again after a retry): status running, start_time set."""
    fields = _clean(
        {
            **_described(task_id, task_type, task),
            "status": RUNNING,
            "start_time": started_at_ms if started_at_ms is not None else now_ms(),
        }
    )
    r.hset(task_key(prefix, task_id), mapping=fields)


def record_failure(
    r: redis.Redis,
    *,
    task_id: str,
    task_type: str,
    error_message: str,
    error_code: str | None = None,
    exception_type: str | None = None,
    retry_count: int | None = None,
    processed_files: int | None = None,
    traceback: str | None = None,
    started_at_ms: int | None = None,
    failed_at_ms: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    **task: Unpack[TaskFields],
) -> int:
    """A task failed: the hash gets the failure, the failed index gets the task; returns the fail time (ms).

    Fields left None keep what the hash already holds (e.g. retry_count after a retry, start_time).
    """
    failed_at = failed_at_ms if failed_at_ms is not None else now_ms()
    fields = _clean(
        {
            **_described(task_id, task_type, task),
            "error_message": error_message,
            "error_code": error_code,
            "exception_type": exception_type,
            "retry_count": retry_count,
            "processed_files": processed_files,
            "traceback": traceback,
            "start_time": started_at_ms,
            "status": FAILED,
            "fail_time": failed_at,
        }
    )
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(task_key(prefix, task_id), mapping=fields)
        pipe.zadd(failed_key(prefix), {task_id: failed_at})
        pipe.zrem(pending_key(prefix), task_id)
        pipe.execute()
    return failed_at


def record_exception(r: redis.Redis, exc: BaseException, *, task_id: str, task_type: str, **fields: Any) -> int:
    """record_failure for a caught exception: its type, message and traceback."""
    text = "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))
    return record_failure(
        r,
        task_id=task_id,
        task_type=task_type,
        error_message=str(exc),
        exception_type=type(exc).__name__,
        traceback=text,
        **fields,
    )


def record_retry(
    r: redis.Redis,
    *,
    task_id: str,
    attempt: int,
    error_message: str | None = None,
    at_ms: int | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    """The service retries a task on its own (attempt n): logged so faultlens sees every attempt."""
    at = at_ms if at_ms is not None else now_ms()
    key = task_key(prefix, task_id)
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"status": RETRYING, "retry_count": attempt})
        pipe.zrem(failed_key(prefix), task_id)
        pipe.xadd(
            retries_key(prefix),
            _clean({"task_id": task_id, "attempt": attempt, "at": at, "error_message": error_message}),
            maxlen=RETRY_LOG_MAXLEN,
            approximate=True,
        )
        pipe.execute()


def record_success(
    r: redis.Redis, *, task_id: str, processed_files: int | None = None, prefix: str = DEFAULT_PREFIX
) -> None:
    """The task succeeded: it leaves the failed and pending sets."""
    fields = _clean({"status": SUCCEEDED, "finish_time": now_ms(), "processed_files": processed_files})
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(task_key(prefix, task_id), mapping=fields)
        pipe.zrem(failed_key(prefix), task_id)
        pipe.zrem(pending_key(prefix), task_id)
        pipe.execute()


# Claim due tasks atomically, so two workers never run the same retry.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', ARGV[3] .. id, 'status', 'running')
end
return ids
"""


def claim_due(r: redis.Redis, *, limit: int = 10, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """For the service's worker: pop the ids of pending tasks whose retry is due (marked running)."""
    ids: list[bytes] = cast(list[bytes], r.eval(_CLAIM, 1, pending_key(prefix), now_ms(), limit, f"{prefix}:task:"))
    return [as_text(i) for i in ids]


# Requeue: only a task still in the failed index moves, so two concurrent retries cannot both win. faultlens
# records its own requeue as a retry event (connectors/retries.record_retry); the retries stream is the service's
# log of the retries it makes itself, so a requeue written there too would be synced as a second retry event.
_RETRY = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'status', 'pending', 'retry_count', ARGV[2], 'due_time', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

_DELETE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
"""


class NativeAdapter:
    """Reads the failed index and task hashes under a prefix; retry moves a task to the pending set."""

    kind = NATIVE

    def __init__(self, r: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = r
        self.prefix = prefix

    def _task(self, task_id: str, score: float | None, raw: Mapping[bytes, bytes]) -> FailedTask:
        h = {as_text(k): as_text(v) for k, v in raw.items()}
        args = _json(h.get("args"), list) or []
        kwargs = _json(h.get("kwargs"), dict) or {}
        client, codebase = client_and_codebase(args, kwargs)
        max_retries = h.get("max_retries", "")
        fail_ms = parse_time_ms(h.get("fail_time"))
        if fail_ms is None and score is not None:
            fail_ms = int(score)
        return FailedTask(
            kind=NATIVE,
            task_id=task_id,
            source=h.get("source") or NATIVE,
            task_type=h.get("task_type", ""),
            client_id=h.get("client_id") or client,
            codebase_path=h.get("codebase_path") or codebase,
            start_ms=parse_time_ms(h.get("start_time")),
            fail_ms=fail_ms,
            error_code=h.get("error_code", ""),
            error_message=h.get("error_message", ""),
            exception_type=h.get("exception_type", ""),
            traceback=h.get("traceback", ""),
            retry_count=max(0, as_int(h.get("retry_count"))),
            max_retries=as_int(max_retries) if max_retries.strip() else None,
            processed_files=max(0, as_int(h.get("processed_files"))),
            args=args,
            kwargs=kwargs,
            queue=h.get("queue", ""),
        )

    def list_failed(self) -> list[FailedTask]:
        out: list[FailedTask] = []
        start, batch = 0, 1000
        while True:
            members = cast(
                list[tuple[bytes, float]],
                self.redis.zrange(failed_key(self.prefix), start, start + batch - 1, withscores=True),
            )
            if not members:
                return out
            with self.redis.pipeline(transaction=False) as pipe:
                for member, _score in members:
                    pipe.hgetall(task_key(self.prefix, as_text(member)))
                hashes = pipe.execute()
            for (member, score), raw in zip(members, hashes, strict=True):
                out.append(self._task(as_text(member), score, raw))
            if len(members) < batch:
                return out
            start += batch

    def find_failed(self, task_id: str) -> FailedTask | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(failed_key(self.prefix), task_id)
            pipe.hgetall(task_key(self.prefix, task_id))
            score, raw = pipe.execute()
        if score is None:
            return None
        return self._task(task_id, score, raw)

    def retry(self, task: FailedTask, *, delay_s: float = 0.0) -> None:
        now = now_ms()
        keys = (failed_key(self.prefix), task_key(self.prefix, task.task_id), pending_key(self.prefix))
        moved = self.redis.eval(_RETRY, len(keys), *keys, task.task_id, task.retry_count + 1, now + int(delay_s * 1000))
        if not moved:
            raise TaskNotFound(f"task {task.key!r} is no longer in the failed index", details={"id": task.key})

    def delete(self, task: FailedTask) -> bool:
        keys = (failed_key(self.prefix), task_key(self.prefix, task.task_id))
        return bool(self.redis.eval(_DELETE, len(keys), *keys, task.task_id))

    def list_retries(self) -> list[RetryRecord]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            self.redis.xrange(retries_key(self.prefix), count=RETRY_LOG_MAXLEN * 2),
        )
        if not entries:
            return []
        ids = sorted({as_text(fields.get(b"task_id")) for _eid, fields in entries})
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hmget(task_key(self.prefix, task_id), ["source", "task_type"])
            meta = dict(zip(ids, pipe.execute(), strict=True))
        out = []
        for entry_id, fields in entries:
            task_id = as_text(fields.get(b"task_id"))
            source, task_type = (as_text(v) for v in meta[task_id])
            out.append(
                RetryRecord(
                    kind=NATIVE,
                    task_id=task_id,
                    source=source or NATIVE,
                    task_type=task_type,
                    attempt=max(0, as_int(fields.get(b"attempt"))),
                    at_ms=parse_time_ms(fields.get(b"at")) or as_int(as_text(entry_id).split("-")[0]),
                    error_message=as_text(fields.get(b"error_message")),
                    marker=as_text(entry_id),
                )
            )
        return out

    def trim_retries(self, older_than_ms: int) -> int:
        """Drop retry log entries older than the cutoff (retention)."""
        return int(self.redis.xtrim(retries_key(self.prefix), minid=f"{older_than_ms}-0", approximate=False))


def _json(value: str | None, kind: type[Any]) -> Any:
    if not value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, kind) else None
