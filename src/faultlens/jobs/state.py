"""Service-state documents read and written inside the caller's transaction (jobs need them atomic)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, text, update

from faultlens.store.tables import service_state
from faultlens.timeutil import now_ms

ACTIVE_RULE_VERSION = "active_rule_version"
ACTIVATED_PACK = "activated_rule_pack"  # before migration 0005; now rule_activations' global row
# A token rewritten with every change of rule_activations: replicas poll this one row to learn of activations.
RULES_GENERATION = "rule_activations_generation"
ROLLUPS_REBUILD_NEEDED = "rollups_rebuild_needed"


def find_state(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(select(service_state.c.value).where(service_state.c.key == key)).scalar()
    return value


def put_state(conn: Connection, key: str, value: str) -> None:
    # UPDATE first, INSERT when absent: portable, and the row lock taken by the UPDATE serialises writers.
    now = now_ms()
    done = conn.execute(update(service_state).where(service_state.c.key == key).values(value=value, updated_at=now))
    if done.rowcount == 0:
        conn.execute(service_state.insert().values(key=key, value=value, updated_at=now))


def swap_state(conn: Connection, key: str, expected: str, value: str) -> bool:
    """Set `key` to `value` only if it holds `expected`; True when this caller made the change."""
    done = conn.execute(
        update(service_state)
        .where(service_state.c.key == key, service_state.c.value == expected)
        .values(value=value, updated_at=now_ms())
    )
    return bool(done.rowcount == 1)


def delete_state(conn: Connection, key: str) -> None:
    conn.execute(delete(service_state).where(service_state.c.key == key))


def state_values(conn: Connection, *keys: str) -> dict[str, Any]:
    rows = conn.execute(select(service_state.c.key, service_state.c.value).where(service_state.c.key.in_(keys)))
    return {k: v for k, v in rows}


# Any constant: only faultlens takes this PostgreSQL advisory lock.
_PG_LOCK_KEY = 0x66617574


def write_lock(conn: Connection) -> None:
    """Serialise this transaction with other faultlens writers of jobs and state, across processes.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write that matches nothing, which takes the
    database's write lock now rather than at the first real write, so what is read next is still current
    when it is written.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        conn.execute(text("UPDATE service_state SET value = value WHERE 1 = 0"))
