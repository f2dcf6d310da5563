"""GET /readyz: can this process serve traffic? The database and each configured task store, each within a deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faultlens.api.errors import error_response
from faultlens.jobs.duty import held_leases
from faultlens.services import Services
from faultlens.store.db import unavailable_reason
from faultlens.store.health import ping

router = APIRouter(tags=["health"])

NOT_READY = "not_ready"


class _DatabaseProbe:
    """Runs `SELECT 1` in a thread; at most one in flight, so a hung database cannot pile up threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False

    async def __call__(self, services: Services) -> None:
        with self._lock:
            if self._running:
                raise _CheckFailed("the previous check has not returned yet")
            self._running = True
        await asyncio.to_thread(self._ping, services)

    def _ping(self, services: Services) -> None:
        try:
            ping(services.engine)
        except Exception as exc:  # reported as the check's reason, never raised to the client
            raise _CheckFailed(unavailable_reason(exc) or type(exc).__name__) from None
        finally:
            with self._lock:
                self._running = False


class _CheckFailed(Exception):
    pass


async def _redis_ping(url: str, timeout_s: float) -> None:
    try:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError:
        raise _CheckFailed("FAULTLENS_REDIS_URL is not a Redis URL") from None
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        raise _CheckFailed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    finally:
        await client.aclose()


async def _timed(check: Callable[[], Awaitable[None]], timeout_s: float) -> dict[str, Any]:
    start = time.perf_counter()
    result: dict[str, Any] = {"status": "ok"}
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        result = {"status": "failed", "error": f"no answer within {timeout_s:g} s"}
    except _CheckFailed as exc:
        result = {"status": "failed", "error": str(exc)}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


def _probe_of(request: Request) -> _DatabaseProbe:
    probe = getattr(request.app.state, "database_probe", None)
    if probe is None:
        probe = request.app.state.database_probe = _DatabaseProbe()
    return probe


@router.get(
    "/readyz",
    summary="Readiness: the database and each configured task store answer (503 when one does not)",
    responses={503: {"description": "A dependency did not answer; the one error body, checks under details"}},
)
async def readyz(request: Request) -> Any:
    services: Services = request.app.state.services
    settings = services.settings
    timeout_s = settings.readiness_timeout_s
    probe = _probe_of(request)
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": lambda: probe(services)}
    if settings.redis_url:
        checks["redis"] = lambda: _redis_ping(settings.redis_url, timeout_s)
    results = await asyncio.gather(*(_timed(check, timeout_s) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    failed = [f"{name}: {r['error']}" for name, r in report.items() if r["status"] != "ok"]
    if not failed:
        # Duties that run on one process at a time (jobs/duty.py): whether this process runs them now. Public
        # page: no holder names (host, pid) of other processes.
        leases = {name: {"held_here": held} for name, held in sorted(held_leases().items())}
        return {"status": "ready", "checks": report, "leases": leases}
    return _not_ready(request, "; ".join(failed), report, retry_after=settings.database_retry_after_s)


def _not_ready(request: Request, message: str, report: dict[str, Any], *, retry_after: int) -> JSONResponse:
    return error_response(
        request,
        503,
        NOT_READY,
        f"not ready: {message}",
        {"checks": report},
        headers={"Retry-After": str(retry_after)},
    )
