"""Request dependencies: the Services, the caller's tenant and scopes, the query window."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from faultlens.errors import Forbidden, InvalidRequest, Unauthorized
from faultlens.services import Services
from faultlens.store import keys
from faultlens.timeutil import resolve_window
from faultlens.triage.stats import Window


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def nul_guard(codes_by_prefix: Mapping[str, str]) -> Callable[[Request], None]:
    """A dependency refusing NUL characters in the path or any query parameter with a 400.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep in a query as a 500. Paths under
    a prefix of `codes_by_prefix` answer with that contract's own error code.
    """

    def reject(request: Request) -> None:
        path = request.scope.get("path", "")
        bad = "path" if "\x00" in path else None
        for name, value in request.query_params.multi_items():
            if bad is None and ("\x00" in name or "\x00" in value):
                bad = name.replace("\x00", "\\x00")
        if bad is None:
            return
        code = next((c for prefix, c in codes_by_prefix.items() if path.startswith(prefix)), InvalidRequest.code)
        raise InvalidRequest(f"{bad} must not contain NUL characters", code=code, details={"param": bad})

    return reject


class _KeysPresent:
    """Caches whether any API key exists, so open mode costs no query per request."""

    def __init__(self, ttl_s: float = 2.0) -> None:
        self.ttl_s = ttl_s
        self.value = False
        self.checked = 0.0

    def get(self, services: Services) -> bool:
        now = time.monotonic()
        if now - self.checked > self.ttl_s:
            with services.engine.connect() as conn:
                self.value = keys.any_keys(conn)
            self.checked = now
        return self.value


def _secret_from(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def get_principal(request: Request, services: ServicesDep) -> Principal:
    cache: _KeysPresent = request.app.state.keys_present
    secret = _secret_from(request)
    if not cache.get(services):
        # Open mode (loopback only, enforced at start): one tenant, every scope.
        return Principal(services.settings.default_tenant, frozenset(keys.SCOPES), None)
    if not secret:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    with services.engine.connect() as conn:
        key = keys.find_key(conn, secret=secret)
    if key is None:
        raise Unauthorized("the API key is not valid or was revoked")
    return Principal(key.tenant, key.scopes, key.id)


def require(scope: str) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope", details={"required_scope": scope})
        return principal

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Ingester = Annotated[Principal, Depends(require("ingest"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def get_window(
    window: Annotated[str | None, Query(description="1h|6h|24h|7d|14d|30d|90d (default 24h)")] = None,
    since: Annotated[str | None, Query(description="RFC 3339 start (inclusive)")] = None,
    until: Annotated[str | None, Query(description="RFC 3339 end (exclusive)")] = None,
) -> Window:
    label, start, end = resolve_window(window, since, until)
    return Window(label, start, end)


WindowDep = Annotated[Window, Depends(get_window)]
