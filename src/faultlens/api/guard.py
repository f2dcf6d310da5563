"""Browser guards for every request: the Host allow-list, same-origin and JSON-only writes, and nosniff."""

from __future__ import annotations

import inspect
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faultlens.api.errors import error_response
from faultlens.settings import LOOPBACK_HOSTS, Settings

# What a write may carry: the ingest formats (JSON, NDJSON in its three names); on the OTLP receiver's paths,
# OTLP's two encodings (protobuf and JSON) only. Browsers send text/plain and form types cross-site without
# asking first; requiring these makes such a write a CORS-preflighted request, which this server never grants.
# Each route still checks the type it parses (415 when it does not read that type).
WRITE_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
)
OTLP_MEDIA_TYPES = ("application/x-protobuf", "application/json")
# The OTLP/HTTP receiver's paths (the OTLP specification's defaults), the only ones admitting protobuf.
OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs", "/v1/metrics"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Liveness and readiness answer whatever the Host, so probes that address a pod by its IP keep working;
# they carry no event data.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


class ErrorBody(Protocol):
    """A contract's error answer with the native code and details (api.errors.error_response's signature)."""

    def __call__(
        self,
        request: Request,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Response: ...


class Envelope(Protocol):
    """A compatibility contract's own error body builder (codebase_embedder.envelope's signature)."""

    def __call__(
        self, code: int, message: str, data: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response: ...


def is_loopback(host: str) -> bool:
    """Whether a host name or address (brackets allowed around IPv6) is this machine's loopback."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header's name (lowercase, IPv6 without brackets) and port; None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 2:
            return None
        name, rest = value[1:end], value[end + 1 :]
    else:
        name, colon, port = value.rpartition(":")
        name, rest = (name, ":" + port) if colon else (value, "")
        if not name or ":" in name:
            return None
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
        return None
    return name.rstrip("."), int(rest[1:]) if rest else None


class HostAllowList:
    """Loopback names always; the bind address when it is a specific one; FAULTLENS_ALLOWED_HOSTS entries
    (exact names, `*.example.com` for subdomains, `*` for any Host)."""

    def __init__(self, settings: Settings) -> None:
        entries = {e.strip().lower().rstrip(".") for e in settings.allowed_hosts.split(",") if e.strip()}
        self.any_host = "*" in entries
        self.suffixes = tuple(e[1:] for e in entries if e.startswith("*.") and len(e) > 2)
        self.names = {e.strip("[]") for e in entries if not e.startswith("*")}
        if settings.host.strip() not in WILDCARD_BINDS:
            self.names.add(settings.host.strip().lower().strip("[]"))

    def allows(self, name: str) -> bool:
        return self.any_host or name in self.names or is_loopback(name) or name.endswith(self.suffixes)


def _same_origin(origin: str, host: tuple[str, int | None]) -> bool:
    """Whether a browser's Origin names the host and port it sent the request to (default ports filled in).

    The scheme is not compared: behind a TLS proxy the page's https origin reaches this server as http, and no
    other site can serve pages from this host and port.
    """
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    default = 443 if parts.scheme == "https" else 80
    name, port = host
    return parts.hostname == name and (origin_port or default) == (port or default)


def request_id_for(headers: Headers) -> str:
    """The caller's X-Request-ID when it is short and printable, else a fresh one (the app's own rule)."""
    incoming = headers.get("x-request-id", "")
    return incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex


class BrowserGuard:
    """Pure ASGI middleware, outermost: refuses a request before any route, dependency or body read runs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        envelopes: Mapping[str, Envelope] | None = None,
        error_bodies: Mapping[str, ErrorBody] | None = None,
    ) -> None:
        self.app = app
        self.hosts = HostAllowList(settings)
        self.envelopes = dict(envelopes or {})
        self.error_bodies = dict(error_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-content-type-options" not in headers:
                    headers.append("X-Content-Type-Options", "nosniff")
            await send(message)

        refusal = self.check(scope)
        if refusal is None:
            await self.app(scope, receive, send_nosniff)
            return
        status, code, message, details = refusal
        response = self.refuse(scope, status, code, message, details)
        await response(scope, receive, send_nosniff)

    def check(self, scope: Scope) -> tuple[int, str, str, dict[str, Any]] | None:
        headers = Headers(scope=scope)
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        raw_host = headers.get("host", "")
        host = split_host(raw_host)
        probe = method in ("GET", "HEAD") and path in PROBE_PATHS
        if not probe and (host is None or not self.hosts.allows(host[0])):
            return (
                400,
                "host_not_allowed",
                "this server does not answer to that Host; list it in FAULTLENS_ALLOWED_HOSTS",
                {"host": raw_host[:255]},
            )
        if method not in WRITE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and (host is None or not _same_origin(origin, host)):
            return (
                403,
                "cross_origin_refused",
                "writes from another origin are refused; call the API from its own origin or without a browser",
                {"origin": origin[:255]},
            )
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        has_body = headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers
        accepted = OTLP_MEDIA_TYPES if path in OTLP_PATHS else WRITE_MEDIA_TYPES
        if media in accepted or (not media and not has_body):
            return None
        return (
            415,
            "unsupported_media_type",
            f"a request body must be sent as one of: {', '.join(accepted)}",
            {"content_type": media, "accepted": list(accepted)},
        )

    def refuse(self, scope: Scope, status: int, code: str, message: str, details: dict[str, Any]) -> Response:
        request = Request(scope)
        # api/context.RequestIds chose it already (same rule), unless the guard runs without it.
        rid = getattr(request.state, "request_id", None) or request_id_for(request.headers)
        request.state.request_id = rid
        path = scope.get("path", "")
        for prefix, body in self.error_bodies.items():
            if path.startswith(prefix):
                return body(request, status, code, message, details)
        for prefix, envelope in self.envelopes.items():
            if path.startswith(prefix):
                return envelope(status, message, None, status=status, headers={"X-Request-ID": rid})
        return error_response(request, status, code, message, details)


def install(
    app: FastAPI,
    settings: Settings,
    *,
    envelopes: Mapping[str, Envelope] | None = None,
    error_bodies: Mapping[str, ErrorBody] | None = None,
) -> None:
    """Add the guard as the outermost user middleware; call after every other middleware and errors.install.

    Starlette answers an unhandled exception from outside all user middleware, so the 500 handler's responses
    get nosniff here rather than from the guard.
    """
    app.add_middleware(BrowserGuard, settings=settings, envelopes=envelopes, error_bodies=error_bodies)
    handler = app.exception_handlers.get(Exception)
    if handler is None:
        return

    async def with_nosniff(request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response: Response = await result if inspect.isawaitable(result) else result
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    app.exception_handlers[Exception] = with_nosniff
