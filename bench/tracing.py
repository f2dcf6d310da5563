"""Tracing overhead on ingest: events/s through POST /api/v1/events with tracing off vs on, in the same run.

Usage: .venv/bin/python bench/tracing.py [--events 60000] [--rounds 6] [--batch 1000] [--clients 2]

Two servers on SQLite, started alike except for OTEL_EXPORTER_OTLP_ENDPOINT: "off" has none, "on" exports its spans
over OTLP/HTTP to a local sink (a tiny HTTP server that decodes and counts them). Round i sends the same events to
both, in alternating order, so drift of the machine falls on both arms alike. The ratio is on / off.
A build without tracing code is not measured; instead the "off" arm is shown to install nothing: no middleware,
no instrumented library, no provider (counted in this process, on the same wiring the server uses).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, machine, start_server
from faultlens import demo, request_context, tracing
from faultlens.api.app import create_app
from faultlens.services import build_services
from faultlens.settings import Settings


class Sink:
    """An OTLP/HTTP traces endpoint that only counts what it is sent."""

    def __init__(self) -> None:
        self.spans = 0
        self.requests = 0
        lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
                with lock:
                    sink.spans += count
                    sink.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def installed(app: Any) -> dict[str, int]:
    """What tracing put in place: middleware layers in the app's stack, instrumented libraries, a span-id provider."""
    layers, layer = 0, app.build_middleware_stack()
    while layer is not None:
        layers += isinstance(layer, OpenTelemetryMiddleware)
        layer = getattr(layer, "app", None)
    libraries = [SQLAlchemyInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor()]
    return {
        "otel middleware": layers,
        "instrumented libraries": sum(bool(i.is_instrumented_by_opentelemetry) for i in libraries),
        "app instrumented": int(bool(getattr(app, "_is_instrumented_by_opentelemetry", False))),
        "log span-id provider": int(request_context._span_ids is not None),
    }


def count_installed(workdir: Path) -> tuple[dict[str, int], dict[str, int]]:
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'count.db'}",
        start_jobs=False,
        OTEL_EXPORTER_OTLP_ENDPOINT="",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="",
    )
    services = build_services(settings)
    try:
        assert services.tracing is None
        off = installed(create_app(services))
        services.tracing = tracing.start(settings, exporter=InMemorySpanExporter())
        assert services.tracing is not None
        services.tracing.instrument_engine(services.engine)
        on = installed(create_app(services))
    finally:
        services.close()
    return off, on


def send_round(base: str, batches: list[bytes], clients: int) -> tuple[int, float]:
    headers = {"content-type": "application/json"}

    def send(share: list[bytes]) -> int:
        stored = 0
        with httpx.Client(base_url=base, timeout=120) as client:
            for body in share:
                r = client.post("/api/v1/events", content=body, headers=headers)
                r.raise_for_status()
                stored += r.json()["accepted"]
        return stored

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        stored = sum(pool.map(send, [batches[i::clients] for i in range(clients)]))
    return stored, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent senders (one connection each)")
    args = parser.parse_args()
    raw = list(demo.generate(args.events + args.batch, days=7, seed=11))
    warmup, raw = orjson.dumps(raw[: args.batch]), raw[args.batch :]
    per_round = len(raw) // args.rounds
    rounds = [
        [orjson.dumps(part[i : i + args.batch]) for i in range(0, len(part), args.batch)]
        for part in (raw[r * per_round : (r + 1) * per_round] for r in range(args.rounds))
    ]
    sink = Sink()
    totals = {"off": [0, 0.0], "on": [0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        off_counts, on_counts = count_installed(Path(tmp))
        common = {"FAULTLENS_START_JOBS": "false", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
        envs = {
            "off": {**common, "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
            "on": {**common, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
        }
        procs, bases = {}, {}
        try:
            for arm, env in envs.items():
                port = free_port()
                procs[arm] = start_server(port, {**env, "FAULTLENS_DATABASE_URL": f"sqlite:///{Path(tmp) / arm}.db"})
                bases[arm] = f"http://127.0.0.1:{port}"
                send_round(bases[arm], [warmup], 1)
            for r, batches in enumerate(rounds):
                for arm in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    stored, seconds = send_round(bases[arm], batches, args.clients)
                    totals[arm][0] += stored
                    totals[arm][1] += seconds
                    print(f"round {r + 1} {arm:>3}: {stored / seconds:10,.0f} events/s", flush=True)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(30)  # the "on" server exports its last spans as it stops
            sink.close()
    off = totals["off"][0] / totals["off"][1]
    on = totals["on"][0] / totals["on"][1]
    print(f"machine: {machine()}")
    print(f"events per arm: {totals['off'][0]:,}, batch: {args.batch}, senders: {args.clients}, rounds: {args.rounds}")
    print(f"installed with tracing off: {off_counts}")
    print(f"installed with tracing on : {on_counts}")
    print(f"tracing off : {off:10,.0f} events/s")
    print(f"tracing on  : {on:10,.0f} events/s   ({sink.spans:,} spans in {sink.requests} OTLP exports to the sink)")
    print(f"ratio on/off: {on / off:.2f}")


if __name__ == "__main__":
    main()
