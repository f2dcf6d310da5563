"""The query filters routes share: enum parameter types built from the model, and filter dependency classes.

A route declares a filter set by taking one of these classes as an Annotated dependency; FastAPI reads each class's
__init__ parameters as query parameters, and the unknown-parameter guard (api.params) finds them in the route's
dependency tree like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from fastapi import Depends, Query

from faultlens.connectors.base import KINDS
from faultlens.connectors.categories import CATEGORY_MAP
from faultlens.model import FAILED_CLASSES, FailureClass, ItemType, Status
from faultlens.timeutil import Window
from faultlens.triage.events import EventFilter
from faultlens.triage.export import MEDIA_TYPES
from faultlens.triage.raw import FailureQuery
from faultlens.triage.slo import LEVELS
from faultlens.triage.trends import BUCKETS_MS


def literal_of(values: Iterable[str]) -> Any:
    """A Literal of these values: the parameter is checked, and listed as an enum in OpenAPI, inline as before."""
    return Literal.__getitem__(tuple(str(v) for v in values))


if TYPE_CHECKING:  # to the type checker each is text; at run time a Literal of its enum's values
    StatusParam: TypeAlias = str
    FailureClassParam: TypeAlias = str
    FailedClassParam: TypeAlias = str
    ItemTypeParam: TypeAlias = str
    LevelParam: TypeAlias = str
    TaskCategoryParam: TypeAlias = str
    TaskKindParam: TypeAlias = str
    BucketParam: TypeAlias = str
    ExportFormatParam: TypeAlias = str
else:
    StatusParam = literal_of(Status)
    FailureClassParam = literal_of(FailureClass)
    FailedClassParam = literal_of(FAILED_CLASSES)
    ItemTypeParam = literal_of(ItemType)
    LevelParam = literal_of(LEVELS)  # the SLO hint levels
    TaskCategoryParam = literal_of(dict.fromkeys(CATEGORY_MAP.values()))  # the five task categories
    TaskKindParam = literal_of(KINDS)  # the task adapters
    BucketParam = literal_of(BUCKETS_MS)  # the trend bucket widths
    ExportFormatParam = literal_of(MEDIA_TYPES)  # the export formats

_ATTR = Annotated[str | None, Query(max_length=1024, description="events whose attributes hold this value")]


class SourceFilter:
    """?source=: the events of one source."""

    def __init__(self, source: str | None = None) -> None:
        self.source = source

    @property
    def sources(self) -> list[str] | None:
        """The sources to show (None: every source)."""
        return [self.source] if self.source is not None else None


class OriginFilter(SourceFilter):
    """?source= and ?operation=: where events come from."""

    def __init__(self, source: str | None = None, operation: str | None = None) -> None:
        super().__init__(source)
        self.operation = operation


class ClassFilter:
    """?failure_class= ?failure_kind= ?category=: what the classifier decided; failure_class among the failures."""

    def __init__(
        self,
        failure_class: FailedClassParam | None = None,
        failure_kind: str | None = None,
        category: str | None = None,
    ) -> None:
        self.failure_class = failure_class
        self.failure_kind = failure_kind
        self.category = category


class EventClassFilter(ClassFilter):
    """ClassFilter where failure_class may also be "none" (the successes), as the event list allows."""

    def __init__(
        self,
        failure_class: FailureClassParam | None = None,
        failure_kind: str | None = None,
        category: str | None = None,
    ) -> None:
        super().__init__(failure_class, failure_kind, category)


_RELEASE = Annotated[
    str | None, Query(min_length=1, max_length=128, description="events of this release (as the events carry it)")
]
_ENVIRONMENT = Annotated[str | None, Query(min_length=1, max_length=64, description="events of this environment")]


class ReleaseFilter:
    """?release= ?environment=: the events of one release and/or one environment."""

    def __init__(self, release: _RELEASE = None, environment: _ENVIRONMENT = None) -> None:
        self.release = release
        self.environment = environment


def attribute_filters(site_id: _ATTR = None, target_object: _ATTR = None, template_key: _ATTR = None) -> dict[str, str]:
    """The attribute filters given (site_id, target_object, template_key), by name."""
    values = {"site_id": site_id, "target_object": target_object, "template_key": template_key}
    return {k: v for k, v in values.items() if v is not None}


SourceDep = Annotated[SourceFilter, Depends()]
OriginDep = Annotated[OriginFilter, Depends()]
ClassDep = Annotated[ClassFilter, Depends()]
EventClassDep = Annotated[EventClassFilter, Depends()]
ReleaseDep = Annotated[ReleaseFilter, Depends()]
Attrs = Annotated[dict[str, str], Depends(attribute_filters)]


class EventFilters:
    """Every filter of the event list."""

    def __init__(
        self,
        origin: OriginDep,
        classes: EventClassDep,
        releases: ReleaseDep,
        status: StatusParam | None = None,
        is_actionable: bool | None = None,
        trace_id: str | None = None,
        correlation_id: str | None = None,
        fingerprint_id: str | None = None,
        item_type: ItemTypeParam | None = None,
        q: Annotated[str | None, Query(max_length=500)] = None,
        failures_only: Annotated[bool, Query(description="only events whose failure_class is not none")] = False,
    ) -> None:
        self.origin = origin
        self.classes = classes
        self.releases = releases
        self.status = status
        self.is_actionable = is_actionable
        self.trace_id = trace_id
        self.correlation_id = correlation_id
        self.fingerprint_id = fingerprint_id
        self.item_type = item_type
        self.q = q
        self.failures_only = failures_only

    def event_filter(self, window: Window) -> EventFilter:
        return EventFilter(
            start_ms=window.start_ms,
            end_ms=window.end_ms,
            source=self.origin.source,
            operation=self.origin.operation,
            status=self.status,
            failure_class=self.classes.failure_class,
            failure_kind=self.classes.failure_kind,
            category=self.classes.category,
            is_actionable=self.is_actionable,
            trace_id=self.trace_id,
            correlation_id=self.correlation_id,
            fingerprint_id=self.fingerprint_id,
            item_type=self.item_type,
            q=self.q,
            failures_only=self.failures_only,
            release=self.releases.release,
            environment=self.releases.environment,
        )


EventFiltersDep = Annotated[EventFilters, Depends()]


class CursorPage:
    """?limit= and ?cursor=: one page of a cursor-paged event list (faultlens.cursors)."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


CursorPageDep = Annotated[CursorPage, Depends()]


def failure_query(
    window: Window,
    source: SourceFilter,
    classes: ClassFilter,
    attrs: dict[str, str],
    releases: ReleaseFilter | None = None,
) -> FailureQuery:
    """The failure list's query from its shared filters."""
    return FailureQuery(
        start_ms=window.start_ms,
        end_ms=window.end_ms,
        source=source.source,
        failure_class=classes.failure_class,
        failure_kind=classes.failure_kind,
        category=classes.category,
        attrs=attrs,
        release=releases.release if releases else None,
        environment=releases.environment if releases else None,
    )
