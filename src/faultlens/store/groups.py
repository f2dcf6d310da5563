"""Failure group rows: lifecycle state, member overrides, activity, and the template and event reads groups need."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store import events as event_store
from faultlens.store.tables import api_keys, events, failure_groups, fingerprints, group_activity, group_members

_IN_CHUNK = 500  # ids per query: far below every driver's bound-parameter limit
STATE_FIELDS = (
    "status",
    "resolved_at",
    "regressed_at",
    "ignored_at",
    "ignore_until",
    "ignore_count",
    "ignore_base",
    "assignee",
)


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + _IN_CHUNK]) for i in range(0, len(ids), _IN_CHUNK)]


def _upsert(conn: Connection, table: Any, values: dict[str, Any], keys: Sequence[str]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    changed = {k: v for k, v in values.items() if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changed))


# -- lifecycle state -----------------------------------------------------------------------------------------------


def list_states(conn: Connection, *, tenant: str) -> dict[str, dict[str, Any]]:
    """Every state row of the tenant's groups, by group id (rows exist only for groups someone acted on)."""
    rows = conn.execute(select(failure_groups).where(failure_groups.c.tenant == tenant)).mappings()
    return {r["id"]: dict(r) for r in rows}


def find_state(conn: Connection, *, tenant: str, group_id: str) -> dict[str, Any] | None:
    g = failure_groups.c
    row = conn.execute(select(failure_groups).where(g.tenant == tenant, g.id == group_id)).mappings().first()
    return dict(row) if row is not None else None


def save_state(conn: Connection, *, tenant: str, group_id: str, values: Mapping[str, Any], by: str, at: int) -> None:
    """Write a group's state: `values` among STATE_FIELDS (the others keep theirs; an open row starts a new one)."""
    unknown = set(values) - set(STATE_FIELDS)
    if unknown:
        raise ValueError(f"not group state fields: {sorted(unknown)}")
    current = find_state(conn, tenant=tenant, group_id=group_id) or {"status": "open"}
    row = {name: current.get(name) for name in STATE_FIELDS} | dict(values)
    _upsert(
        conn,
        failure_groups,
        {"tenant": tenant, "id": group_id, **row, "updated_at": at, "updated_by": by},
        ("tenant", "id"),
    )


def swap_status(
    conn: Connection,
    *,
    tenant: str,
    group_id: str,
    expected: Mapping[str, Any],
    values: Mapping[str, Any],
    by: str,
    at: int,
) -> bool:
    """Change a group's state only if its row still holds `expected` (a person may have acted since the read);
    whether it changed."""
    g = failure_groups.c
    held = [g[k].is_(None) if v is None else g[k] == v for k, v in expected.items()]
    conds = [g.tenant == tenant, g.id == group_id, *held]
    done = conn.execute(update(failure_groups).where(*conds).values(**values, updated_at=at, updated_by=by))
    return bool(done.rowcount)


def list_states_with_status(conn: Connection, *, statuses: Collection[str]) -> list[dict[str, Any]]:
    """Every tenant's group states in one of `statuses` (the lifecycle duty's candidates)."""
    g = failure_groups.c
    rows = conn.execute(select(failure_groups).where(g.status.in_(list(statuses))).order_by(g.tenant, g.id))
    return [dict(r) for r in rows.mappings()]


# -- member overrides ----------------------------------------------------------------------------------------------


def list_overrides(conn: Connection, *, tenant: str) -> dict[str, str]:
    """fingerprint id -> group id of the tenant's merges and splits."""
    m = group_members.c
    return {fid: gid for fid, gid in conn.execute(select(m.fingerprint_id, m.group_id).where(m.tenant == tenant))}


def set_overrides(conn: Connection, *, tenant: str, members: Mapping[str, str], at: int) -> None:
    """Put each fingerprint id of `members` into its group (its own id too: the fingerprinter may have merged it)."""
    for fid, gid in members.items():
        _upsert(
            conn,
            group_members,
            {"tenant": tenant, "fingerprint_id": fid, "group_id": gid, "updated_at": at},
            ("tenant", "fingerprint_id"),
        )


def repoint_overrides(conn: Connection, *, tenant: str, from_ids: Collection[str], to_id: str, at: int) -> None:
    """Overrides into any of `from_ids` now name `to_id` (their group was merged into it)."""
    m = group_members.c
    for chunk in _chunks(sorted(from_ids)):
        conn.execute(
            update(group_members).where(m.tenant == tenant, m.group_id.in_(chunk)).values(group_id=to_id, updated_at=at)
        )


# -- activity ------------------------------------------------------------------------------------------------------


def add_activity(
    conn: Connection, *, tenant: str, group_id: str, actor: str, action: str, detail: Mapping[str, Any], at: int
) -> None:
    conn.execute(
        insert(group_activity).values(
            tenant=tenant, group_id=group_id, at=at, actor=actor, action=action, detail=orjson.dumps(detail).decode()
        )
    )


def list_activity(conn: Connection, *, tenant: str, group_id: str, limit: int) -> list[dict[str, Any]]:
    """The group's activity, newest first."""
    a = group_activity.c
    stmt = (
        select(a.at, a.actor, a.action, a.detail)
        .where(a.tenant == tenant, a.group_id == group_id)
        .order_by(a.id.desc())
        .limit(limit)
    )
    return [
        {"at": at, "actor": actor, "action": action, "detail": orjson.loads(detail)}
        for at, actor, action, detail in conn.execute(stmt)
    ]


# -- templates and events ------------------------------------------------------------------------------------------


def list_templates_seen_since(conn: Connection, *, tenant: str, since: int) -> dict[str, int]:
    """fingerprint id -> last_seen of the tenant's templates seen after `since` (an index range)."""
    fp = fingerprints.c
    stmt = select(fp.id, fp.last_seen).where(fp.tenant == tenant, fp.last_seen > since)
    return {fid: int(last) for fid, last in conn.execute(stmt)}


def first_event_after(conn: Connection, *, tenant: str, fingerprint_ids: Sequence[str], after: int) -> int | None:
    """The earliest occurred_at after `after` among events of those templates, or None."""
    e = events.c
    found: list[int] = []
    for chunk in _chunks(fingerprint_ids):
        stmt = select(func.min(e.occurred_at)).where(
            e.tenant == tenant, e.fingerprint_id.in_(chunk), e.occurred_at > after
        )
        value = conn.execute(stmt).scalar()
        if value is not None:
            found.append(int(value))
    return min(found) if found else None


def list_samples(
    conn: Connection, *, tenant: str, fingerprint_ids: Sequence[str], start: int, end: int, limit: int
) -> list[str]:
    """Up to `limit` distinct (stored, so redacted) messages of those templates' events in [start, end), newest
    first; a bounded read of the newest events."""
    e = events.c
    seen: dict[str, None] = {}
    for chunk in _chunks(fingerprint_ids):
        stmt = (
            select(e.error_message, e.error_code)
            .where(e.tenant == tenant, e.fingerprint_id.in_(chunk), e.occurred_at >= start, e.occurred_at < end)
            .order_by(e.occurred_at.desc())
            .limit(limit * 20)
        )
        for message, code in conn.execute(stmt):
            text = message or code
            if text and len(seen) < limit:
                seen.setdefault(text, None)
    return list(seen)


def list_group_events(
    conn: Connection,
    *,
    tenant: str,
    fingerprint_ids: Sequence[str],
    start: int,
    end: int,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Events of those templates in [start, end), newest first, paged like the event list (same cursor)."""
    e = events.c
    where = [e.tenant == tenant, e.occurred_at >= start, e.occurred_at < end, e.fingerprint_id.in_(fingerprint_ids)]
    if cursor:
        occurred, pk = event_store.decode_cursor(cursor)
        where.append(or_(e.occurred_at < occurred, and_(e.occurred_at == occurred, e.pk < pk)))
    stmt = select(events).where(*where).order_by(e.occurred_at.desc(), e.pk.desc()).limit(limit + 1)
    rows = conn.execute(stmt).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = event_store.encode_cursor(last["occurred_at"], last["pk"])
        rows = rows[:limit]
    return [event_store.row_to_event(r) for r in rows], next_cursor


def find_key_name(conn: Connection, *, key_id: str) -> str | None:
    """The name an API key was given (who a change is stamped with), or None."""
    name = conn.execute(select(api_keys.c.name).where(api_keys.c.id == key_id)).scalar()
    return str(name) if name else None
