"""The ASGI middleware in a real uvicorn host app, reporting to a real faultlens; a client that really leaves."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from faultlens.integrations.asgi import FaultlensMiddleware
from faultlens.integrations.context import current_trace
from faultlens.integrations.routes import UNMATCHED
from faultlens.integrations.sender import Sender
from tests.integration.integration_support import Faultlens, running_faultlens
from tests.live_server import LiveServer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


def host_app() -> FastAPI:
    app = FastAPI()
    streamed: list[int] = []

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        ctx = current_trace()
        return {"id": item_id, "trace": ctx.headers() if ctx else None}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("ledger write failed: deadlock detected")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(2000):  # about 20 s: far longer than the client stays
                streamed.append(n)
                yield b"x" * 1024 + b"\n"
                await asyncio.sleep(0.01)

        return StreamingResponse(chunks(), media_type="text/plain")

    async def thing(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["n"])

    app.mount("/sub", Starlette(routes=[Route("/things/{n}", thing)]))
    app.state.streamed = streamed
    return app


@pytest.fixture
def faultlens(tmp_path: Path) -> Iterator[Faultlens]:
    with running_faultlens(tmp_path) as fl:
        yield fl


@pytest.fixture
def host(faultlens: Faultlens) -> Iterator[tuple[LiveServer, FaultlensMiddleware, Sender]]:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.05)
    middleware = FaultlensMiddleware(host_app(), sender, source="shop")
    with LiveServer(middleware) as server:
        yield server, middleware, sender
    sender.close(5)


def _by_operation(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["operation"]: item for item in items}


def test_outcomes_carry_the_route_template_status_and_trace(
    faultlens: Faultlens, host: tuple[LiveServer, FaultlensMiddleware, Sender]
) -> None:
    server, middleware, sender = host
    headers = {
        "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01",
        "x-request-id": "req-42",
        "baggage": "tenant=acme,correlation_id=order-9",
    }
    # No keep-alive: uvicorn closes a connection whose app raised (as it does without the middleware).
    with httpx.Client(base_url=server.url, timeout=10, limits=NO_KEEPALIVE) as client:
        answer = client.get("/items/17", headers=headers)
        assert answer.status_code == 200
        assert client.get("/items/18").status_code == 200
        assert client.get("/boom").status_code == 500
        assert client.get("/no/such/page/91").status_code == 404
        assert client.get("/sub/things/5").text == "5"
    # Inside the app the trace context is the caller's trace with a span of this request.
    inner = answer.json()["trace"]
    assert inner["traceparent"].startswith(f"00-{TRACE_ID}-") and PARENT_SPAN not in inner["traceparent"]
    assert (inner["x-request-id"], inner["x-correlation-id"]) == ("req-42", "order-9")

    assert sender.flush(10)
    items = faultlens.wait_for(5, source="shop")
    assert len(items) == 5 and middleware.errors == 0
    ops = _by_operation(items)
    assert set(ops) == {"GET /items/{item_id}", "GET /boom", f"GET {UNMATCHED}", "GET /sub/things/{n}"}
    traced = [i for i in items if i["operation"] == "GET /items/{item_id}" and i["trace_id"] == TRACE_ID]
    assert len(traced) == 1
    assert traced[0]["span_id"] == inner["traceparent"].split("-")[2]
    assert (traced[0]["request_id"], traced[0]["correlation_id"]) == ("req-42", "order-9")
    assert traced[0]["status"] == "success" and traced[0]["http_status"] == 200
    assert traced[0]["duration_ms"] is not None and traced[0]["duration_ms"] >= 0

    boom = faultlens.event(ops["GET /boom"]["id"])
    assert (boom["status"], boom["http_status"], boom["failure_class"]) == ("failure", 500, "service_failure")
    assert boom["error_message"].startswith("RuntimeError: ledger write failed: deadlock detected")
    assert "Traceback (most recent call last)" in boom["error_message"]
    missing = ops[f"GET {UNMATCHED}"]
    assert (missing["http_status"], missing["failure_class"]) == (404, "client_failure")
    assert ops["GET /sub/things/{n}"]["http_status"] == 200


def test_a_client_closing_its_socket_mid_stream_is_a_client_abort(
    faultlens: Faultlens, host: tuple[LiveServer, FaultlensMiddleware, Sender]
) -> None:
    server, middleware, _ = host
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    received = b""
    while received.count(b"\n") < 20:  # the headers and a few chunks of the body
        part = sock.recv(65536)
        assert part, "the server closed first"
        received += part
    assert received.startswith(b"HTTP/1.1 200 OK")
    sock.close()  # really gone, mid-response

    items = faultlens.wait_for(1, source="shop", operation="GET /stream")
    assert len(items) == 1, items
    abort = faultlens.event(items[0]["id"])
    assert (abort["status"], abort["http_status"]) == ("cancelled", 499)
    assert abort["failure_class"] == "client_abort" and abort["category"] == "client_abort"
    assert "client disconnected before the response completed" in abort["error_message"]
    assert middleware.errors == 0


def test_faultlens_down_the_host_answers_at_full_speed_and_counts_drops(blackhole_port: int) -> None:
    # faultlens hangs (a socket that never accepts): the sender's one batch waits on it, the queue fills.
    sender = Sender(
        f"http://127.0.0.1:{blackhole_port}", "key", max_queue=10, batch_size=5, flush_interval_s=0.01, timeout_s=3
    )
    middleware = FaultlensMiddleware(host_app(), sender, source="shop")
    plain = host_app()
    with (
        LiveServer(middleware) as wrapped,
        LiveServer(plain) as bare,
        httpx.Client(timeout=10, limits=NO_KEEPALIVE) as client,
    ):
        for url in (wrapped.url, bare.url):  # warm both
            client.get(f"{url}/items/0")

        def timings(url: str) -> list[float]:
            out = []
            for n in range(200):
                started = time.perf_counter()
                r = client.get(f"{url}/items/{n}" if n % 10 else f"{url}/boom")
                out.append(time.perf_counter() - started)
                assert r.status_code == (200 if n % 10 else 500)
            return sorted(out)

        with_faultlens_down = timings(wrapped.url)
        without = timings(bare.url)
    assert with_faultlens_down[100] < without[100] * 3 + 0.005, (with_faultlens_down[100], without[100])
    assert with_faultlens_down[-1] < 1.0  # no request waited on faultlens
    stats = sender.stats()
    assert stats["dropped"] >= 201 - 10 - 5 and stats["sent"] == 0, stats
    assert middleware.errors == 0 and stats["internal_errors"] == 0


def test_added_with_add_middleware_lifespan_passes_and_405_keeps_the_template(faultlens: Faultlens) -> None:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.05)
    app = host_app()
    app.add_middleware(FaultlensMiddleware, sender=sender, source="added")
    with LiveServer(app, lifespan="on") as server:
        assert httpx.get(f"{server.url}/items/1", timeout=10).status_code == 200
        assert httpx.post(f"{server.url}/items/2", timeout=10).status_code == 405
    assert sender.flush(10)
    got = sorted((i["operation"], i["http_status"]) for i in faultlens.wait_for(2, source="added"))
    assert got == [("GET /items/{item_id}", 200), ("POST /items/{item_id}", 405)]
    sender.close(2)
