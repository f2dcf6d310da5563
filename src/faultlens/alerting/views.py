"""What people do with alerts (list, look at, acknowledge, silence, re-send), for the API and the CLI alike."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from faultlens.alert_model import ACTIVE_STATES, RESPONSE_MINUTES, AlertState
from faultlens.alerting import matchers
from faultlens.errors import AlertNotFound, InvalidRequest, SilenceNotFound, param_details
from faultlens.store import alerts as store
from faultlens.store import notifications as outbox
from faultlens.store.alerts import AlertRow, SilenceRow
from faultlens.store.notifications import StoredNotification
from faultlens.timeutil import ms_to_rfc3339, now_ms

STATE_FILTERS = ("active", "firing", "pending", "resolved", "inactive", "all")
SILENCE_STATES = ("active", "pending", "expired", "all")
MAX_SILENCE_MS = 366 * 86_400_000
MAX_COMMENT = 2_000


def states_for(state: str) -> tuple[str, ...]:
    if state == "active":
        return ACTIVE_STATES
    if state == "all":
        return tuple(s.value for s in AlertState)
    return (state,)


def alert_to_api(row: AlertRow) -> dict[str, Any]:
    a = row.annotations
    return {
        "id": row.id,
        "name": row.name,
        "level": row.level,
        "state": row.state,
        "labels": row.labels,
        "summary": a.get("summary", ""),
        "description": a.get("description", ""),
        "owner": a.get("owner"),
        "runbook_url": a.get("runbook_url"),
        "response_minutes": RESPONSE_MINUTES.get(row.level),
        "last_change": {
            "release": a.get("last_release"),
            "release_seen_at": ms_to_rfc3339(a.get("last_release_seen_at")),
            "rule_version": a.get("rule_version"),
            "rule_activated_at": ms_to_rfc3339(a.get("rule_activated_at")),
        },
        "value": row.value,
        "threshold": row.threshold,
        "active_since": ms_to_rfc3339(row.active_since),
        "starts_at": ms_to_rfc3339(row.starts_at),
        "ends_at": ms_to_rfc3339(row.ends_at),
        "last_seen_at": ms_to_rfc3339(row.last_seen_at),
        "last_notified_at": ms_to_rfc3339(row.last_notified_at),
        "episode": row.episode,
        "silenced_by": row.silenced_by,
        "acknowledged": (
            {"by": row.acked_by, "at": ms_to_rfc3339(row.acked_at), "comment": row.ack_comment or ""}
            if row.acked_at is not None
            else None
        ),
    }


def silence_to_api(row: SilenceRow, *, now: int) -> dict[str, Any]:
    """Alertmanager's silence shape (matchers, startsAt/endsAt as starts_at/ends_at, status.state)."""
    return {
        "id": row.id,
        "matchers": row.matchers,
        "starts_at": ms_to_rfc3339(row.starts_at),
        "ends_at": ms_to_rfc3339(row.ends_at),
        "created_by": row.created_by,
        "comment": row.comment,
        "created_at": ms_to_rfc3339(row.created_at),
        "status": {"state": row.state(now)},
    }


def list_alerts(
    engine: Engine, *, tenant: str, state: str = "active", level: str | None = None, limit: int = 200
) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = store.list_alerts(conn, tenant=tenant, states=states_for(state), level=level, limit=limit)
        counts = store.count_active(conn, tenant=tenant)
    by_state: dict[str, dict[str, int]] = {s: {lv: 0 for lv in ("P0", "P1", "P2")} for s in ACTIVE_STATES}
    for (level_, state_), n in counts.items():
        by_state.setdefault(state_, {})[level_] = n
    return {
        "generated_at": ms_to_rfc3339(now_ms()),
        "state": state,
        "level": level,
        "counts": by_state,
        "alerts": [alert_to_api(r) for r in rows],
    }


def get_alert(engine: Engine, *, tenant: str, alert_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = store.find_alert(conn, tenant=tenant, alert_id=alert_id)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id!r}")
        history = store.list_history(conn, tenant=tenant, alert_id=alert_id, limit=200)
        sent = outbox.list_notifications(conn, tenant=tenant, alert_id=alert_id, limit=200)
    out = alert_to_api(row)
    out["history"] = [_history_to_api(h) for h in history]
    out["notifications"] = [notification_to_api(n) for n in sent]
    return out


def _history_to_api(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": h["alert_id"],
        "name": h.get("name"),
        "level": h.get("level"),
        "at": ms_to_rfc3339(h["at"]),
        "event": h["event"],
        "value": h.get("value"),
        "detail": h.get("detail") or {},
    }


def history(engine: Engine, *, tenant: str, since: int, limit: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = store.list_history(conn, tenant=tenant, since=since, limit=limit)
    return {"since": ms_to_rfc3339(since), "items": [_history_to_api(h) for h in rows]}


def notification_to_api(n: StoredNotification) -> dict[str, Any]:
    return {
        "id": n.id,
        "alert_id": n.alert_id,
        "receiver": n.receiver,
        "kind": n.kind,
        "state": n.state,
        "attempts": n.attempts,
        "last_status": n.last_status,
        "last_error": n.last_error,
        "created_at": ms_to_rfc3339(n.created_at),
        "due_at": ms_to_rfc3339(n.due_at),
        "delivered_at": ms_to_rfc3339(n.delivered_at),
    }


def acknowledge(engine: Engine, *, tenant: str, alert_id: str, by: str, comment: str) -> dict[str, Any]:
    _check_comment(comment, required=False)
    now = now_ms()
    with engine.begin() as conn:
        if not store.acknowledge(conn, tenant=tenant, alert_id=alert_id, by=by, comment=comment, now=now):
            raise AlertNotFound(f"no alert {alert_id!r}")
        row = store.find_alert(conn, tenant=tenant, alert_id=alert_id)
    assert row is not None
    return alert_to_api(row)


def _check_comment(comment: str, *, required: bool) -> None:
    if required and not comment.strip():
        message = "a silence needs a comment: why, and until when it is safe"
        raise InvalidRequest(message, details=param_details("comment", message, location="body"))
    if len(comment) > MAX_COMMENT:
        message = f"comment is longer than {MAX_COMMENT} characters"
        raise InvalidRequest(message, details=param_details("comment", message, location="body"))


def create_silence(
    engine: Engine,
    *,
    tenant: str,
    matcher_items: Sequence[str | dict[str, Any]],
    starts_at: int | None,
    ends_at: int,
    created_by: str,
    comment: str,
) -> dict[str, Any]:
    now = now_ms()
    if not matcher_items:
        message = "a silence needs at least one matcher (e.g. alertname=failure_spike)"
        raise InvalidRequest(message, details=param_details("matchers", message, location="body"))
    parsed = matchers.parse_matchers(list(matcher_items))
    _check_comment(comment, required=True)
    start = now if starts_at is None else starts_at
    if ends_at <= max(start, now):
        message = "ends_at must be after starts_at and in the future"
        raise InvalidRequest(message, details=param_details("ends_at", message, location="body"))
    if ends_at - start > MAX_SILENCE_MS:
        message = "a silence lasts at most 366 days"
        raise InvalidRequest(message, details=param_details("ends_at", message, location="body"))
    row = SilenceRow(
        id=str(uuid.uuid4()),
        tenant=tenant,
        matchers=[m.as_dict() for m in parsed],
        starts_at=start,
        ends_at=ends_at,
        created_by=created_by[:128],
        comment=comment,
        created_at=now,
        updated_at=now,
    )
    with engine.begin() as conn:
        store.insert_silence(conn, row)
    return silence_to_api(row, now=now)


def list_silences(engine: Engine, *, tenant: str, state: str = "all") -> dict[str, Any]:
    now = now_ms()
    with engine.connect() as conn:
        rows = store.list_silences(conn, tenant=tenant)
    items = [silence_to_api(r, now=now) for r in rows if state == "all" or r.state(now) == state]
    return {"items": items}


def expire_silence(engine: Engine, *, tenant: str, silence_id: str) -> dict[str, Any]:
    now = now_ms()
    with engine.begin() as conn:
        row = store.find_silence(conn, tenant=tenant, silence_id=silence_id)
        if row is None:
            raise SilenceNotFound(f"no silence {silence_id!r}")
        store.expire_silence(conn, tenant=tenant, silence_id=silence_id, now=now)
        row = store.find_silence(conn, tenant=tenant, silence_id=silence_id)
    assert row is not None
    return silence_to_api(row, now=now)


def list_notifications(engine: Engine, *, tenant: str, state: str | None, limit: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = outbox.list_notifications(conn, tenant=tenant, state=state, limit=limit)
    return {"items": [notification_to_api(n) for n in rows]}


def resend(engine: Engine, *, tenant: str, notification_id: str) -> dict[str, Any]:
    """A dead-lettered notification goes back to the outbox, its tries counted from zero."""
    with engine.begin() as conn:
        found = outbox.resend(conn, tenant=tenant, notification_id=notification_id, now=now_ms())
    return notification_to_api(found)
