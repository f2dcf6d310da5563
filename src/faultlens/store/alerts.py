"""The alerts, alert_history and alert_silences tables: stateful alerts, what happened to them, and silences."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal_column, or_, select, union, update

from faultlens.alert_model import ACTIVE_STATES, LEVEL_RANK
from faultlens.store.tables import (
    alert_history,
    alert_notifications,
    alert_silences,
    alerts,
    api_keys,
    events,
    rule_activations,
)


@dataclass
class AlertRow:
    id: str
    tenant: str
    name: str
    level: str
    labels: dict[str, str]
    annotations: dict[str, Any]
    state: str
    value: float | None
    threshold: float | None
    active_since: int
    starts_at: int | None
    ends_at: int | None
    last_seen_at: int
    last_notified_at: int | None
    episode: int
    silenced_by: str | None
    acked_by: str | None
    acked_at: int | None
    ack_comment: str | None
    updated_at: int

    def values(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["labels"] = json.dumps(dict(sorted(self.labels.items())), ensure_ascii=False)
        out["annotations"] = json.dumps(self.annotations, ensure_ascii=False, sort_keys=True)
        return out


def _row(r: Any) -> AlertRow:
    m = dict(r._mapping)
    m["labels"] = json.loads(m["labels"])
    m["annotations"] = json.loads(m["annotations"])
    return AlertRow(**m)


def find_alert(conn: Connection, *, tenant: str, alert_id: str) -> AlertRow | None:
    r = conn.execute(select(alerts).where(alerts.c.tenant == tenant, alerts.c.id == alert_id)).first()
    return None if r is None else _row(r)


def find_alerts(conn: Connection, *, tenant: str, ids: Iterable[str]) -> dict[str, AlertRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = conn.execute(select(alerts).where(alerts.c.tenant == tenant, alerts.c.id.in_(wanted)))
    return {r.id: _row(r) for r in rows}


def list_active(conn: Connection, *, tenant: str) -> list[AlertRow]:
    rows = conn.execute(select(alerts).where(alerts.c.tenant == tenant, alerts.c.state.in_(ACTIVE_STATES)))
    return [_row(r) for r in rows]


_ACK_COLUMNS = ("acked_by", "acked_at", "ack_comment")


def save_alert(conn: Connection, row: AlertRow, *, new: bool, reset_ack: bool = False) -> None:
    """Insert or update the evaluator's columns; an acknowledgement (written by people meanwhile) is kept unless
    `reset_ack` (a new firing episode starts unacknowledged)."""
    values = row.values()
    if new:
        conn.execute(alerts.insert().values(**values))
        return
    if not reset_ack:
        for name in _ACK_COLUMNS:
            values.pop(name)
    conn.execute(update(alerts).where(alerts.c.id == row.id, alerts.c.tenant == row.tenant).values(**values))


_STATE_ORDER = case(
    (alerts.c.state == "firing", 0), (alerts.c.state == "pending", 1), (alerts.c.state == "resolved", 2), else_=3
)
_LEVEL_ORDER = case(*((alerts.c.level == name, rank) for name, rank in LEVEL_RANK.items()), else_=9)


def list_alerts(
    conn: Connection, *, tenant: str, states: Sequence[str], level: str | None = None, limit: int = 200
) -> list[AlertRow]:
    """Firing first, then pending, resolved, inactive; within a state the most severe level, then the newest."""
    q = select(alerts).where(alerts.c.tenant == tenant, alerts.c.state.in_(list(states)))
    if level is not None:
        q = q.where(alerts.c.level == level)
    q = q.order_by(_STATE_ORDER, _LEVEL_ORDER, alerts.c.updated_at.desc(), alerts.c.id).limit(limit)
    return [_row(r) for r in conn.execute(q)]


def count_active(conn: Connection, *, tenant: str) -> dict[tuple[str, str], int]:
    """(level, state) -> how many alerts of the tenant are pending or firing."""
    q = (
        select(alerts.c.level, alerts.c.state, func.count())
        .where(alerts.c.tenant == tenant, alerts.c.state.in_(ACTIVE_STATES))
        .group_by(alerts.c.level, alerts.c.state)
    )
    return {(level, state): int(n) for level, state, n in conn.execute(q)}


def add_history(
    conn: Connection,
    *,
    tenant: str,
    alert_id: str,
    at: int,
    event: str,
    value: float | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        alert_history.insert().values(
            tenant=tenant,
            alert_id=alert_id,
            at=at,
            event=event,
            value=value,
            detail=json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True),
        )
    )


def list_history(
    conn: Connection, *, tenant: str, alert_id: str | None = None, since: int | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Newest first: the alert's history, or every alert's since `since`, with the alert's name and level."""
    q = (
        select(alert_history, alerts.c.name, alerts.c.level)
        .join(alerts, and_(alerts.c.id == alert_history.c.alert_id, alerts.c.tenant == alert_history.c.tenant))
        .where(alert_history.c.tenant == tenant)
    )
    if alert_id is not None:
        q = q.where(alert_history.c.alert_id == alert_id)
    if since is not None:
        q = q.where(alert_history.c.at >= since)
    q = q.order_by(alert_history.c.at.desc(), alert_history.c.pk.desc()).limit(limit)
    out = []
    for r in conn.execute(q):
        m = dict(r._mapping)
        m.pop("pk", None)
        m.pop("tenant", None)
        m["detail"] = json.loads(m["detail"]) if m["detail"] else {}
        out.append(m)
    return out


def acknowledge(conn: Connection, *, tenant: str, alert_id: str, by: str, comment: str, now: int) -> bool:
    done = conn.execute(
        update(alerts)
        .where(alerts.c.tenant == tenant, alerts.c.id == alert_id)
        .values(acked_by=by, acked_at=now, ack_comment=comment, updated_at=now)
    )
    if not done.rowcount:
        return False
    add_history(
        conn, tenant=tenant, alert_id=alert_id, at=now, event="acknowledged", detail={"by": by, "comment": comment}
    )
    return True


# --- silences ----------------------------------------------------------------------------------------------------


@dataclass
class SilenceRow:
    id: str
    tenant: str
    matchers: list[dict[str, Any]]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str
    created_at: int
    updated_at: int

    def state(self, now: int) -> str:
        """Alertmanager's silence states."""
        if self.ends_at <= now:
            return "expired"
        return "active" if self.starts_at <= now else "pending"


def _silence(r: Any) -> SilenceRow:
    m = dict(r._mapping)
    m["matchers"] = json.loads(m["matchers"])
    return SilenceRow(**m)


def insert_silence(conn: Connection, row: SilenceRow) -> None:
    values = dict(row.__dict__)
    values["matchers"] = json.dumps(row.matchers, ensure_ascii=False)
    conn.execute(alert_silences.insert().values(**values))


def find_silence(conn: Connection, *, tenant: str, silence_id: str) -> SilenceRow | None:
    r = conn.execute(
        select(alert_silences).where(alert_silences.c.tenant == tenant, alert_silences.c.id == silence_id)
    ).first()
    return None if r is None else _silence(r)


def list_silences(conn: Connection, *, tenant: str, active_at: int | None = None, limit: int = 500) -> list[SilenceRow]:
    """Every silence of the tenant (newest first), or those in force at `active_at`."""
    q = select(alert_silences).where(alert_silences.c.tenant == tenant)
    if active_at is not None:
        q = q.where(alert_silences.c.starts_at <= active_at, alert_silences.c.ends_at > active_at)
    q = q.order_by(alert_silences.c.created_at.desc(), alert_silences.c.id).limit(limit)
    return [_silence(r) for r in conn.execute(q)]


def expire_silence(conn: Connection, *, tenant: str, silence_id: str, now: int) -> bool:
    """End the silence now (a silence that already ended keeps its end)."""
    done = conn.execute(
        update(alert_silences)
        .where(alert_silences.c.tenant == tenant, alert_silences.c.id == silence_id, alert_silences.c.ends_at > now)
        .values(ends_at=now, updated_at=now)
    )
    return bool(done.rowcount)


# --- what the conditions read besides events ----------------------------------------------------------------------


def tenants_to_evaluate(conn: Connection, *, default_tenant: str) -> list[str]:
    """Every tenant that can have data: the default tenant, the tenants of API keys (revoked ones too: their data
    stays), and any tenant with an active alert or a dead-lettered notification. Small tables only: the events
    table is never scanned for its tenants."""
    q = union(
        select(api_keys.c.tenant).distinct(),
        select(alerts.c.tenant).where(alerts.c.state.in_(ACTIVE_STATES)).distinct(),
        select(alert_notifications.c.tenant).where(alert_notifications.c.state == "dead").distinct(),
    )
    return sorted({default_tenant, *(r[0] for r in conn.execute(q))})


def dead_notifications(conn: Connection, *, tenant: str, since: int, exclude_alert: str) -> dict[str, int]:
    """receiver -> dead-lettered notifications of the tenant created since `since` and not re-sent, leaving out
    those of the alert named `exclude_alert` (a dead receiver must not page about its own dead letters forever)."""
    q = (
        select(alert_notifications.c.receiver, func.count())
        .join(
            alerts, and_(alerts.c.id == alert_notifications.c.alert_id, alerts.c.tenant == alert_notifications.c.tenant)
        )
        .where(
            alert_notifications.c.tenant == tenant,
            alert_notifications.c.state == "dead",
            alert_notifications.c.created_at >= since,
            alerts.c.name != exclude_alert,
        )
        .group_by(alert_notifications.c.receiver)
    )
    return {receiver: int(n) for receiver, n in conn.execute(q)}


def last_release(conn: Connection, *, tenant: str, source: str, since: int) -> tuple[str, int] | None:
    """The release of the newest event of `source` that carries one, since `since`, and when it was seen."""
    q = (
        select(events.c.release, events.c.occurred_at)
        .where(
            events.c.tenant == tenant,
            events.c.source == source,
            events.c.occurred_at >= since,
            events.c.release.is_not(None),
        )
        .order_by(events.c.occurred_at.desc())
        .limit(1)
    )
    r = conn.execute(q).first()
    return None if r is None else (str(r[0]), int(r[1]))


def last_rule_activation(conn: Connection, *, tenant: str) -> int | None:
    """When a rule pack reaching this tenant (its own or the global one) was last activated."""
    scopes = ("global", f"tenant:{tenant}")  # rulepacks.rulebook's scope names
    q = select(func.max(rule_activations.c.updated_at)).where(rule_activations.c.scope.in_(scopes))
    value = conn.execute(q).scalar()
    return None if value is None else int(value)


def recurring_failures(conn: Connection, *, tenant: str, since: int, end: int, min_count: int) -> list[dict[str, Any]]:
    """Actionable failures since `since` grouped by source, environment, class, kind, category and fingerprint, the
    groups of at least `min_count` (most first)."""
    e = events.c
    n = func.count().label("n")
    q = (
        select(e.source, e.environment, e.failure_class, e.failure_kind, e.category, e.fingerprint_id, n)
        .where(
            e.tenant == tenant,
            e.occurred_at >= since,
            e.occurred_at < end,
            e.is_actionable.is_(True),
            e.failure_class != "none",
        )
        .group_by(e.source, e.environment, e.failure_class, e.failure_kind, e.category, e.fingerprint_id)
        .having(func.count() >= min_count)
        .order_by(n.desc())
        .limit(200)
    )
    return [dict(r._mapping) for r in conn.execute(q)]


def retry_loops(conn: Connection, *, tenant: str, since: int, end: int, min_attempts: int) -> list[dict[str, Any]]:
    """Retried work since `since` that makes no progress, per source, operation and fingerprint (the same reason):
    `retries` retry events, the highest attempt seen and the max_attempts they carry, `past_max` retries beyond
    their max_attempts, and `successes` of the same source and operation in the window (progress)."""
    e = events.c
    # A literal, not a bound parameter: PostgreSQL must see the grouped expression and the selected one as equal.
    operation = func.coalesce(e.operation, literal_column("''"))
    retries = (
        select(
            e.source,
            operation.label("operation"),
            e.fingerprint_id,
            func.count().label("retries"),
            func.max(e.attempt).label("max_attempt"),
            func.max(e.max_attempts).label("max_attempts"),
            func.sum(case((and_(e.max_attempts.is_not(None), e.attempt > e.max_attempts), 1), else_=0)).label(
                "past_max"
            ),
        )
        .where(e.tenant == tenant, e.occurred_at >= since, e.occurred_at < end, e.status == "retry")
        .group_by(e.source, operation, e.fingerprint_id)
        .having(
            or_(
                func.count() >= min_attempts,
                func.max(e.attempt) >= min_attempts,
                func.sum(case((and_(e.max_attempts.is_not(None), e.attempt > e.max_attempts), 1), else_=0)) > 0,
            )
        )
        .limit(200)
    )
    rows = [dict(r._mapping) for r in conn.execute(retries)]
    if not rows:
        return []
    ok = (
        select(e.source, operation.label("operation"), func.count())
        .where(e.tenant == tenant, e.occurred_at >= since, e.occurred_at < end, e.status == "success")
        .where(e.source.in_(sorted({r["source"] for r in rows})))
        .group_by(e.source, operation)
    )
    successes = {(s, op): int(n) for s, op, n in conn.execute(ok)}
    for r in rows:
        r["successes"] = successes.get((r["source"], r["operation"]), 0)
    return rows


def prune(conn: Connection, *, delivered_before: int, history_before: int, limit: int = 10_000) -> tuple[int, int]:
    """Delete delivered notifications and history older than the bounds, at most `limit` of each per call (the
    outbox grows by a row per minute per firing alert for Alertmanager API receivers). Dead and pending rows stay:
    they are the evidence of what was not delivered."""
    n = alert_notifications.c
    old = select(n.id).where(n.state == "delivered", n.created_at < delivered_before).limit(limit)
    notifications = conn.execute(alert_notifications.delete().where(n.id.in_(old.scalar_subquery()))).rowcount
    h = alert_history.c
    old_history = select(h.pk).where(h.at < history_before).limit(limit)
    history = conn.execute(alert_history.delete().where(h.pk.in_(old_history.scalar_subquery()))).rowcount
    return int(notifications or 0), int(history or 0)


def group_alert_levels(conn: Connection, *, tenant: str) -> dict[str, tuple[str, str]]:
    """group id -> (the most severe level, the owner) of the alerts that named the failure group (a `group_id`
    label) and fired at some time: pending-only alerts never reached anyone."""
    a = alerts.c
    rows = conn.execute(
        select(a.level, a.labels, a.annotations).where(
            a.tenant == tenant, a.starts_at.is_not(None), a.labels.like('%"group_id"%')
        )
    )
    out: dict[str, tuple[str, str]] = {}
    for level, labels, notes in rows:
        gid = json.loads(labels).get("group_id")
        if not gid:
            continue
        owner = str(json.loads(notes).get("owner") or "")
        held = out.get(gid)
        if held is None or level < held[0]:  # P0 < P1 < P2
            out[gid] = (level, owner)
    return out
