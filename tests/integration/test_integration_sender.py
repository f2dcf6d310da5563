"""The integrations' Sender against a real faultlens: batches, the bounded queue, retries, faultlens down, fork."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from faultlens.integrations import sender as sender_module
from faultlens.integrations.context import TraceContext
from faultlens.integrations.events import cut, event
from faultlens.integrations.sender import Sender, sender_from_env
from tests.integration.integration_support import Faultlens, running_faultlens
from tests.live_server import LiveServer


@pytest.fixture
def faultlens(tmp_path: Path) -> Iterator[Faultlens]:
    with running_faultlens(tmp_path) as fl:
        yield fl


def _closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def test_events_arrive_in_batches_with_their_fields(faultlens: Faultlens) -> None:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.05, batch_size=2)
    trace = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None, "req-1", "order-7")
    started = time.time() - 0.25
    sent = [
        event(source="shop", operation="GET /items/{id}", status="success", http_status=200, started_s=started),
        event(source="shop", operation="POST /pay", status="failure", http_status=500, error_message="boom"),
        event(source="shop", operation="job", status="failure", item_type="task", trace=trace, error_message="x"),
    ]
    assert all(sender.submit(e) for e in sent)
    assert sender.flush(10)
    assert sender.stats()["sent"] == 3 and sender.dropped == 0 and sender.failed == 0
    first = faultlens.event(sent[0]["id"])
    assert first["operation"] == "GET /items/{id}" and first["http_status"] == 200
    assert 200 <= first["duration_ms"] < 10_000
    assert faultlens.event(sent[1]["id"])["failure_class"] == "service_failure"
    third = faultlens.event(sent[2]["id"])
    assert (third["trace_id"], third["span_id"], third["request_id"], third["correlation_id"]) == (
        trace.trace_id,
        trace.span_id,
        "req-1",
        "order-7",
    )
    sender.close(5)


def test_a_lone_event_after_an_idle_spell_is_sent_on_the_timer(faultlens: Faultlens) -> None:
    # No flush(), no full batch: the first event into an empty queue must wake the thread's timer.
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=0.2, batch_size=100)
    for round_ in range(2):
        lone = event(source="shop", operation=f"idle {round_}", status="failure", error_message="late")
        assert sender.submit(lone)
        deadline = time.monotonic() + 5
        while sender.stats()["sent"] < round_ + 1:
            assert time.monotonic() < deadline, f"a lone event was not sent on the timer: {sender.stats()}"
            time.sleep(0.05)
        assert faultlens.event(lone["id"])["operation"] == f"idle {round_}"
        time.sleep(0.5)  # idle: the queue is empty and the thread waits
    sender.close(5)


def test_a_bad_key_is_counted_failed_not_retried(faultlens: Faultlens) -> None:
    sender = Sender(faultlens.url, "not-a-key", flush_interval_s=0.01)
    sender.submit(event(source="shop", operation="x", status="success"))
    assert sender.flush(10)
    assert (sender.sent, sender.failed, sender.dropped) == (0, 1, 0)
    assert faultlens.events() == []


def test_the_queue_is_bounded_and_drops_are_counted(faultlens: Faultlens) -> None:
    # A batch is due only after a minute: everything submitted stays queued until the flush.
    sender = Sender(faultlens.url, faultlens.ingest_key, max_queue=5, batch_size=100, flush_interval_s=60)
    started = time.perf_counter()
    accepted = [sender.submit(event(source="bounded", operation="op", status="success")) for _ in range(8)]
    assert time.perf_counter() - started < 1.0
    assert accepted == [True] * 5 + [False] * 3
    assert sender.stats()["dropped"] == 3 and sender.stats()["queued"] == 5
    assert sender.flush(10)
    assert sender.sent == 5
    assert len(faultlens.wait_for(5, source="bounded")) == 5
    sender.close(1)
    assert sender.submit(event(source="bounded", operation="op", status="success")) is False
    assert sender.dropped == 4


def test_503_with_retry_after_is_retried_after_the_wait(faultlens: Faultlens) -> None:
    arrivals: list[float] = []

    async def gate(request: Request) -> Response:
        # Overloaded twice (asking for a 1 s pause), then forwards to the real faultlens.
        arrivals.append(time.monotonic())
        body = await request.body()
        if len(arrivals) <= 2:
            return Response(status_code=503, headers={"Retry-After": "1"})
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{faultlens.url}/api/v1/events",
                content=body,
                headers={"content-type": "application/json", "x-api-key": request.headers["x-api-key"]},
            )
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    with LiveServer(Starlette(routes=[Route("/api/v1/events", gate, methods=["POST"])])) as proxy:
        sender = Sender(proxy.url, faultlens.ingest_key, flush_interval_s=0.01, max_retries=3, backoff_s=0.01)
        item = event(source="retry", operation="op", status="failure", error_message="x")
        assert sender.submit(item)
        assert sender.flush(15)
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] >= 0.95 and arrivals[2] - arrivals[1] >= 0.95
    assert (sender.sent, sender.dropped, sender.failed) == (1, 0, 0)
    assert faultlens.event(item["id"])["source"] == "retry"


def test_faultlens_down_drops_and_counts_without_raising() -> None:
    sender = Sender(f"http://127.0.0.1:{_closed_port()}", "k", flush_interval_s=0.01, max_retries=2, backoff_s=0.01)
    started = time.perf_counter()
    results = [sender.submit(event(source="down", operation="op", status="success")) for _ in range(50)]
    submit_s = time.perf_counter() - started
    assert all(results) and submit_s < 0.5
    assert sender.flush(15)
    assert sender.dropped == 50 and sender.sent == 0
    sender.close(1)


def test_a_forked_child_gets_its_own_thread_and_queue(faultlens: Faultlens) -> None:
    sender = Sender(faultlens.url, faultlens.ingest_key, flush_interval_s=60, batch_size=100)
    parent_item = event(source="fork", operation="parent", status="success")
    assert sender.submit(parent_item)  # started the parent's thread; queued until its flush
    assert sender.stats()["queued"] == 1
    pid = os.fork()
    if pid == 0:  # the child: its queue starts empty, its own thread ships its own event
        code = 1
        try:
            fresh = sender.stats()["queued"] == 0
            ok = sender.submit(event(source="fork", operation="child", status="success"))
            code = 0 if fresh and ok and sender.flush(10) and sender.sent == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sender.flush(10) and sender.sent == 1
    operations = sorted(e["operation"] for e in faultlens.wait_for(2, source="fork"))
    assert operations == ["child", "parent"]  # each once: the child did not re-send the parent's queue


def test_sender_from_env_and_message_cut() -> None:
    assert sender_from_env({}) is None
    made = sender_from_env({"FAULTLENS_URL": "http://127.0.0.1:9/", "FAULTLENS_API_KEY": "secret"})
    assert made is not None and made.url == "http://127.0.0.1:9/api/v1/events" and made.api_key == "secret"
    long = "A" * 10_000 + "B" * 10_000
    short = cut(long, 1000)
    assert len(short) <= 1000 and short.startswith("A") and short.endswith("B")
    assert sender_module.EVENTS_PATH == "/api/v1/events"
