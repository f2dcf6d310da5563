"""Models of the stateful alerts API (/api/v1/alerting/): alerts, their history, silences, notifications."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from faultlens.api.schemas.base import RFC3339, Number, Out


class LastChange(Out):
    release: str | None = Field(description="the release of the newest event of the alert's source (7 days back)")
    release_seen_at: str | None = Field(description=RFC3339)
    rule_version: str | None = Field(description="the rule version the tenant's events are classified with")
    rule_activated_at: str | None = Field(description="the last rule-pack activation reaching the tenant")


class Acknowledgement(Out):
    by: str
    at: str = Field(description=RFC3339)
    comment: str


class StatefulAlert(Out):
    id: str = Field(description="stable identity: a hash of the tenant and the labels")
    name: str
    level: str = Field(description="P0 | P1 | P2")
    state: str = Field(description="pending | firing | resolved | inactive")
    labels: dict[str, str]
    summary: str
    description: str
    owner: str | None
    runbook_url: str | None
    response_minutes: int | None = Field(description="P0 5, P1 15, P2 30 (document 004 §6)")
    last_change: LastChange
    value: Number | None
    threshold: Number | None
    active_since: str | None
    starts_at: str | None = Field(description="firing since (" + RFC3339 + ")")
    ends_at: str | None
    last_seen_at: str | None
    last_notified_at: str | None
    episode: int = Field(description="how many times it has fired")
    silenced_by: str | None
    acknowledged: Acknowledgement | None


class AlertList(Out):
    generated_at: str
    state: str
    level: str | None
    counts: dict[str, dict[str, int]] = Field(description="pending/firing -> level -> active alerts")
    alerts: list[StatefulAlert]


class HistoryItem(Out):
    alert_id: str
    name: str | None
    level: str | None
    at: str
    event: str = Field(description="pending | firing | resolved | inactive | acknowledged | silenced | unsilenced")
    value: Number | None
    detail: dict[str, Any]


class History(Out):
    since: str
    items: list[HistoryItem]


class NotificationOut(Out):
    id: str = Field(description="the idempotency key")
    alert_id: str
    receiver: str
    kind: str = Field(description="firing | resolved")
    state: str = Field(description="pending | delivered | dead")
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str | None
    due_at: str | None
    delivered_at: str | None


class NotificationList(Out):
    items: list[NotificationOut]


class AlertDetail(StatefulAlert):
    history: list[HistoryItem]
    notifications: list[NotificationOut]


class MatcherOut(Out):
    name: str
    value: str
    isRegex: bool  # Alertmanager's name
    isEqual: bool  # Alertmanager's name


class SilenceStatus(Out):
    state: str = Field(description="active | pending | expired")


class Silence(Out):
    id: str
    matchers: list[MatcherOut]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    created_at: str
    status: SilenceStatus


class SilenceList(Out):
    items: list[Silence]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=2000)


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=1000)
    isRegex: bool = False  # Alertmanager's name
    isEqual: bool = True  # Alertmanager's name


class SilenceBody(BaseModel):
    """A silence as Alertmanager's: matchers ("name=value", "name=~regex" or Alertmanager's objects), a time
    range (ends_at, or a duration such as "2h"), who and why."""

    model_config = ConfigDict(extra="forbid")
    matchers: list[str | MatcherIn] = Field(min_length=1, max_length=32)
    starts_at: str | None = Field(default=None, description=RFC3339 + "; default now")
    ends_at: str | None = Field(default=None, description=RFC3339)
    duration: str | None = Field(default=None, description="instead of ends_at: 30m, 2h, 1d ...")
    comment: str = Field(min_length=1, max_length=2000)
    created_by: str | None = Field(default=None, max_length=128, description="default: the API key's id")
