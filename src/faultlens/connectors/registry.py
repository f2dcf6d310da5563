"""The Redis clients (one per URL, bounded by Settings.redis_timeout_s and the open deadline) and the adapters."""

from __future__ import annotations

import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from faultlens.connectors.base import Adapter
from faultlens.connectors.deadline import DeadlineRedis, connection_class
from faultlens.settings import Settings

_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def get_redis(settings: Settings) -> redis.Redis:
    """The shared client for Settings.redis_url; created on first use, never connects eagerly.

    Bytes in and out (RQ needs them). One immediate retry on a *connection* error only, so a pooled
    socket that a Redis restart broke is replaced transparently; a timeout is never retried, which
    keeps a Redis that stops answering at one redis_timeout_s per request. Inside a `redis_deadline`
    every socket wait is capped at what is left of it (connectors.deadline).
    """
    key = (settings.redis_url, settings.redis_timeout_s)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = DeadlineRedis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                health_check_interval=0,
                connection_class=connection_class(settings.redis_url),
            )
            _clients[key] = client
    return client


def close_clients() -> None:
    """Drop every cached client (tests, shutdown)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def build_adapters(settings: Settings) -> list[Adapter]:
    """The three sources read from the configured Redis: native layout, RQ registries, Celery metas."""
    from faultlens.connectors.celery_adapter import CeleryAdapter
    from faultlens.connectors.native import NativeAdapter
    from faultlens.connectors.rq_adapter import RQAdapter

    client = get_redis(settings)
    return [
        NativeAdapter(client, prefix=settings.redis_prefix),
        RQAdapter(client),
        CeleryAdapter(client, broker_url=settings.redis_url, timeout_s=settings.redis_timeout_s),
    ]
