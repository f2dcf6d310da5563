"""The one error body: {"error": {"code", "message", "details"}, "request_id"} for every failure."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faultlens.errors import FaultlensError

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


def error_body(request: Request, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}, "request_id": request_id_of(request)}


def error_response(request: Request, status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    headers = {"X-Request-ID": request_id_of(request)}
    return JSONResponse(error_body(request, code, message, details), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"param": loc[-1] if loc else None, "location": loc[0] if loc else None, "message": err.get("msg")})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the one body."""

    @app.exception_handler(FaultlensError)
    async def _faultlens(request: Request, exc: FaultlensError) -> JSONResponse:
        return error_response(request, exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        names = ", ".join(str(d["param"]) for d in details if d["param"])
        return error_response(request, 400, "invalid_request", f"invalid parameter(s): {names}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "an unexpected error occurred; see the server log")
