"""Redis and broker failures as faultlens errors: unreachable -> RedisUnavailable, anything else -> TaskScanFailed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import redis

from faultlens.classify.redact import redact
from faultlens.connectors import registry
from faultlens.errors import FaultlensError, RedisUnavailable, TaskScanFailed

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.connectors")


def _where(services: Services) -> str:
    return redact(services.settings.redis_url)


@contextmanager
def redis_errors(services: Services, action: str) -> Iterator[None]:
    """Redis errors as faultlens errors: unreachable or silent -> RedisUnavailable, anything else -> TaskScanFailed."""
    try:
        yield
    except FaultlensError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(
            f"Redis at {_where(services)} is unavailable while {action}: {exc}", details={"redis": _where(services)}
        ) from exc
    except redis.RedisError as exc:
        raise TaskScanFailed(
            f"{action} failed: {type(exc).__name__}: {exc}", details={"redis": _where(services)}
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("kombu") and "Operational" in type(exc).__name__:
            raise RedisUnavailable(
                f"the Celery broker at {_where(services)} is unavailable: {exc}", details={"redis": _where(services)}
            ) from exc
        log.exception("%s failed", action)
        raise TaskScanFailed(f"{action} failed: {type(exc).__name__}: {exc}") from exc


def check_redis(services: Services) -> None:
    """PING within Settings.redis_timeout_s (the seed document's connection check).

    Any failed PING means Redis is unavailable, also when something that is not Redis answers.
    """
    try:
        registry.get_redis(services.settings).ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"Redis at {_where(services)} is unavailable: {type(exc).__name__}: {exc}",
            details={"redis": _where(services)},
        ) from exc
