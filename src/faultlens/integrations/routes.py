"""The route template an ASGI request matched (Starlette, FastAPI), never its raw path."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

UNMATCHED = "<unmatched>"
_FULL, _PARTIAL = 2, 1  # starlette.routing.Match values, compared by value so starlette stays optional
_MAX_DEPTH = 8


def route_template(scope: Mapping[str, Any], entry: Mapping[str, Any], root_app: Any) -> str:
    """The matched template: from the route Starlette/FastAPI left in the scope, else by matching the routes.

    `entry` is a copy of the scope as it arrived (routers rewrite root_path and path_params as they descend);
    `root_app` is the outermost app whose routes are walked. Anything unmatched is one fixed placeholder.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    mounted = scope.get("root_path", "") != entry.get("root_path", "")
    if isinstance(path, str) and path and not mounted and not hasattr(route, "routes"):
        return path
    routes = _routes_of(root_app)
    if routes is not None:
        found = _walk(routes, dict(entry), 0)
        if found:
            return found
    return UNMATCHED


def _routes_of(app: Any) -> list[Any] | None:
    """The routes of an app or router, looking through middleware wrappers (`.app`) a few levels down."""
    for _ in range(_MAX_DEPTH):
        if app is None:
            return None
        routes = getattr(app, "routes", None)
        if isinstance(routes, list):
            return routes
        app = getattr(app, "app", None)
    return None


def _walk(routes: list[Any], scope: MutableMapping[str, Any], depth: int) -> str | None:
    partial: str | None = None
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        try:
            match, child = matches(scope)
        except Exception:  # a route we do not understand is skipped, never an error of the host app
            continue
        level = getattr(match, "value", match)
        if level not in (_FULL, _PARTIAL):
            continue
        path = getattr(route, "path", "")
        path = path if isinstance(path, str) else ""
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner and depth < _MAX_DEPTH:
            # A Mount (or Host): the template goes on inside it.
            rest = _walk(inner, {**scope, **child}, depth + 1)
            template = path + rest if rest else None
        elif isinstance(inner, list):
            # A Mount of an app without routes (static files, another framework): "/static/{path}".
            fmt = getattr(route, "path_format", None)
            template = fmt if isinstance(fmt, str) and fmt else None
        else:
            template = path or None
        if template is None:
            continue
        if level == _FULL:
            return template
        partial = partial or template
    return partial
