"""The alert outbox (alert_notifications): writing notifications, claiming due ones in batches, recording results.

A row goes pending -> delivered, or pending -> dead after its last try (and back to pending by `resend`). A batch
is what one HTTP call carries: rows of one receiver, tenant and group key, under one batch id that is also the
call's Idempotency-Key. The id is written before the call, so a crash between the claim and the result re-sends
the same rows under the same key and the receiver can tell it has them already.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.alert_model import Notification
from faultlens.errors import Conflict, NotificationNotFound
from faultlens.store.tables import alert_notifications

STATES = ("pending", "delivered", "dead")
# One HTTP call carries at most this many notifications (Alertmanager's own webhook batches are of this order).
MAX_BATCH = 100
# Rows per INSERT statement: SQLite binds at most 32766 parameters per statement, 15 per row here.
_INSERT_CHUNK = 500

_c = alert_notifications.c


@dataclass(frozen=True)
class StoredNotification:
    """One outbox row as stored. For a dead row `due_at` is when it was dead-lettered."""

    id: str
    tenant: str
    alert_id: str
    receiver: str
    kind: str
    group_key: str
    payload: Mapping[str, Any]
    state: str
    attempts: int
    created_at: int
    due_at: int
    batch_id: str | None
    last_status: int | None
    last_error: str | None
    delivered_at: int | None

    @property
    def notification(self) -> Notification:
        return Notification(
            id=self.id,
            tenant=self.tenant,
            alert_id=self.alert_id,
            receiver=self.receiver,
            kind="resolved" if self.kind == "resolved" else "firing",
            group_key=self.group_key,
            payload=self.payload,
            attempts=self.attempts,
            created_at=self.created_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "alert_id": self.alert_id,
            "receiver": self.receiver,
            "kind": self.kind,
            "group_key": self.group_key,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "due_at": self.due_at,
            "batch_id": self.batch_id,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True)
class Batch:
    """Rows sent in one HTTP call; `id` is the Idempotency-Key. `attempts` is the most any row has had."""

    id: str
    receiver: str
    tenant: str
    group_key: str
    rows: tuple[StoredNotification, ...]

    @property
    def attempts(self) -> int:
        return max((row.attempts for row in self.rows), default=0)

    @property
    def notifications(self) -> list[Notification]:
        return [row.notification for row in self.rows]


def _stored(row: Any) -> StoredNotification:
    m = row._mapping
    return StoredNotification(
        id=m["id"],
        tenant=m["tenant"],
        alert_id=m["alert_id"],
        receiver=m["receiver"],
        kind=m["kind"],
        group_key=m["group_key"],
        payload=json.loads(m["payload"]),
        state=m["state"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        due_at=m["due_at"],
        batch_id=m["batch_id"],
        last_status=m["last_status"],
        last_error=m["last_error"],
        delivered_at=m["delivered_at"],
    )


def _wait_of(row: Notification, group_wait_ms: Mapping[str, int] | int) -> int:
    if isinstance(group_wait_ms, int):
        return group_wait_ms
    if row.id in group_wait_ms:
        return int(group_wait_ms[row.id])
    return int(group_wait_ms.get(row.group_key, 0))


def insert_notifications(
    conn: Connection, rows: Sequence[Notification], *, now: int, group_wait_ms: Mapping[str, int] | int
) -> int:
    """Add pending rows due at now + their group wait; an id already in the outbox is kept as it is.

    `group_wait_ms` is one wait for all rows, or a mapping by notification id (else by group key; 0 when neither
    is there). Returns how many rows were new.
    """
    if not rows:
        return 0
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    inserted = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        values = [
            {
                "id": row.id,
                "tenant": row.tenant,
                "alert_id": row.alert_id,
                "receiver": row.receiver,
                "kind": row.kind,
                "group_key": row.group_key,
                "payload": json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False, default=str),
                "state": "pending",
                "attempts": 0,
                "created_at": row.created_at or now,
                "due_at": now + max(0, _wait_of(row, group_wait_ms)),
                "batch_id": None,
                "last_status": None,
                "last_error": None,
                "delivered_at": None,
            }
            for row in rows[start : start + _INSERT_CHUNK]
        ]
        stmt = insert(alert_notifications).values(values).on_conflict_do_nothing(index_elements=["id"]).returning(_c.id)
        inserted += len(conn.execute(stmt).all())
    return inserted


def claim_due(conn: Connection, *, now: int, limit: int) -> list[Batch]:
    """The pending rows due by `now` (about `limit` of them, oldest due first), in batches.

    Rows that already carry a batch id (claimed by a pass that did not record a result, or being retried) come
    back as that same batch, whole, so the receiver sees the same key with the same rows. The others are grouped
    by receiver, tenant and group key, at most MAX_BATCH a batch, and get a new batch id written here.
    """
    due = conn.execute(
        select(alert_notifications)
        .where(_c.state == "pending", _c.due_at <= now)
        .order_by(_c.due_at, _c.created_at, _c.id)
        .limit(limit)
    ).all()
    batch_ids = sorted({row.batch_id for row in due if row.batch_id is not None})
    batches: list[Batch] = []
    # A batch is re-sent whole even when the limit cut it: a part sent under its key would hide the rest.
    for batch_id in batch_ids:
        batch = _read_batch(conn, batch_id)
        if batch is not None:
            batches.append(batch)
    groups: dict[tuple[str, str, str], list[str]] = {}
    for row in due:
        if row.batch_id is None:
            groups.setdefault((row.receiver, row.tenant, row.group_key), []).append(row.id)
    for ids in groups.values():
        for start in range(0, len(ids), MAX_BATCH):
            batch_id = uuid.uuid4().hex
            conn.execute(
                update(alert_notifications)
                .where(_c.id.in_(ids[start : start + MAX_BATCH]), _c.batch_id.is_(None), _c.state == "pending")
                .values(batch_id=batch_id)
            )
            batch = _read_batch(conn, batch_id)
            if batch is not None:
                batches.append(batch)
    return batches


def _read_batch(conn: Connection, batch_id: str) -> Batch | None:
    rows = [
        _stored(row)
        for row in conn.execute(
            select(alert_notifications)
            .where(_c.batch_id == batch_id, _c.state == "pending")
            .order_by(_c.created_at, _c.id)
        )
    ]
    if not rows:
        return None
    first = rows[0]
    return Batch(id=batch_id, receiver=first.receiver, tenant=first.tenant, group_key=first.group_key, rows=tuple(rows))


def mark_delivered(conn: Connection, *, batch_id: str, now: int, status: int) -> int:
    """The receiver accepted the batch. Returns the rows changed."""
    result = conn.execute(
        update(alert_notifications)
        .where(_c.batch_id == batch_id, _c.state == "pending")
        .values(
            state="delivered",
            attempts=_c.attempts + 1,
            delivered_at=now,
            last_status=status,
            last_error=None,
        )
    )
    return int(result.rowcount or 0)


def mark_retry(conn: Connection, *, batch_id: str, due_at: int, status: int | None, error: str) -> int:
    """The batch failed; it keeps its id (and so its Idempotency-Key) and is tried again from `due_at`."""
    result = conn.execute(
        update(alert_notifications)
        .where(_c.batch_id == batch_id, _c.state == "pending")
        .values(attempts=_c.attempts + 1, due_at=due_at, last_status=status, last_error=error)
    )
    return int(result.rowcount or 0)


def mark_dead(conn: Connection, *, batch_id: str, now: int, status: int | None, error: str) -> int:
    """The batch failed its last try: dead-lettered (visible, and `resend` can bring it back)."""
    result = conn.execute(
        update(alert_notifications)
        .where(_c.batch_id == batch_id, _c.state == "pending")
        .values(state="dead", attempts=_c.attempts + 1, due_at=now, last_status=status, last_error=error)
    )
    return int(result.rowcount or 0)


def find_notification(conn: Connection, *, tenant: str, notification_id: str) -> StoredNotification | None:
    row = conn.execute(select(alert_notifications).where(_c.tenant == tenant, _c.id == notification_id)).first()
    return None if row is None else _stored(row)


def list_notifications(
    conn: Connection,
    *,
    tenant: str,
    state: str | None = None,
    alert_id: str | None = None,
    limit: int = 100,
) -> list[StoredNotification]:
    """The tenant's outbox rows, newest first."""
    stmt = select(alert_notifications).where(_c.tenant == tenant)
    if state is not None:
        stmt = stmt.where(_c.state == state)
    if alert_id is not None:
        stmt = stmt.where(_c.alert_id == alert_id)
    stmt = stmt.order_by(_c.created_at.desc(), _c.id.desc()).limit(limit)
    return [_stored(row) for row in conn.execute(stmt)]


def resend(conn: Connection, *, tenant: str, notification_id: str, now: int) -> StoredNotification:
    """Bring a dead notification back: pending, due now, no attempts, and a new batch (so a new key).

    Raises NotificationNotFound (not this tenant's, or no such id) and Conflict when it is not dead.
    """
    found = find_notification(conn, tenant=tenant, notification_id=notification_id)
    if found is None:
        raise NotificationNotFound(f"no notification {notification_id!r}", details={"id": notification_id})
    if found.state != "dead":
        raise Conflict(
            f"notification {notification_id!r} is {found.state}: only dead ones are re-sent",
            details={"id": notification_id, "state": found.state},
        )
    conn.execute(
        update(alert_notifications)
        .where(_c.tenant == tenant, _c.id == notification_id, _c.state == "dead")
        .values(state="pending", attempts=0, due_at=now, batch_id=None, delivered_at=None)
    )
    refreshed = find_notification(conn, tenant=tenant, notification_id=notification_id)
    assert refreshed is not None
    return refreshed


def count_pending(conn: Connection) -> int:
    """Every tenant's rows not yet delivered nor dead (the sender's backlog)."""
    stmt = select(func.count()).select_from(alert_notifications).where(_c.state == "pending")
    return int(conn.execute(stmt).scalar_one())


def count_dead_since(conn: Connection, *, tenant: str, since: int) -> list[tuple[str, str, int]]:
    """(receiver, alert name, rows) for the tenant's notifications dead-lettered at or after `since`."""
    rows = conn.execute(
        select(_c.receiver, _c.payload).where(_c.tenant == tenant, _c.state == "dead", _c.due_at >= since)
    ).all()
    counts: dict[tuple[str, str], int] = {}
    for receiver, payload in rows:
        # The alert name lives in the JSON payload; parsed here so the query is the same on both databases.
        try:
            name = str(json.loads(payload).get("name") or "")
        except (ValueError, AttributeError):
            name = ""
        counts[(receiver, name)] = counts.get((receiver, name), 0) + 1
    return [(receiver, name, n) for (receiver, name), n in sorted(counts.items())]
