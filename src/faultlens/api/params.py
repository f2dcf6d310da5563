"""Query parameters every route shares: refusing the ones a route does not declare, and the one window vocabulary."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType, UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from faultlens.errors import InvalidRequest, param_details, param_problem
from faultlens.timeutil import WINDOWS_MS, Window, resolve_window
from faultlens.triage import overview

# RFC 9745: the date from which window_days is deprecated on native routes, as a structured-field date.
WINDOW_DAYS_DEPRECATED_AT = datetime(2026, 12, 6, tzinfo=UTC)
DEPRECATION_HEADERS = {"Deprecation": f"@{int(WINDOW_DAYS_DEPRECATED_AT.timestamp())}"}
WINDOW_HELP = f"{'|'.join(WINDOWS_MS)}; or since/until"


def _many(annotation: Any) -> bool:
    """Whether a parameter of this type takes repeated values (list[str], tuple[int, ...], Optional of those)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_many(arg) for arg in get_args(annotation))
    return origin in (list, tuple, set, frozenset, Sequence) or annotation in (list, tuple, set, frozenset)


def declared_query_params(route: APIRoute) -> Mapping[str, bool]:
    """The query parameters a route reads, its dependencies' included (aliases as sent on the wire), each with
    whether it takes repeated values."""
    cached: Mapping[str, bool] | None = getattr(route, "_faultlens_query_params", None)
    if cached is not None:
        return cached
    names: dict[str, bool] = {}
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        pending.extend(dependant.dependencies)
        for field in dependant.query_params:
            annotation = getattr(field.field_info, "annotation", None)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                # A Pydantic model of query parameters: its fields are the names sent.
                for name, sub in annotation.model_fields.items():
                    names[sub.alias or name] = _many(sub.annotation)
            else:
                names[field.alias] = _many(annotation)
    result = MappingProxyType(names)
    setattr(route, "_faultlens_query_params", result)  # noqa: B010 - a cache on a framework object
    return result


_ANY_QUERY = "_faultlens_any_query"
F = TypeVar("F", bound=Callable[..., Any])


def any_query(endpoint: F) -> F:
    """Mark an endpoint whose answer does not depend on its query string (a 405 shim, a redirect): not checked."""
    setattr(endpoint, _ANY_QUERY, True)  # a marker the guard reads
    return endpoint


def _checked(route: Any) -> bool:
    # Browser pages keep their state in their own query string (/?window=7d&scope=client) and static files
    # are fetched with cache-busting ones: neither is an API call, so only API routes are checked.
    if not isinstance(route, APIRoute) or getattr(route.endpoint, _ANY_QUERY, False):
        return False
    if route.path.startswith("/static/"):
        return False
    response_class = getattr(route.response_class, "value", route.response_class)
    return not (isinstance(response_class, type) and issubclass(response_class, HTMLResponse))


# Query parameters whose empty value means the parameter left out: the window's (the OpenAPI document admits "" for
# them), the first page's cursor and an empty text search. Every other parameter of a native route refuses an empty
# value: ?source= read as "no filter" on some routes and as "source is the empty string" (nothing) on others.
EMPTY_MEANS_ABSENT = frozenset({"window", "since", "until", "cursor", "q"})


def unknown_params_guard(codes_by_prefix: Mapping[str, str]) -> Callable[[Request], None]:
    """An app-wide dependency answering 400 to a query parameter the matched route does not declare (or to a
    single-valued one given twice, or to an empty value of one outside EMPTY_MEANS_ABSENT).

    A misspelled filter (?soruce=orders) or a parameter of another route (?window_days= on /stats/summary)
    would otherwise be ignored and the caller given an unfiltered or default answer as if it were the one
    asked for. The allowed names come from the route's own dependency tree, so a new route is covered as it
    is written. Paths under a prefix of `codes_by_prefix` answer with that contract's own error code.
    """

    def reject(request: Request) -> None:
        route = request.scope.get("route")
        if route is None or not _checked(route):
            return
        declared = declared_query_params(route)
        counts = Counter(name for name, _value in request.query_params.multi_items())
        unknown = [name for name in counts if name not in declared]
        # A single-valued parameter sent twice would be read once (the last) and the other value dropped.
        repeated = [name for name, n in counts.items() if n > 1 and declared.get(name) is False]
        path = request.scope.get("path", "")
        contract = next((c for prefix, c in codes_by_prefix.items() if path.startswith(prefix)), None)
        if not unknown and not repeated:
            # A contract route keeps its own document's rule for empty values (parallel-ops: no filter).
            if contract is None:
                _reject_empty(request)
            return
        problems = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(param_problem(name, f"unknown query parameter{hint}"))
        problems += [param_problem(name, "given more than once; it takes one value") for name in repeated]
        code = contract or InvalidRequest.code
        if not unknown:
            raise InvalidRequest(
                f"query parameter(s) given more than once: {', '.join(repeated)}",
                code=code,
                details={"params": problems},
            )
        accepted = ", ".join(sorted(declared)) or "none"
        raise InvalidRequest(
            f"unknown query parameter(s): {', '.join(unknown)}; this route accepts: {accepted}",
            code=code,
            details={"params": problems, "accepted": sorted(declared)},
        )

    return reject


def _reject_empty(request: Request) -> None:
    empty = [name for name, value in request.query_params.multi_items() if not value]
    empty = [name for name in dict.fromkeys(empty) if name not in EMPTY_MEANS_ABSENT]
    if not empty:
        return
    problems = [param_problem(name, f"{name} must not be empty; leave it out for its default") for name in empty]
    message = problems[0]["message"] if len(empty) == 1 else f"{', '.join(empty)} must not be empty; leave them out"
    raise InvalidRequest(message, details={"params": problems})


def overview_window(
    response: Response,
    window: Annotated[str | None, Query(description=f"{WINDOW_HELP} (default 7d)")] = None,
    since: Annotated[str | None, Query(description="RFC 3339 start (inclusive)")] = None,
    until: Annotated[str | None, Query(description="RFC 3339 end (exclusive)")] = None,
    window_days: Annotated[
        str | None,
        Query(deprecated=True, description="Deprecated alias: 1, 7, 14, 30 or 90 days; use window"),
    ] = None,
) -> Window:
    """The overview family's window (default 7 days); window_days still works, with a Deprecation header."""
    if window_days is None:
        label, start, end = resolve_window(window, since, until, default="7d")
        return Window(label, start, end)
    if window or since or until:
        message = "use either window_days (deprecated) or window / since / until, not both"
        raise InvalidRequest(message, details=param_details("window_days", message))
    # Read as written, digits only, as the parallel-ops contract reads it: int() would take "1_4", "+7", " 7".
    days = int(window_days) if window_days.isascii() and window_days.isdecimal() and len(window_days) < 4 else 0
    if days not in overview.WINDOW_DAYS:
        message = f"window_days must be one of {', '.join(map(str, overview.WINDOW_DAYS))} (deprecated: use window)"
        raise InvalidRequest(message, details=param_details("window_days", message))
    response.headers.update(DEPRECATION_HEADERS)
    return overview.window_of(days)


OverviewWindowDep = Annotated[Window, Depends(overview_window)]
