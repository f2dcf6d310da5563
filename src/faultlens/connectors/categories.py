"""The classifier's categories folded onto the five task categories of the seed document (docs/tasks.md)."""

from __future__ import annotations

from faultlens.model import Category

CATEGORY_MAP: dict[str, str] = {
    Category.SERVICE_TIMEOUT: "service_timeout",
    Category.NETWORK_ERROR: "service_timeout",
    Category.AUTHORIZATION: "authorization",
    Category.RESOURCE_EXHAUSTED: "resource_exhausted",
    Category.RATE_LIMITED: "resource_exhausted",
    Category.DATA_ERROR: "data_error",
    Category.NOT_FOUND: "data_error",
    Category.CONFLICT: "data_error",
    Category.SYSTEM_ERROR: "system_error",
    Category.DEPENDENCY_ERROR: "system_error",
    Category.CLIENT_ABORT: "system_error",
    Category.CANCELLED: "system_error",
    Category.UNKNOWN: "system_error",
    Category.NONE: "system_error",
}


def task_category(classifier_category: str) -> str:
    return CATEGORY_MAP.get(classifier_category, "system_error")
