"""The one error body: {"error": {"code", "message", "details"}, "request_id", "correlation_id", "trace_id"}."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from faultlens import request_context
from faultlens.errors import DatabaseUnavailable, FaultlensError, param_problem
from faultlens.store.db import unavailable_reason

log = logging.getLogger("faultlens.api")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


def error_body(request: Request, code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """details is always an object ({} when empty); see faultlens.errors for its documented keys."""
    body = {"code": code, "message": message, "details": dict(details) if details else {}}
    # correlation_id and trace_id: as api/context.RequestIds read them (trace_id null when the request has no trace).
    state = request.scope.get("state") or {}
    return {
        "error": body,
        "request_id": request_id_of(request),
        "correlation_id": state.get("correlation_id"),
        "trace_id": state.get("trace_id"),
    }


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    all_headers = {**(headers or {}), "X-Request-ID": request_id_of(request)}
    correlation_id = getattr(request.state, "correlation_id", None)
    if correlation_id is not None:  # also on the 500s answered outside every middleware
        all_headers["X-Correlation-ID"] = correlation_id
    # The failure's code on every later log line of this request, and on its access log line (read from the
    # request state: Starlette's `@app.middleware` runs the app in a task whose context the access log cannot see).
    request_context.bind(error_code=code)
    request.state.error_code = code
    return JSONResponse(error_body(request, code, message, details), status_code=status, headers=all_headers)


def _validation_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        location = loc[0] if loc else "request"
        # query/path/header: the parameter's name; body: the path inside the document (events.0.source).
        name = ".".join(loc[1:]) if len(loc) > 1 else location
        message = str(err.get("msg", "is not valid"))
        if err.get("type") == "json_invalid":
            # Its loc holds the character offset where parsing stopped, not a field: say where instead.
            name, message = "body", f"{message} at character {loc[1] if len(loc) > 1 else 0}"
        out.append(param_problem(name, message, location=location))
    return out


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path (a 405's Allow header).

    Asked of the router itself, one method at a time, so nested and lazily included routers count too.
    """
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _database_unavailable(request: Request, message: str) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    retry_after = services.settings.database_retry_after_s if services is not None else 5
    headers = {"Retry-After": str(retry_after)}
    return error_response(request, 503, DatabaseUnavailable.code, message, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the one body."""

    @app.exception_handler(FaultlensError)
    async def _faultlens(request: Request, exc: FaultlensError) -> JSONResponse:
        return error_response(request, exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = _validation_problems(exc)
        names = ", ".join(dict.fromkeys(p["name"] for p in problems))
        return error_response(request, 400, "invalid_request", f"invalid parameter(s): {names}", {"params": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        details: dict[str, Any] = {}
        if exc.status_code == 405:
            # Starlette names only the methods of the first route matching the path; a path served by
            # several routes (GET and POST /api/v1/events) allows all of theirs.
            allow = allowed_methods(request)
            headers["Allow"] = ", ".join(allow)
            details = {"allowed_methods": allow}
        return error_response(request, exc.status_code, code, str(exc.detail), details, headers=headers)

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return _database_unavailable(request, exc.message)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Refused, timed out or lost: the client may retry; anything else is a defect and stays a logged 500.
        reason = unavailable_reason(exc)
        if reason is None:
            log.exception(
                "unhandled database error on %s %s",
                request.method,
                request.url.path,
                extra={"error_code": "internal_error"},
            )
            return error_response(request, 500, "internal_error", "an unexpected error occurred; see the server log")
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            reason,
            extra={"error_code": DatabaseUnavailable.code},
        )
        return _database_unavailable(request, f"the database is unavailable: {reason}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception(
            "unhandled error on %s %s", request.method, request.url.path, extra={"error_code": "internal_error"}
        )
        return error_response(request, 500, "internal_error", "an unexpected error occurred; see the server log")
