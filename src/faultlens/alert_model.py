"""The alerting vocabulary: levels, states, a condition's candidate, receivers, routes, notifications."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Level(StrEnum):
    """Document 004 §6: P0 respond in 5 minutes, P1 in 15, P2 in 30."""

    P0 = "P0"  # unauthorised-access risk, main path down
    P1 = "P1"  # quality degraded significantly, dead-letter surge
    P2 = "P2"  # performance or cost anomaly


RESPONSE_MINUTES: dict[str, int] = {"P0": 5, "P1": 15, "P2": 30}
LEVEL_RANK: dict[str, int] = {"P0": 0, "P1": 1, "P2": 2}


class AlertState(StrEnum):
    PENDING = "pending"  # condition true, its `for` not yet over
    FIRING = "firing"
    RESOLVED = "resolved"  # was firing, condition no longer true
    INACTIVE = "inactive"  # was pending, cleared before its `for`: nobody was told


ACTIVE_STATES = (AlertState.PENDING.value, AlertState.FIRING.value)

ReceiverType = Literal["webhook", "alertmanager_webhook", "alertmanager_api"]
RECEIVER_TYPES: tuple[str, ...] = ("webhook", "alertmanager_webhook", "alertmanager_api")


@dataclass(frozen=True)
class Candidate:
    """One condition found true in one evaluation: what the alert would say.

    `labels` identify the alert (with the tenant): the same labels next time are the same alert. They always hold
    `alertname` (= name) and `level`; conditions add what scopes them (source, category, failure_class,
    environment, failure_kind, fingerprint, ...). Nothing variable (counts, times) goes in labels.
    """

    name: str
    level: str
    labels: Mapping[str, str]
    summary: str
    value: float | None = None
    threshold: float | None = None
    description: str = ""
    source: str | None = None  # the source the alert is about, for "last release seen for that source"


def canonical_labels(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def alert_id(tenant: str, labels: Mapping[str, str]) -> str:
    """The stable identity of an alert: the same tenant and labels give the same id in every process."""
    digest = hashlib.sha256(f"{tenant}\x00{canonical_labels(labels)}".encode()).hexdigest()
    return digest[:24]


@dataclass(frozen=True)
class Receiver:
    """Where notifications go. `url` and `headers` may hold secrets: never log them, never answer them."""

    name: str
    type: ReceiverType
    url: str = field(repr=False)
    tenants: frozenset[str] | None = None  # None: every tenant of this deployment
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0
    max_attempts: int | None = None  # None: Settings.alert_delivery_max_attempts

    def serves(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants


@dataclass(frozen=True)
class Route:
    """What the routing file decides for one alert's labels."""

    owner: str
    runbook_url: str
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait_s: float
    repeat_interval_s: float


@dataclass(frozen=True)
class Notification:
    """One outbox row: one alert's change for one receiver. `id` is the idempotency key.

    `payload` is the alert as of the change (see alert_view in alerting/evaluate.py):
    {id, tenant, name, level, status ("firing" | "resolved"), labels, annotations, starts_at (ms),
     ends_at (ms | None), value, threshold, episode, url}
    annotations hold summary, description, runbook_url, owner, last_release, last_release_seen_at (ms | None),
    rule_version, rule_activated_at (ms | None), response_minutes.
    """

    id: str
    tenant: str
    alert_id: str
    receiver: str
    kind: Literal["firing", "resolved"]
    group_key: str
    payload: Mapping[str, Any]
    attempts: int = 0
    created_at: int = 0
