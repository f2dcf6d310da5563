"""Request dependencies: the Services, the caller's tenant and scopes, the query window."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from faultlens import request_context
from faultlens.api.guard import is_loopback
from faultlens.api.security_signals import record_refused_key, record_signal
from faultlens.errors import Forbidden, InvalidRequest, Unauthorized, param_details
from faultlens.services import Services
from faultlens.store import keys
from faultlens.timeutil import Window, resolve_window


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# C0 controls and DEL: no resource name holds one, and Starlette's path patterns end in "$", which also matches
# before a final newline, so /api/v1/events/zz-1%0A would otherwise resolve to the event "zz-1".
_PATH_CONTROLS = frozenset(map(chr, [*range(0x20), 0x7F]))


def nul_guard(codes_by_prefix: Mapping[str, str]) -> Callable[[Request], None]:
    """A dependency refusing, with a 400, NUL characters in any query parameter and any control character in the
    (decoded) path.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep in a query as a 500. Paths under
    a prefix of `codes_by_prefix` answer with that contract's own error code.
    """

    def reject(request: Request) -> None:
        path = request.scope.get("path", "")
        bad: str | None = None
        where, message = "path", ""
        if not _PATH_CONTROLS.isdisjoint(path):
            bad, message = "path", "path must not contain control characters"
        for name, value in request.query_params.multi_items():
            if bad is None and ("\x00" in name or "\x00" in value):
                bad, where = name.replace("\x00", "\\x00"), "query"
                message = f"{bad} must not contain NUL characters"
        if bad is None:
            return
        code = next((c for prefix, c in codes_by_prefix.items() if path.startswith(prefix)), InvalidRequest.code)
        raise InvalidRequest(message, code=code, details=param_details(bad, message, location=where))

    return reject


class _KeysPresent:
    """Caches whether anonymous access is closed (a key exists or has existed), so open mode costs no query per
    request. Only that state is cached, for `anonymous_check_ttl_s`; a presented key is checked every time."""

    def __init__(self) -> None:
        self.closed = True
        self.checked: float | None = None

    def get(self, services: Services) -> bool:
        now = time.monotonic()
        if self.checked is None or now - self.checked >= services.settings.anonymous_check_ttl_s:
            with services.engine.connect() as conn:
                self.closed = not keys.anonymous_allowed(conn)
            self.checked = now
        return self.closed


def _secret_from(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def _anonymous_refusal(request: Request, services: Services) -> str | None:
    """Why an open-mode server refuses this anonymous caller, or None: open mode serves loopback only."""
    settings = services.settings
    if not is_loopback(settings.host):
        return "non_loopback_bind"
    client = request.client.host if request.client else ""
    extra = {n.strip() for n in settings.loopback_client_names.split(",") if n.strip()}
    if not (is_loopback(client) or client in extra):
        return "non_loopback_client"
    # A proxy on this machine connects from loopback on behalf of someone else.
    if any(h in request.headers for h in ("forwarded", "x-forwarded-for", "x-real-ip")):
        return "proxied_request"
    return None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    # Async on purpose: FastAPI runs a sync dependency in a worker thread, and the tenant bound there to the log
    # context (faultlens.request_context) would not reach the endpoint. The key lookup still runs in the pool.
    principal = await run_in_threadpool(_resolve_principal, request, services)
    request_context.bind(tenant_id=principal.tenant)
    # The usage recorder (api/usage.py) counts the request under this tenant once it is answered.
    request.state.faultlens_tenant = principal.tenant
    return principal


def _resolve_principal(request: Request, services: ServicesDep) -> Principal:
    secret = _secret_from(request)
    if secret:
        # Every presented key is looked up, in open mode too: a revoked key is refused at once.
        with services.engine.connect() as conn:
            key = keys.find_key(conn, secret=secret)
            if key is None:
                # Revoked or unknown: a security signal (api/security_signals.py) for the P0 alerts.
                record_refused_key(request, conn, secret=secret, default_tenant=services.settings.default_tenant)
        if key is None:
            raise Unauthorized("the API key is not valid or was revoked")
        return Principal(key.tenant, key.scopes, key.id)
    cache: _KeysPresent = request.app.state.keys_present
    if cache.get(services):
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    reason = _anonymous_refusal(request, services)
    if reason is not None:
        raise Unauthorized(
            "anonymous access is served only to loopback clients of a server bound to loopback; send an API key",
            details={"reason": reason},
        )
    # Open mode: no key was ever created (or an operator re-opened it); one tenant, every scope.
    return Principal(services.settings.default_tenant, frozenset(keys.SCOPES), None)


# FastAPI passes the request to require()'s checks (a refusal is a security signal); a route calling a check
# directly (routes/rules.py, whose scope depends on a parameter) passes none and its refusal is not counted.
NO_REQUEST = cast(Request, None)


def require(scope: str) -> Callable[..., Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)], request: Request = NO_REQUEST) -> Principal:
        if scope not in principal.scopes and "admin" not in principal.scopes:
            if request is not NO_REQUEST:
                record_signal(request, principal.tenant, "scope_refused")
            raise Forbidden(f"this API key lacks the {scope!r} scope", details={"required_scope": scope})
        return principal

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Ingester = Annotated[Principal, Depends(require("ingest"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def require_operator(
    principal: Annotated[Principal, Depends(get_principal)], request: Request = NO_REQUEST
) -> Principal:
    """The operator scope changes what every tenant gets (the global rule pack); admin never implies it."""
    if "operator" not in principal.scopes:
        if request is not NO_REQUEST:
            record_signal(request, principal.tenant, "scope_refused")
        raise Forbidden(
            "this API key lacks the 'operator' scope (granted only by `faultlens keys create --scope operator`)",
            details={"required_scope": "operator"},
        )
    return principal


Operator = Annotated[Principal, Depends(require_operator)]


def get_window(
    window: Annotated[str | None, Query(description="1h|6h|24h|7d|14d|30d|90d (default 24h)")] = None,
    since: Annotated[str | None, Query(description="RFC 3339 start (inclusive)")] = None,
    until: Annotated[str | None, Query(description="RFC 3339 end (exclusive)")] = None,
) -> Window:
    label, start, end = resolve_window(window, since, until)
    return Window(label, start, end)


WindowDep = Annotated[Window, Depends(get_window)]
