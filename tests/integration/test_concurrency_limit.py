"""Bursts: the per-replica request cap over a real server (held requests fill it, one more answers 503 at once,
probes pass) and the PostgreSQL pool sized by settings (exhausted: 503, counted as db_pool_timeout)."""

from __future__ import annotations

import http.client
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.services import Services
from tests.conftest import make_services
from tests.helpers import event
from tests.live_server import LiveServer


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[tuple[Services, LiveServer]]:
    services = make_services(
        f"sqlite:///{tmp_path / 'capped.db'}", start_jobs=False, max_concurrent_requests=2, busy_retry_after_s=3
    )
    with LiveServer(create_app(services)) as server:
        yield services, server
    services.engine.dispose()


class HeldIngest:
    """An ingest POST whose headers and first body bytes are sent, the rest held back: it keeps its place."""

    def __init__(self, port: int) -> None:
        self.body = orjson.dumps([event(id=uuid.uuid4().hex)])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = (
            "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + self.body[:5])

    def finish(self) -> tuple[int, dict[str, object]]:
        self.sock.sendall(self.body[5:])
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        status, payload = response.status, orjson.loads(response.read())
        self.sock.close()
        return status, payload


def get(port: int, path: str) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), time.monotonic() - started
    finally:
        conn.close()


def shed_count(services: Services) -> float:
    value = services.metrics.registry.get_sample_value("faultlens_http_requests_shed_total")
    return value or 0.0


def test_past_the_cap_a_request_answers_503_at_once_and_probes_still_answer(
    capped: tuple[Services, LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faultlens.access")
    services, server = capped
    port = server.port
    assert get(port, "/api/v1/events")[0] == 200
    held = [HeldIngest(port), HeldIngest(port)]
    # The two held requests take their places as soon as their headers are parsed; poll until the cap shows.
    deadline = time.monotonic() + 10
    while True:
        status, headers, body, elapsed = get(port, "/api/v1/events")
        if status == 503 or time.monotonic() > deadline:
            break
    assert status == 503, body
    assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    assert headers["retry-after"] == "3"
    payload = orjson.loads(body)
    assert set(payload) == {"error", "request_id", "correlation_id", "trace_id"}
    assert payload["error"]["code"] == "server_busy"
    assert payload["error"]["details"] == {"max_concurrent_requests": 2, "retry_after_s": 3}
    # Inside the request ids: the refusal names the same request id in its header and its body.
    assert headers["x-request-id"] == payload["request_id"] and payload["correlation_id"]

    # Inside the access log: the refusal has its line, with its request id and error code.
    # The line is written once the answer is sent: wait for it.
    def logged() -> bool:
        return any(
            r.name == "faultlens.access"
            and r.__dict__.get("status") == 503
            and r.__dict__.get("request_id") == payload["request_id"]
            and r.__dict__.get("error_code") == "server_busy"
            for r in list(caplog.records)
        )

    deadline = time.monotonic() + 5
    while not logged():
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    assert shed_count(services) >= 1

    # Probes and scrapes are exempt: a busy replica still looks alive and ready, and can be seen busy.
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200
    status, _, scrape, _ = get(port, "/metrics")
    assert status == 200 and b"faultlens_http_requests_shed_total" in scrape

    # A further write is refused before its body is read: the OTLP receiver answers in its own contract.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/traces", body=b"{}", headers={"Content-Type": "application/json"})
    otlp = conn.getresponse()
    assert otlp.status == 503 and otlp.getheader("Retry-After") == "3"
    assert orjson.loads(otlp.read())["details"][0]["reason"] == "server_busy"
    conn.close()
    shed = shed_count(services)
    assert shed >= 2

    # Once the held requests finish, their places are free again: new requests are admitted.
    for request in held:
        status, result = request.finish()
        assert status == 200 and result["accepted"] == 1, result
    status, _, body, _ = get(port, "/api/v1/events?window=24h")
    assert status == 200, body
    assert len(orjson.loads(body)["items"]) == 2
    assert shed_count(services) == shed


def test_zero_means_no_cap(tmp_path: Path) -> None:
    services = make_services(f"sqlite:///{tmp_path / 'open.db'}", start_jobs=False, max_concurrent_requests=0)
    with LiveServer(create_app(services)) as server:
        held = [HeldIngest(server.port) for _ in range(3)]
        assert get(server.port, "/api/v1/events")[0] == 200
        assert all(request.finish()[0] == 200 for request in held)
    assert shed_count(services) == 0
    services.engine.dispose()


def test_the_pool_is_sized_by_settings_and_an_exhausted_pool_answers_503(postgres_url: str) -> None:
    services = make_services(
        postgres_url, start_jobs=False, database_pool_size=1, database_max_overflow=0, database_pool_timeout_s=0.3
    )
    pool = services.engine.pool
    assert (pool.size(), pool._max_overflow) == (1, 0)  # type: ignore[attr-defined]
    metric = "faultlens_database_errors_total"
    with TestClient(create_app(services)) as client:
        assert client.get("/api/v1/events").status_code == 200
        with services.engine.connect():  # the pool's one connection, held
            started = time.monotonic()
            r = client.get("/api/v1/events")
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable", r.text
            assert r.headers["retry-after"] == "5" and time.monotonic() - started < 3
        assert services.metrics.registry.get_sample_value(metric, {"reason": "db_pool_timeout"}) == 1
        assert client.get("/api/v1/events").status_code == 200
    services.engine.dispose()
