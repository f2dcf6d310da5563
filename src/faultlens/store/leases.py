"""The leases table: a duty that must run on one process at a time is held by the process that renewed it last."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.tables import leases


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: int
    renewed_at: int
    expires_at: int

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "holder": self.holder,
            "acquired_at": self.acquired_at,
            "renewed_at": self.renewed_at,
            "expires_at": self.expires_at,
        }


def acquire(conn: Connection, *, name: str, holder: str, ttl_ms: int, now: int) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl_ms; False when another holder's is unexpired.

    One statement: insert the row, or update it when it is ours or has expired. The row lock the update takes
    makes two processes racing for an expired lease end with one holder.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(leases).values(name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl_ms)
    excluded = stmt.excluded
    ours = leases.c.holder == holder
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "holder": excluded.holder,
            # A renewal keeps the time it was first acquired; a takeover starts a new one.
            "acquired_at": case((ours, leases.c.acquired_at), else_=excluded.acquired_at),
            "renewed_at": excluded.renewed_at,
            "expires_at": excluded.expires_at,
        },
        where=ours | (leases.c.expires_at < now),
    )
    conn.execute(stmt)
    row = conn.execute(select(leases.c.holder).where(leases.c.name == name)).first()
    return row is not None and row[0] == holder


def release(conn: Connection, *, name: str, holder: str) -> bool:
    """Give the lease up (graceful stop), so another process takes it at once instead of after expiry."""
    result = conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))
    return bool(result.rowcount)


def expire(conn: Connection, *, name: str) -> None:
    """Mark the lease expired whoever holds it (tests and `faultlens` operators moving a duty by hand)."""
    conn.execute(update(leases).where(leases.c.name == name).values(expires_at=0))


def find_lease(conn: Connection, name: str) -> Lease | None:
    row = conn.execute(select(leases).where(leases.c.name == name)).first()
    return None if row is None else Lease(**row._mapping)


def list_leases(conn: Connection) -> list[Lease]:
    return [Lease(**row._mapping) for row in conn.execute(select(leases).order_by(leases.c.name))]
