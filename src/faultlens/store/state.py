"""Runtime state in the service_state table: the only module that reads or writes it, in the caller's transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.tables import service_state
from faultlens.timeutil import now_ms

# The keys, by owner. Others: auth.* (store/keys.py), attribute_rollups (store/rollup_reads.py), fingerprinter and
# fingerprinter:<tenant> with its version token fingerprint-version:<tenant> (fingerprinters.py).
# The global rule version stored history is (being) classified with (jobs/backfill.request_backfill).
ACTIVE_RULE_VERSION = "active_rule_version"
# A token rewritten with every change of rule_activations: replicas poll this one row to learn of activations.
RULES_GENERATION = "rule_activations_generation"
# "true" when the rollups must be recomputed from events (jobs/rollup_rebuild.py: true -> queued -> false).
ROLLUPS_REBUILD_NEEDED = "rollups_rebuild_needed"


def find_state(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(select(service_state.c.value).where(service_state.c.key == key)).scalar()
    return value


def find_states(conn: Connection, *keys: str) -> dict[str, str]:
    """The values of those of `keys` that are set."""
    rows = conn.execute(select(service_state.c.key, service_state.c.value).where(service_state.c.key.in_(keys)))
    return {k: v for k, v in rows}


def _insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(service_state)


def save_state(conn: Connection, key: str, value: str) -> None:
    """Set `key` to `value` (an upsert: concurrent writers of one key never fail; the last one wins)."""
    stmt = _insert(conn).values(key=key, value=value, updated_at=now_ms())
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        )
    )


def save_state_once(conn: Connection, key: str, value: str) -> None:
    """Set `key` unless it is set already (insert-or-keep: the first writer's value stays)."""
    stmt = _insert(conn).values(key=key, value=value, updated_at=now_ms())
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


def save_stamped_state(conn: Connection, key: str, value: str, *, stamp_key: str) -> str:
    """Set `key` to `value` and `stamp_key` to a fresh token; returns the token.

    Readers compare the token with the one they last saw (one small read by primary key) to learn that `key` changed.
    """
    token = uuid.uuid4().hex
    save_state(conn, key, value)
    save_state(conn, stamp_key, token)
    return token


def swap_stamped_state(conn: Connection, key: str, value: str, *, stamp_key: str, expected: str | None) -> str | None:
    """save_stamped_state, only if `stamp_key` still holds `expected` (None: it was never set); returns the new token,
    or None when another writer stamped it since (and nothing was written).

    The stamp row is written first: two writers racing with one expected token end with one winner (PostgreSQL's
    row lock makes the second re-check its WHERE after the first commits; SQLite has one writer).
    """
    token = uuid.uuid4().hex
    if expected is None:
        stamp = _insert(conn).values(key=stamp_key, value=token, updated_at=now_ms())
        done = conn.execute(stamp.on_conflict_do_nothing(index_elements=["key"]))
    else:
        done = conn.execute(
            update(service_state)
            .where(service_state.c.key == stamp_key, service_state.c.value == expected)
            .values(value=token, updated_at=now_ms())
        )
    if done.rowcount != 1:
        return None
    save_state(conn, key, value)
    return token


def swap_state(conn: Connection, key: str, *, expected: str, value: str) -> bool:
    """Compare-and-set: `key` becomes `value` only if it holds `expected`; True when this caller made the change."""
    done = conn.execute(
        update(service_state)
        .where(service_state.c.key == key, service_state.c.value == expected)
        .values(value=value, updated_at=now_ms())
    )
    return bool(done.rowcount == 1)


def delete_state(conn: Connection, key: str) -> None:
    conn.execute(delete(service_state).where(service_state.c.key == key))


def find_rules_generation(conn: Connection) -> str | None:
    """The token that changes with every change of the activated rule packs (None before the first one)."""
    return find_state(conn, RULES_GENERATION)


def bump_rules_generation(conn: Connection) -> str:
    """Tell every process that the activated rule packs changed; returns the new token."""
    token = uuid.uuid4().hex
    save_state(conn, RULES_GENERATION, token)
    return token


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
