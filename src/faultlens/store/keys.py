"""API keys: creation (the secret is shown once, only its hash is kept), lookup, revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from faultlens.errors import InvalidRequest, NotFound
from faultlens.store.tables import api_keys
from faultlens.timeutil import now_ms

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "flk_"


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
    if not tenant or len(tenant) > 64:
        raise InvalidRequest("tenant must be 1 to 64 characters")
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


def any_keys(conn: Connection) -> bool:
    return conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)).first() is not None


def list_keys(conn: Connection) -> list[dict[str, object]]:
    rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def revoke_key(conn: Connection, *, key_id: str) -> None:
    done = conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now_ms()))
    if done.rowcount == 0:
        raise NotFound(f"no API key with id {key_id!r}")
