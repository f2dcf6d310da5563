"""The codebase-embedder failed-task contract: its exact path and {Code, Message, Success, Data} envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from faultlens.api.deps import Reader, ServicesDep
from faultlens.connectors import service
from faultlens.connectors.deadline import run_redis
from faultlens.connectors.task_view import TaskView
from faultlens.errors import FaultlensError, RedisUnavailable, TaskScanFailed

log = logging.getLogger("faultlens.api.compat")

PATH = "/codebase-embedder/api/v1/tasks/failed"
REDIS_DOWN_MESSAGE = "Redis服务不可用，请稍后再试"
SCAN_FAILED_MESSAGE = "查询失败任务失败"
METHOD_NOT_ALLOWED_MESSAGE = "方法不允许，仅支持GET请求"


def envelope(
    code: int, message: str, data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"Code": code, "Message": message, "Success": code == 0, "Data": data}
    return JSONResponse(body, status_code=status, headers=headers)


def error_envelope(exc: FaultlensError) -> JSONResponse:
    """The contract's error bodies: Redis down is HTTP 503 with Code 500, as the seed document shows it."""
    if isinstance(exc, RedisUnavailable):
        return envelope(500, REDIS_DOWN_MESSAGE, None, status=503)
    if isinstance(exc, TaskScanFailed):
        return envelope(500, f"{SCAN_FAILED_MESSAGE}: {exc.message}", None, status=500)
    return envelope(exc.http_status, exc.message, None, status=exc.http_status)


class EnvelopeRoute(APIRoute):
    """Every failure of this contract's routes, dependencies included, answers in its envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except FaultlensError as exc:
                return error_envelope(exc)
            except RequestValidationError as exc:
                names = ", ".join(str(e.get("loc", ("",))[-1]) for e in exc.errors())
                return envelope(400, f"invalid parameter(s): {names}", None, status=400)
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return envelope(500, SCAN_FAILED_MESSAGE, None, status=500)

        return route


class AnyOtherMethodRoute(EnvelopeRoute):
    """Matches every method on its path (TRACE, CONNECT, made-up ones too), so none falls through to the
    router's native 405 body; the GET route is registered first and keeps GET."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.PARTIAL:
            return Match.FULL, child
        return match, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):  # a method no route can list (PROPFIND...): same answer
            await method_not_allowed()(scope, receive, send)
            return
        await super().handle(scope, receive, send)


router = APIRouter(tags=["compat: codebase-embedder"], route_class=EnvelopeRoute)


def _time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_entry(view: TaskView) -> dict[str, Any]:
    t = view.task
    return {
        "TaskId": t.task_id,
        "TaskType": t.task_type,
        "ClientId": t.client_id,
        "CodebasePath": t.codebase_path,
        "StartTime": _time(t.start_ms),
        "FailTime": _time(t.fail_ms),
        "ErrorCode": t.error_code,
        "ErrorMessage": view.error_message,
        "RetryCount": t.retry_count,
        "ProcessedFiles": t.processed_files,
        "ErrorCategory": view.category,
    }


@router.get(PATH, summary="Failed tasks in the codebase-embedder envelope, newest FailTime first")
async def failed_tasks(principal: Reader, services: ServicesDep) -> JSONResponse:
    service.ensure_tenant(services, principal.tenant)

    def data() -> dict[str, Any]:
        views = service.list_failed_tasks(services)
        return {"TotalTasks": len(views), "Tasks": [task_entry(v) for v in views]}

    return envelope(0, "ok", await run_redis(services.settings, data))


def method_not_allowed() -> JSONResponse:
    return envelope(405, METHOD_NOT_ALLOWED_MESSAGE, None, status=405, headers={"Allow": "GET"})


router.add_api_route(
    PATH,
    method_not_allowed,
    methods=["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"],
    include_in_schema=False,
    route_class_override=AnyOtherMethodRoute,
)
