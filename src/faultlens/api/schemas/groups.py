"""Failure group models: the list, one group, its events, and the bodies of the lifecycle changes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from faultlens.api.schemas.base import RFC3339, Number, Out
from faultlens.api.schemas.jobs import Preview

GroupStatus = Literal["new", "ongoing", "resolved", "ignored", "regressed"]


class GroupMix(Out):
    failure_class: str
    failure_kind: str
    count: int


class GroupSummary(Out):
    id: str = Field(description="the group id: a fingerprint template id")
    title: str | None = Field(description="the template text")
    sample_message: str | None
    status: GroupStatus
    count: int = Field(description="events in the window")
    trend: list[int] = Field(description="events per bucket over the window: hours up to 24h windows, else days")
    trend_change: Number | None = Field(description="second half of the window vs the first, 0.5 = +50%")
    first_seen: str | None = Field(description=RFC3339)
    last_seen: str | None = Field(description=RFC3339)
    first_release: str | None = Field(description="the release of the group's earliest events in the window")
    sources: list[str]
    releases: list[str]
    environments: list[str]
    mix: list[GroupMix]
    actionable_share: Number
    assignee: str | None
    covered_by_rule: bool
    members: int = Field(description="templates in the group")


class StatusCounts(Out):
    new: int
    ongoing: int
    resolved: int
    ignored: int
    regressed: int


class GroupList(Out):
    window: str
    items: list[GroupSummary]
    next_cursor: str | None
    status_counts: StatusCounts


class SeriesPoint(Out):
    bucket: str = Field(description=RFC3339)
    count: int


class GroupSeries(Out):
    hour: list[SeriesPoint] = Field(description="hourly counts over the window's last 7 days at most")
    day: list[SeriesPoint]


class MemberTemplate(Out):
    id: str
    template: str | None
    count: int


class GroupActivity(Out):
    at: str = Field(description=RFC3339)
    actor: str
    action: Literal["status", "assign", "note", "merge", "split"]
    detail: dict[str, Any]


class GroupIgnore(Out):
    until: str | None = Field(description=RFC3339)
    count: int | None
    remaining: int | None


class GroupDetail(GroupSummary):
    series: GroupSeries
    member_templates: list[MemberTemplate]
    samples: list[str]
    activity: list[GroupActivity]
    ignore: GroupIgnore | None
    resolved_at: str | None = Field(description=RFC3339)
    regressed_at: str | None = Field(description=RFC3339)


class GroupEvents(Out):
    items: list[dict[str, Any]] = Field(description="events as /api/v1/events items")
    next_cursor: str | None


class SplitResult(Out):
    group: GroupDetail
    new_group: GroupDetail


class RuleDraft(Out):
    rule: dict[str, Any] = Field(description="the rule-pack rule entry as data")
    yaml: str = Field(description="the entry as the pack's YAML")
    preview: Preview


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StatusBody(_Body):
    status: Literal["resolved", "ignored", "unresolved"]
    until: str | None = Field(default=None, max_length=40, description=f"ignored until this time ({RFC3339})")
    count: int | None = Field(default=None, ge=1, le=1_000_000_000, description="ignored until this many more events")


class AssigneeBody(_Body):
    assignee: str | None = Field(min_length=1, max_length=128)


class NoteBody(_Body):
    text: str = Field(min_length=1, max_length=2000)


GroupId = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class MergeBody(_Body):
    group_ids: list[GroupId] = Field(min_length=1, max_length=100)


class SplitBody(_Body):
    member_ids: list[GroupId] = Field(min_length=1, max_length=100)


class RuleDraftBody(_Body):
    failure_class: Literal["service_failure", "client_failure", "client_abort", "none"] | None = None
    category: str | None = Field(default=None, min_length=1, max_length=32)
    is_actionable: bool | None = None
    retryable: bool | None = None
    kind: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")
