"""The route table as a contract: every route needs a key with the right scope, and every failure has its body."""

from __future__ import annotations

from typing import Any

from httpx import Response
from sqlalchemy import select

from faultlens.store import keys
from faultlens.store.tables import api_keys
from tests.security.conftest import (
    CODEBASE_EMBEDDER_PREFIX,
    HANDLER_SCOPES,
    PARALLEL_OPS_CODE,
    PARALLEL_OPS_PREFIX,
    PATH_PARAM_KINDS,
    PUBLIC,
    PUBLIC_PARAMS,
    RouteSpec,
    TenantData,
    World,
    fill_path,
    strip_echo,
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The OTLP/HTTP receiver's paths: their errors are google.rpc.Status bodies (api/compat/otlp.py).
OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs", "/v1/metrics"})
# Keyed documentation pages: they filter nothing, so a stray query parameter cannot widen anything.
NO_FILTER_PAGES = frozenset({"/docs", "/openapi.json"})
# A query value no typed parameter accepts, per parameter name (the first one a route declares is used).
BAD_QUERY_VALUES = {
    "limit": "0",
    "page": "0",
    "page_size": "0",
    "window": "5y",
    "window_days": "3",
    "since": "not-a-time",
    "format": "xml",
    "export_format": "xml",
    "bucket": "2h",
    "bucket_days": "3",
    "level": "loud",
    "kind": "cron",
    "state": "sleeping",
    "scope": "galaxy",
    "category": "no-such-category",
    "status": "maybe",
    "unclassified": "perhaps",
    "cursor": "not-a-cursor",
}


def _body(r: Response) -> Any:
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:300])
    return r.json()


def error_body_problem(route: RouteSpec, r: Response, status: int, code: str | None = None) -> str | None:
    """None when `r` is the error body of `route`'s contract with `status` (and `code`), else what is wrong."""
    where = f"{route.method} {r.request.url.path}?{r.request.url.query.decode()}"
    if r.status_code != status:
        return f"{where}: answered {r.status_code}, not {status}: {r.text[:200]}"
    if route.method == "HEAD":
        return None
    try:
        body = _body(r)
    except (AssertionError, ValueError) as exc:
        return f"{where}: not a JSON error body: {exc}"
    if route.path.startswith(CODEBASE_EMBEDDER_PREFIX):
        ok = set(body) == {"Code", "Message", "Success", "Data"} and body["Success"] is False
        ok = ok and body["Code"] == status and isinstance(body["Message"], str) and bool(body["Message"])
        return None if ok else f"{where}: not the codebase-embedder envelope: {body}"
    if route.path in OTLP_PATHS:
        return otlp_status_problem(where, r, body, code)
    if set(body) != {"error", "request_id", "correlation_id", "trace_id"} or not isinstance(body["error"], dict):
        return f"{where}: not the one error body: {body}"
    err = body["error"]
    if set(err) != {"code", "message", "details"}:
        return f"{where}: error keys {sorted(err)}: {body}"
    if not (isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str) and err["message"]):
        return f"{where}: empty code or message: {body}"
    if not isinstance(err["details"], dict):
        return f"{where}: details is {type(err['details']).__name__}, not an object: {body}"
    if body["request_id"] != r.headers.get("x-request-id"):
        return f"{where}: request_id {body['request_id']!r} is not the X-Request-ID header"
    if not body["correlation_id"] or body["correlation_id"] != r.headers.get("x-correlation-id"):
        return f"{where}: correlation_id {body['correlation_id']!r} is not the X-Correlation-ID header"
    expected = code
    if status == 400 and route.path.startswith(PARALLEL_OPS_PREFIX):
        expected = PARALLEL_OPS_CODE
    if expected is not None and err["code"] != expected:
        return f"{where}: code {err['code']!r}, not {expected!r}"
    return None


def otlp_status_problem(where: str, r: Response, body: Any, code: str | None) -> str | None:
    """The OTLP receiver's errors: a google.rpc.Status (JSON for a JSON request) whose one detail is an ErrorInfo
    carrying faultlens' error code as its reason and the request id in its metadata."""
    if not isinstance(body, dict) or set(body) - {"code", "message", "details"}:
        return f"{where}: not a google.rpc.Status: {body}"
    details = body.get("details")
    if not (isinstance(body.get("code"), int) and isinstance(body.get("message"), str) and body["message"]):
        return f"{where}: Status without an integer code or a message: {body}"
    if not isinstance(details, list) or len(details) != 1 or not isinstance(details[0], dict):
        return f"{where}: Status details are not one ErrorInfo: {body}"
    info = details[0]
    if info.get("@type") != "type.googleapis.com/google.rpc.ErrorInfo" or not info.get("reason"):
        return f"{where}: Status detail is not an ErrorInfo with a reason: {body}"
    if info.get("metadata", {}).get("request_id") != r.headers.get("x-request-id"):
        return f"{where}: ErrorInfo request_id is not the X-Request-ID header: {body}"
    if code is not None and info["reason"] != code:
        return f"{where}: reason {info['reason']!r}, not {code!r}"
    return None


def _request(world: World, route: RouteSpec, headers: dict[str, str], **kwargs: Any) -> Response:
    if route.method in WRITE_METHODS:
        kwargs.setdefault("json", {})
    path = kwargs.pop("path", None) or fill_path(route, world.acme)
    r: Response = world.client.request(route.method, path, headers=headers, **kwargs)
    return r


def _keyed(world: World) -> list[RouteSpec]:
    return [r for r in world.routes if not r.public]


def test_route_table_is_covered(shared_world: World) -> None:
    """Every route is public by the allow-list, or keyed with a known scope; allow-list entries still exist."""
    world = shared_world
    problems = []
    for route in world.routes:
        if route.public:
            if route.authenticated:
                problems.append(f"{route} asks for a key but is allow-listed as public; take it off PUBLIC")
            continue
        if not route.authenticated or not route.scopes:
            problems.append(f"{route} needs no key and is not on the PUBLIC allow-list (tests/security/conftest.py)")
        if not route.scopes <= set(keys.SCOPES) | {"operator"}:
            problems.append(f"{route} asks for unknown scopes {sorted(route.scopes - set(keys.SCOPES))}")
        for name in route.params:
            if name not in PATH_PARAM_KINDS:
                problems.append(f"{route}: unknown path parameter {name!r}; add it to PATH_PARAM_KINDS")
    present = {(r.path, r.method) for r in world.routes}
    paths = {r.path for r in world.routes}
    for path, method in PUBLIC:
        if path not in paths:
            problems.append(f"PUBLIC lists {path} which the app no longer has; remove it")
        elif method != "*" and (path, method) not in present:
            problems.append(f"PUBLIC lists {method} {path} which the app no longer has; remove it")
    for path, method in HANDLER_SCOPES:
        if (path, method) not in present:
            problems.append(f"HANDLER_SCOPES lists {method} {path} which the app no longer has; remove it")
    assert PUBLIC_PARAMS  # the public routes' parameters are filled from here
    assert not problems, "\n".join(problems)


def test_every_keyed_route_refuses_a_missing_or_wrong_key(shared_world: World) -> None:
    world = shared_world
    problems = []
    for route in _keyed(world):
        for headers in ({}, {"Authorization": "Bearer flk_000000000000_not-a-key"}, {"X-API-Key": "wrong"}):
            problem = error_body_problem(route, _request(world, route, headers), 401, "unauthorized")
            if problem:
                problems.append(f"{problem} (headers {sorted(headers)})")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_revoked_keys_answer_401_on_every_route(world: World) -> None:
    """Revoking every key leaves the server closed: no route answers without a key, nor with a revoked one."""
    with world.services.engine.begin() as conn:
        for key_id in conn.execute(select(api_keys.c.id)).scalars().all():
            keys.revoke_key(conn, key_id=key_id)
    state = world.client.app.state  # type: ignore[attr-defined]
    if hasattr(state, "keys_present"):
        state.keys_present.checked = 0  # the cache would otherwise answer for up to its TTL
    problems = []
    for route in _keyed(world):
        for headers in ({}, world.acme.admin, world.globex.read):
            problem = error_body_problem(route, _request(world, route, headers), 401, "unauthorized")
            if problem:
                problems.append(f"{problem} (headers {sorted(headers)})")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _lacking(data: TenantData, scopes: frozenset[str]) -> list[dict[str, str]]:
    """Keys of the tenant that hold none of `scopes` (nor admin)."""
    out = []
    for held, headers in ((frozenset({"read"}), data.read), (frozenset({"ingest"}), data.ingest)):
        if not held & scopes:
            out.append(headers)
    return out


def test_every_keyed_route_refuses_a_key_without_its_scope(shared_world: World) -> None:
    world = shared_world
    problems = []
    checked = 0
    for route in _keyed(world):
        for headers in _lacking(world.acme, route.scopes):
            checked += 1
            problem = error_body_problem(route, _request(world, route, headers), 403, "forbidden")
            if problem:
                problems.append(problem)
    assert checked >= len(_keyed(world)), "every keyed route was tried with at least one key lacking its scope"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_not_found_and_method_not_allowed_bodies_on_every_route(shared_world: World) -> None:
    world = shared_world
    problems = []
    by_path: dict[str, set[str]] = {}
    for route in world.routes:
        by_path.setdefault(route.path, set()).add(route.method)
    for route in _keyed(world):
        if route.params:
            # An id nobody has: 404 in the route's contract body.
            path = fill_path(route, world.acme)
            for kind_value in {world.acme.ids[PATH_PARAM_KINDS[n]] for n in route.params}:
                path = path.replace(kind_value, "no-such-id-0")
            r = _request(world, route, world.acme.admin, path=path)
            problems.append(error_body_problem(route, r, 404))
        # A method the path does not take: 405 with an Allow header.
        other = next((m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in by_path[route.path]), None)
        if other is None:
            continue  # the path answers every method (a contract's own 405 handler)
        path = fill_path(route, world.acme)
        r = world.client.request(other, path, headers=world.acme.admin)
        spec = RouteSpec(route.path, other, route.kind, (), frozenset(), True)
        problems.append(error_body_problem(spec, r, 405, "method_not_allowed"))
        if r.status_code == 405 and not r.headers.get("allow"):
            problems.append(f"{other} {path}: 405 without an Allow header")
    for path in ("/api/v1/no-such-route", "/api/v1/parallel-ops/no-such-route", "/no-such-page"):
        r = world.client.get(path, headers=world.acme.admin)
        spec = RouteSpec(path, "GET", "APIRoute", (), frozenset(), True)
        problems.append(error_body_problem(spec, r, 404, "not_found"))
    found = [p for p in problems if p]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)


def test_bad_query_values_answer_400_on_every_route(shared_world: World) -> None:
    world = shared_world
    problems = []
    checked = 0
    for route in _keyed(world):
        name = next((n for n in route.query if n in BAD_QUERY_VALUES), None)
        if name is None:
            continue
        checked += 1
        r = _request(world, route, world.acme.admin, params={name: BAD_QUERY_VALUES[name]})
        problems.append(error_body_problem(route, r, 400))
    assert checked >= 10
    found = [p for p in problems if p]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)


def test_unknown_query_parameters_answer_400_on_every_route(shared_world: World) -> None:
    """A misspelt filter must not silently widen a query (?sorce=x would otherwise list every source)."""
    world = shared_world
    problems = []
    for route in _keyed(world):
        if route.path in NO_FILTER_PAGES:
            continue
        r = _request(world, route, world.acme.admin, params={"no_such_param": "1"})
        problems.append(error_body_problem(route, r, 400))
    found = [p for p in problems if p]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)


def test_invalid_json_bodies_answer_400_on_body_routes(shared_world: World) -> None:
    world = shared_world
    bodies = {"/api/v1/events", "/api/v1/rules/preview", "/api/v1/rules/activate"}
    problems = []
    for route in _keyed(world):
        if route.method not in WRITE_METHODS or route.path not in bodies:
            continue
        r = world.client.request(
            route.method,
            fill_path(route, world.acme),
            headers={**world.acme.admin, "Content-Type": "application/json"},
            content=b'{"broken": ',
        )
        problems.append(error_body_problem(route, r, 400))
    found = [p for p in problems if p]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)


def test_public_routes_answer_without_a_key(shared_world: World) -> None:
    """The allow-listed routes really are public: they answer without a key and show no tenant data."""
    world = shared_world
    problems = []
    markers = world.acme.markers(world.globex) + world.globex.markers(world.acme)
    for route in world.routes:
        if not route.public or route.method in WRITE_METHODS | {"OPTIONS"}:
            continue
        r = world.client.request(route.method, fill_path(route, world.acme))
        if r.status_code in (401, 403):
            problems.append(f"{route}: allow-listed as public but answers {r.status_code} without a key")
        if r.status_code >= 500:
            problems.append(f"{route}: {r.status_code} {r.text[:200]}")
        # A page shell may echo the id it was asked for (the page reads it back); that is not data.
        echoed = [world.acme.ids[PATH_PARAM_KINDS[n]] for n in route.params if n not in PUBLIC_PARAMS]
        text = strip_echo(r.text, echoed)
        if any(m in text for m in markers):
            problems.append(f"{route}: a public route shows tenant data")
    assert not problems, "\n".join(problems)


def test_writes_with_a_body_that_is_not_json_answer_415_on_every_route(shared_world: World) -> None:
    """A cross-site form post (text/plain, form-encoded) never reaches a write route: 415 in the contract body."""
    world = shared_world
    problems = []
    for route in world.routes:
        if route.method not in WRITE_METHODS:
            continue
        path = fill_path(route, world.acme)
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            headers = {**world.acme.admin, "Content-Type": content_type}
            r = world.client.request(route.method, path, headers=headers, content=b"[]")
            problems.append(error_body_problem(route, r, 415, "unsupported_media_type"))
    found = [p for p in problems if p]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)
