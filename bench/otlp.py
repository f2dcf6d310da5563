"""OTLP ingest speed and the ASGI middleware's cost, each against its baseline in the same run.

Usage: .venv/bin/python bench/otlp.py [--spans 100000] [--batch 512] [--clients 2] [--requests 3000] [--rounds 2]

1. Spans/s through POST /v1/traces (OTLP protobuf, --batch spans per request, one ResourceSpans per service as
   exporters send them) against the native JSON ingest (POST /api/v1/events) of the same outcomes, in the same
   batch size. The outcomes are demo events; each becomes a SERVER span (a CONSUMER span for tasks and jobs) with
   http.route, the HTTP method and status code, the span status and its message, and the same outcome as a native
   event with the same fields. Each arm posts into a fresh SQLite database of its own server; the arms alternate
   for --rounds rounds and the best of each is kept. Ratio = OTLP / native (goal >= 0.8).
2. p50 latency of a trivial FastAPI endpoint (`GET /ping/{n}`) served by uvicorn with FaultlensMiddleware (sending
   to a running faultlens) against the same app without it, --requests sequential keep-alive requests per arm,
   arms alternating in blocks of 500. Overhead = p50 with / p50 without - 1 (goal < 5%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine, start_server
from faultlens import demo


def _nanos(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1_000_000) * 1000


def _kv(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def outcomes(count: int) -> list[dict[str, Any]]:
    """Demo outcomes with the ids a span carries (a trace id and a span id each)."""
    out = []
    for i, raw in enumerate(demo.generate(count, days=1, seed=13)):
        raw["span_id"] = f"{i + 1:016x}"
        raw["id"] = f"otel.span:{raw['trace_id']}:{raw['span_id']}"
        raw.pop("attributes", None)  # not on the OTLP allow-list: both arms carry the same fields
        out.append(raw)
    return out


def span_of(raw: dict[str, Any]) -> Span:
    end = _nanos(raw["occurred_at"])
    failed = raw["status"] != "success"
    attributes = [_kv("http.route", raw["operation"]), _kv("http.request.method", "POST")]
    if raw.get("http_status"):
        attributes.append(_kv("http.response.status_code", raw["http_status"]))
    kind = Span.SPAN_KIND_SERVER if raw["item_type"] == "request" else Span.SPAN_KIND_CONSUMER
    status = (
        Status(code=Status.STATUS_CODE_ERROR, message=raw.get("error_message") or "")
        if failed
        else Status(code=Status.STATUS_CODE_OK)
    )
    return Span(
        trace_id=bytes.fromhex(raw["trace_id"]),
        span_id=bytes.fromhex(raw["span_id"]),
        name=raw["operation"],
        kind=kind,
        start_time_unix_nano=end - int(raw["duration_ms"] * 1_000_000),
        end_time_unix_nano=end,
        attributes=attributes,
        status=status,
    )


def otlp_batches(raws: list[dict[str, Any]], batch: int) -> list[bytes]:
    bodies = []
    for i in range(0, len(raws), batch):
        by_resource: dict[tuple[str, str, str], list[Span]] = defaultdict(list)
        for raw in raws[i : i + batch]:
            by_resource[(raw["source"], raw["release"], raw["environment"])].append(span_of(raw))
        request = ExportTraceServiceRequest()
        for (source, release, environment), spans in by_resource.items():
            rs = ResourceSpans()
            rs.resource.attributes.extend(
                [
                    _kv("service.name", source),
                    _kv("service.version", release),
                    _kv("deployment.environment.name", environment),
                ]
            )
            rs.scope_spans.add().spans.extend(spans)
            request.resource_spans.append(rs)
        bodies.append(request.SerializeToString())
    return bodies


def native_batches(raws: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [orjson.dumps(raws[i : i + batch]) for i in range(0, len(raws), batch)]


def _accepted(path: str, r: httpx.Response, size: int) -> int:
    r.raise_for_status()
    if path == "/api/v1/events":
        return int(r.json()["accepted"])
    # An OTLP answer counts rejections only; an empty partial_success means all were taken.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse.FromString(r.content)
    return size - int(answer.partial_success.rejected_spans)


def ingest_rate(workdir: Path, path: str, media: str, bodies: list[bytes], sizes: list[int], clients: int) -> float:
    """Spans (events) stored per second, bodies POSTed by `clients` senders into a fresh server and database."""
    db = workdir / f"{path.strip('/').replace('/', '_')}-{time.monotonic_ns()}.db"
    port = free_port()
    proc = start_server(port, {"FAULTLENS_DATABASE_URL": f"sqlite:///{db}", "FAULTLENS_START_JOBS": "false"})
    headers = {"content-type": media}
    base = f"http://127.0.0.1:{port}"
    work = list(zip(bodies, sizes, strict=True))

    def send(share: list[tuple[bytes, int]]) -> int:
        with httpx.Client(base_url=base, timeout=120) as client:
            return sum(_accepted(path, client.post(path, content=b, headers=headers), n) for b, n in share)

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            stored = sum(pool.map(send, [work[i::clients] for i in range(clients)]))
        elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(10)
    if stored != sum(sizes):
        raise SystemExit(f"{path}: stored {stored} of {sum(sizes)}")
    return stored / elapsed


def middleware_p50s(requests: int) -> tuple[float, float, dict[str, Any]]:
    """p50 (ms) of GET /ping/{n} without and with FaultlensMiddleware, arms alternating in blocks."""
    with tempfile.TemporaryDirectory() as tmp:
        fl_port = free_port()
        faultlens = start_server(
            fl_port, {"FAULTLENS_DATABASE_URL": f"sqlite:///{Path(tmp) / 'mw.db'}", "FAULTLENS_START_JOBS": "false"}
        )
        ports = {"plain": free_port(), "middleware": free_port()}
        apps = {
            name: start_server(
                port,
                {"FAULTLENS_URL": f"http://127.0.0.1:{fl_port}", "BENCH_MIDDLEWARE": "1" if name != "plain" else ""},
                app="_ping_app:create",
                cwd=str(Path(__file__).resolve().parent),
            )
            for name, port in ports.items()
        }
        times: dict[str, list[float]] = {"plain": [], "middleware": []}
        clients = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for name, port in ports.items()}
        try:
            for client in clients.values():  # warm-up
                for n in range(200):
                    client.get(f"/ping/{n}").raise_for_status()
            block = 500
            done = 0
            while done < requests:
                order = ["plain", "middleware"] if (done // block) % 2 == 0 else ["middleware", "plain"]
                for name in order:
                    client = clients[name]
                    for n in range(block):
                        started = time.perf_counter()
                        client.get(f"/ping/{n}").raise_for_status()
                        times[name].append((time.perf_counter() - started) * 1000)
                done += block
            stats = clients["middleware"].get("/sender-stats").json()
        finally:
            for client in clients.values():
                client.close()
            for proc in (*apps.values(), faultlens):
                proc.terminate()
                proc.wait(10)
    return statistics.median(times["plain"]), statistics.median(times["middleware"]), stats


def best(label: str, runs: list[Callable[[], float]], rounds: int) -> list[float]:
    results: list[list[float]] = [[] for _ in runs]
    for r in range(rounds):
        order = list(range(len(runs))) if r % 2 == 0 else list(reversed(range(len(runs))))
        for i in order:
            results[i].append(runs[i]())
    print(f"{label}: " + "; ".join(", ".join(f"{v:,.0f}" for v in values) for values in results))
    return [max(values) for values in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3000, help="requests per arm of the middleware test")
    parser.add_argument("--skip-middleware", action="store_true")
    args = parser.parse_args()
    raws = outcomes(args.spans)
    otlp = otlp_batches(raws, args.batch)
    native = native_batches(raws, args.batch)
    sizes = [min(args.batch, len(raws) - i) for i in range(0, len(raws), args.batch)]
    print(f"machine: {machine()}")
    print(f"spans: {args.spans}, batch: {args.batch}, concurrent senders: {args.clients}, rounds: {args.rounds}")
    print(
        f"bytes per batch: OTLP protobuf {sum(map(len, otlp)) / len(otlp):,.0f}, native JSON "
        f"{sum(map(len, native)) / len(native):,.0f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        otlp_rate, native_rate = best(
            "spans/s per round (OTLP; native)",
            [
                lambda: ingest_rate(work, "/v1/traces", "application/x-protobuf", otlp, sizes, args.clients),
                lambda: ingest_rate(work, "/api/v1/events", "application/json", native, sizes, args.clients),
            ],
            args.rounds,
        )
    print(f"OTLP   POST /v1/traces (protobuf) : {otlp_rate:10,.0f} spans/s (best)")
    print(f"native POST /api/v1/events (JSON) : {native_rate:10,.0f} events/s (best)")
    print(f"ratio OTLP/native                 : {otlp_rate / native_rate:.2f}  (goal >= 0.80)")
    if args.skip_middleware:
        return
    plain, with_mw, stats = middleware_p50s(args.requests)
    print(f"GET /ping p50 without middleware  : {plain:.3f} ms ({args.requests} requests)")
    print(f"GET /ping p50 with FaultlensMiddleware: {with_mw:.3f} ms; sender {stats}")
    print(f"middleware overhead (p50)         : {(with_mw / plain - 1) * 100:+.1f}%  (goal < 5%)")


if __name__ == "__main__":
    os.environ.setdefault("FAULTLENS_LOG_LEVEL", "warning")
    main()
