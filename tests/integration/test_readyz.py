"""GET /readyz: the database and Redis each checked within a deadline; 503 with the one error body when not ready."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from faultlens.api.app import create_app
from faultlens.store.db import Deadlines
from tests.conftest import make_services
from tests.integration.test_deadlines import point_at, refused_port

REDIS_URL = "redis://127.0.0.1:6379/0"


def _need_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        from tests.conftest import missing_service

        missing_service(f"Redis at {REDIS_URL} is not reachable: {exc}")


def test_ready_when_the_database_and_redis_answer(db_url: str) -> None:
    _need_redis()
    services = make_services(db_url, start_jobs=False, redis_url=REDIS_URL)
    with TestClient(create_app(services)) as client:
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "ready"
        assert set(body["checks"]) == {"database", "redis"}
        for check in body["checks"].values():
            assert check["status"] == "ok"
            assert isinstance(check["latency_ms"], float) and 0 <= check["latency_ms"] < 2000
        assert client.get("/healthz").json()["status"] == "ok"
    services.engine.dispose()


def test_a_black_holed_redis_makes_readyz_answer_503_within_its_deadline(db_url: str, blackhole_port: int) -> None:
    services = make_services(
        db_url, start_jobs=False, redis_url=f"redis://:s3cret@127.0.0.1:{blackhole_port}/0", readiness_timeout_s=0.5
    )
    with TestClient(create_app(services)) as client:
        started = time.monotonic()
        r = client.get("/readyz")
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert elapsed < 3, f"readyz answered after {elapsed:.1f} s"
        body = r.json()
        assert body["error"]["code"] == "not_ready" and set(body) == {
            "error",
            "request_id",
            "correlation_id",
            "trace_id",
        }
        checks = body["error"]["details"]["checks"]
        assert checks["database"]["status"] == "ok"
        assert checks["redis"]["status"] == "failed" and checks["redis"]["latency_ms"] >= 400
        assert "redis" in body["error"]["message"] and "s3cret" not in r.text
        assert r.headers["retry-after"] == "5"
        assert client.get("/healthz").status_code == 200
    services.engine.dispose()


def test_a_black_holed_database_makes_readyz_answer_503_within_its_deadline(
    postgres_url: str, blackhole_port: int
) -> None:
    _need_redis()
    services = make_services(postgres_url, start_jobs=False, redis_url=REDIS_URL, readiness_timeout_s=0.5)
    with TestClient(create_app(services)) as client:
        point_at(services, str(make_url(postgres_url).set(port=blackhole_port)), Deadlines(connect_s=3))
        for _ in range(3):  # the probe still hanging in its thread is not started again: no pile-up
            started = time.monotonic()
            r = client.get("/readyz")
            elapsed = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert elapsed < 2.5, f"readyz answered after {elapsed:.1f} s"
            checks = r.json()["error"]["details"]["checks"]
            assert checks["database"]["status"] == "failed" and checks["redis"]["status"] == "ok"
        assert client.get("/healthz").status_code == 200
        point_at(services, postgres_url, Deadlines())  # back, so the shutdown can save its state
    services.engine.dispose()


def test_a_refused_database_makes_readyz_say_why(postgres_url: str) -> None:
    services = make_services(postgres_url, start_jobs=False, redis_url="", readiness_timeout_s=2)
    with TestClient(create_app(services)) as client:
        point_at(services, str(make_url(postgres_url).set(port=refused_port())), Deadlines(connect_s=2))
        r = client.get("/readyz")
        assert r.status_code == 503, r.text
        checks = r.json()["error"]["details"]["checks"]
        assert set(checks) == {"database"}  # no task store configured: none checked
        assert checks["database"]["status"] == "failed" and checks["database"]["error"] == "connection refused"
        point_at(services, postgres_url, Deadlines())
    services.engine.dispose()
