"""The OTLP/HTTP receiver's contract: POST /v1/traces and /v1/logs, answers and errors as the OTLP spec says.

Bodies are protobuf or OTLP JSON (gzip allowed); a success is an Export*ServiceResponse with partial_success
counts, every failure a google.rpc.Status with an ErrorInfo whose reason is faultlens' error code, both in the
request's encoding. These routes are never traced: the receiver's own requests must not become OTLP events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from faultlens.api.bodies import media_type_of, read_body_limited
from faultlens.api.deps import Ingester, ServicesDep
from faultlens.api.errors import request_id_of
from faultlens.errors import NotFound, ReceiverBusy
from faultlens.otlp import decode as otlp_decode
from faultlens.otlp.receiver import ExportOutcome, export_logs, export_traces
from faultlens.services import Services

log = logging.getLogger("faultlens.api.compat")

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
# Not received: its route answers 404 with a Status that says so, instead of a bare "Not Found".
METRICS_PATH = "/v1/metrics"
PATHS = (TRACES_PATH, LOGS_PATH, METRICS_PATH)
# An export refused because the receiver is at its in-flight cap may be retried this soon.
BUSY_RETRY_AFTER_S = 1
# google.rpc.Code for each HTTP status these routes answer (the gRPC/HTTP mapping of google/rpc/code.proto).
_GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    408: 4,  # DEADLINE_EXCEEDED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    499: 1,  # CANCELLED (the client went away; nginx's status)
    503: 14,  # UNAVAILABLE
}
_UNKNOWN = 2
_CLIENT_CLOSED = 499
_INTERNAL = 13
# Carried over from the native error answer: retry hints and the methods a 405 allows.
_KEPT_HEADERS = ("retry-after", "allow")


def response_media_type(request: Request) -> str:
    """The encoding of the answer: protobuf for a protobuf request, OTLP JSON otherwise."""
    media = media_type_of(request)
    return otlp_decode.PROTOBUF if media == otlp_decode.PROTOBUF else otlp_decode.JSON


def _encoded(request: Request, message: Message, status: int, headers: Mapping[str, str] | None = None) -> Response:
    media = response_media_type(request)
    all_headers = {**(headers or {}), "X-Request-ID": request_id_of(request)}
    return Response(otlp_decode.encode(message, media), status_code=status, media_type=media, headers=all_headers)


def status_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error as a google.rpc.Status (api.errors.error_response's signature, so the guard can use it too)."""
    info = error_details_pb2.ErrorInfo(reason=code, domain="faultlens", metadata={"request_id": request_id_of(request)})
    detail = any_pb2.Any()
    detail.Pack(info)
    grpc_code = _GRPC_CODES.get(status, _INTERNAL if status >= 500 else _UNKNOWN)
    body = status_pb2.Status(code=grpc_code, message=message, details=[detail])
    return _encoded(request, body, status, headers)


async def _as_status(request: Request, exc: Exception) -> Response:
    """The app's own answer to `exc` (its handlers decide status, code and Retry-After), as a Status."""
    handlers = request.app.exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    native = await handler(request, exc)
    try:
        error = orjson.loads(native.body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code, message = "internal_error", "an unexpected error occurred; see the server log"
    kept = {k: v for k, v in native.headers.items() if k.lower() in _KEPT_HEADERS}
    if isinstance(exc, ReceiverBusy):
        kept["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    return status_response(request, native.status_code, code, message, headers=kept)


class OtlpRoute(APIRoute):
    """Every failure on the OTLP paths (auth, parameters, body, database, 405) answers as a google.rpc.Status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ClientDisconnect:
                # The exporter closed the connection mid-body: nobody reads this answer, and it is no server error.
                log.info("OTLP export on %s abandoned by the client mid-body", request.url.path)
                return status_response(request, _CLIENT_CLOSED, "client_closed_request", "the client went away")
            except Exception as exc:
                return await _as_status(request, exc)

        return route

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            request = Request(scope, receive)
            allowed = ", ".join(sorted(self.methods))
            response = status_response(
                request,
                405,
                "method_not_allowed",
                f"{scope['method']} is not allowed here; OTLP exports are POSTed",
                headers={"Allow": allowed},
            )
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)


router = APIRouter(tags=["compat: OTLP"], route_class=OtlpRoute)


class _InFlight:
    """Exports running now in this app (one event loop: a plain counter)."""

    def __init__(self) -> None:
        self.count = 0


def _in_flight(request: Request) -> _InFlight:
    state = request.app.state
    gate: _InFlight | None = getattr(state, "otlp_in_flight", None)
    if gate is None:
        gate = _InFlight()
        state.otlp_in_flight = gate
    return gate


async def _export(
    request: Request,
    services: Services,
    run: Callable[[bytes, str], ExportOutcome],
    signal: str,
) -> ExportOutcome:
    """Admit (in-flight cap), read, decode and store one export; the caller shapes the answer."""
    settings = services.settings
    gate = _in_flight(request)
    if gate.count >= settings.otlp_max_inflight:
        raise ReceiverBusy(
            f"the receiver is handling {gate.count} exports already; retry after {BUSY_RETRY_AFTER_S}s",
            details={"retry_after_s": BUSY_RETRY_AFTER_S},
        )
    gate.count += 1
    try:
        body = await read_body_limited(request, settings.max_body_bytes, media_types=otlp_decode.MEDIA_TYPES)
        media = media_type_of(request) or otlp_decode.JSON
        started = time.perf_counter()
        outcome = await run_in_threadpool(run, body, media)
        # Off the event loop too: a due save of a tenant's templates can take a while (services.after_ingest).
        await run_in_threadpool(services.after_export, signal, outcome, time.perf_counter() - started)
        return outcome
    finally:
        gate.count -= 1


@router.post(TRACES_PATH, include_in_schema=False)
async def receive_traces(request: Request, principal: Ingester, services: ServicesDep) -> Response:
    def run(body: bytes, media: str) -> ExportOutcome:
        decoded = otlp_decode.decode_traces(body, media)
        return export_traces(services.pipeline, decoded, tenant=principal.tenant)

    outcome = await _export(request, services, run, "spans")
    answer = ExportTraceServiceResponse()
    if outcome.rejected:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=outcome.rejected, error_message=outcome.message())
        )
    return _encoded(request, answer, 200)


@router.post(LOGS_PATH, include_in_schema=False)
async def receive_logs(request: Request, principal: Ingester, services: ServicesDep) -> Response:
    def run(body: bytes, media: str) -> ExportOutcome:
        decoded = otlp_decode.decode_logs(body, media)
        return export_logs(services.pipeline, decoded, tenant=principal.tenant)

    outcome = await _export(request, services, run, "logs")
    answer = ExportLogsServiceResponse()
    if outcome.rejected:
        answer.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=outcome.rejected, error_message=outcome.message())
        )
    return _encoded(request, answer, 200)


@router.post(METRICS_PATH, include_in_schema=False)
async def refuse_metrics(principal: Ingester) -> Response:
    raise NotFound(
        "faultlens receives traces and logs over OTLP, not metrics: set OTEL_METRICS_EXPORTER=none, or send "
        "metrics to a metrics backend",
        code="otlp_signal_not_received",
    )
