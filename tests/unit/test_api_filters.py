"""Route parameter types come from the model's enums, and shared filter classes are read as query parameters."""

from __future__ import annotations

from typing import get_args

from fastapi.routing import APIRoute

from faultlens.api import filters
from faultlens.api.params import declared_query_params
from faultlens.api.routes import events, overview, tasks
from faultlens.connectors.base import KINDS
from faultlens.model import FailureClass, ItemType, Status
from faultlens.triage.slo import LEVELS


def test_enum_parameters_list_the_model_values() -> None:
    assert get_args(filters.StatusParam) == tuple(s.value for s in Status)
    assert get_args(filters.FailureClassParam) == tuple(c.value for c in FailureClass)
    # The failure lists take every class but none.
    assert get_args(filters.FailedClassParam) == ("service_failure", "client_failure", "client_abort")
    assert get_args(filters.ItemTypeParam) == tuple(t.value for t in ItemType)
    assert get_args(filters.LevelParam) == LEVELS
    assert get_args(filters.TaskKindParam) == KINDS
    assert get_args(filters.TaskCategoryParam) == (
        "service_timeout",
        "authorization",
        "resource_exhausted",
        "data_error",
        "system_error",
    )


def _route(router: object, path: str) -> APIRoute:
    routes = [r for r in getattr(router, "routes", []) if isinstance(r, APIRoute) and r.path == path]
    (route,) = [r for r in routes if "GET" in r.methods]
    return route


def test_the_unknown_parameter_check_sees_parameters_of_nested_filter_classes() -> None:
    # EventFilters takes OriginFilter and EventClassFilter, two levels below the route.
    declared = declared_query_params(_route(events.router, "/api/v1/events"))
    assert set(declared) == {
        *("window", "since", "until", "limit", "cursor", "q", "failures_only", "status", "item_type"),
        *("source", "operation", "failure_class", "failure_kind", "category", "is_actionable"),
        *("trace_id", "correlation_id", "fingerprint_id", "release", "environment"),
    }
    failures = declared_query_params(_route(overview.router, "/api/v1/failures"))
    assert {"source", "failure_class", "failure_kind", "category", "site_id", "page", "page_size"} <= set(failures)
    assert {"release", "environment"} <= set(failures)
    assert "operation" not in failures  # a source filter alone, as before
    assert set(declared_query_params(_route(tasks.router, "/api/v1/tasks/failed"))) == {
        *("source", "task_type", "client_id", "category", "limit", "cursor"),
    }
