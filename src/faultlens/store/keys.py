"""API keys: creation (the secret is shown once, only its hash is kept), lookup, revocation, anonymous open mode."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from faultlens.errors import Conflict, InvalidRequest, NotFound
from faultlens.store.state import delete_state, find_states, save_state_once
from faultlens.store.tables import api_keys
from faultlens.timeutil import now_ms

SCOPES = ("ingest", "read", "admin", "operator")  # operator: the global rule pack; never implied by admin
KEY_PREFIX = "flk_"
# A tenant name: printable, no spaces or line breaks (it appears in logs, metrics labels and file names).
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# service_state rows. The first is written when the first key is created (or an operator closes open mode), so
# the database never falls back to anonymous access when its last key is revoked or its row deleted; the second
# is an operator's explicit re-opening.
CLOSED_STATE = "auth.anonymous_closed_at"
OPEN_MODE_STATE = "auth.open_mode_enabled_at"


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: Connection, *, tenant: str, scopes: list[str], name: str | None = None) -> tuple[ApiKey, str]:
    """Returns the key record and its secret, which is not stored and cannot be shown again."""
    bad = sorted(set(scopes) - set(SCOPES))
    if bad or not scopes:
        raise InvalidRequest(f"scopes must be among {', '.join(SCOPES)}", details={"scopes": bad})
    if not TENANT_NAME.fullmatch(tenant):
        raise InvalidRequest(
            "tenant must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            code="invalid_tenant",
            details={"tenant": tenant[:100]},
        )
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    conn.execute(
        api_keys.insert().values(
            id=key_id,
            tenant=tenant,
            scopes=",".join(sorted(set(scopes))),
            key_hash=_hash(secret),
            name=name,
            created_at=now_ms(),
        )
    )
    _close_anonymous(conn)
    return ApiKey(key_id, tenant, frozenset(scopes), name), secret


def find_key(conn: Connection, *, secret: str) -> ApiKey | None:
    row = (
        conn.execute(select(api_keys).where(api_keys.c.key_hash == _hash(secret), api_keys.c.revoked_at.is_(None)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return ApiKey(row["id"], row["tenant"], frozenset(row["scopes"].split(",")), row["name"])


def find_key_any(conn: Connection, *, secret: str) -> tuple[ApiKey, int | None] | None:
    """The key of `secret` and its revoked_at (None while active), revoked or not; None when no tenant has it.

    Only for telling a revoked key from an unknown one after find_key refused it (the security signals);
    find_key alone authenticates."""
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == _hash(secret))).mappings().first()
    if row is None:
        return None
    key = ApiKey(row["id"], row["tenant"], frozenset(row["scopes"].split(",")), row["name"])
    return key, row["revoked_at"]


def any_keys(conn: Connection) -> bool:
    """Whether an active (not revoked) key exists."""
    return conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)).first() is not None


def _mark(conn: Connection, key: str) -> None:
    # Insert-or-keep, so two processes creating their first keys at once both succeed.
    save_state_once(conn, key, str(now_ms()))


def _close_anonymous(conn: Connection) -> None:
    _mark(conn, CLOSED_STATE)
    delete_state(conn, OPEN_MODE_STATE)


def _states(conn: Connection) -> dict[str, str]:
    return find_states(conn, CLOSED_STATE, OPEN_MODE_STATE)


def anonymous_allowed(conn: Connection) -> bool:
    """Whether callers without a key are served: never once any key exists or has existed, unless an operator
    re-opened anonymous access explicitly (set_open_mode) after revoking every key."""
    if any_keys(conn):
        return False
    states = _states(conn)
    if OPEN_MODE_STATE in states:
        return True
    closed = CLOSED_STATE in states or conn.execute(select(api_keys.c.id).limit(1)).first() is not None
    return not closed


def open_mode_status(conn: Connection) -> dict[str, object]:
    states = _states(conn)
    active = conn.execute(select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))).scalar()
    return {
        "anonymous_allowed": anonymous_allowed(conn),
        "active_keys": int(active or 0),
        "open_mode_enabled": OPEN_MODE_STATE in states,
    }


def set_open_mode(conn: Connection, *, enabled: bool) -> None:
    """Enable or disable anonymous access explicitly.

    Enabling is refused while an active key exists (revoke them first) and is undone by creating a key.
    Disabling closes anonymous access even on a database that never had a key.
    """
    if not enabled:
        _close_anonymous(conn)
        return
    if any_keys(conn):
        raise Conflict("active API keys exist; revoke them before enabling anonymous access")
    _mark(conn, OPEN_MODE_STATE)


def list_keys(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def revoke_key(conn: Connection, *, key_id: str) -> None:
    done = conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now_ms()))
    if done.rowcount == 0:
        raise NotFound(f"no API key with id {key_id!r}")
