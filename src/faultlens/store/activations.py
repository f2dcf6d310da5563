"""rule_activations: the rule-pack document activated per scope; every change bumps the rules generation."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update

from faultlens.store.state import bump_rules_generation
from faultlens.store.tables import rule_activations
from faultlens.timeutil import now_ms


def find_activation(conn: Connection, scope: str) -> str | None:
    """The document activated in `scope`, or None."""
    raw: str | None = conn.execute(
        select(rule_activations.c.document).where(rule_activations.c.scope == scope)
    ).scalar()
    return raw


def list_activations(conn: Connection, *, other_than: str) -> list[tuple[str, str]]:
    """(scope, document) of every scope but `other_than` (a small table: one row per scope that activated one)."""
    rows = conn.execute(
        select(rule_activations.c.scope, rule_activations.c.document).where(rule_activations.c.scope != other_than)
    )
    return [(scope, document) for scope, document in rows]


def save_activation(conn: Connection, scope: str, document: str) -> None:
    """Make `document` the one activated in `scope`; other processes learn of it by the rules generation."""
    now = now_ms()
    done = conn.execute(
        update(rule_activations).where(rule_activations.c.scope == scope).values(document=document, updated_at=now)
    )
    if done.rowcount == 0:
        conn.execute(rule_activations.insert().values(scope=scope, document=document, updated_at=now))
    bump_rules_generation(conn)


def delete_activation(conn: Connection, scope: str) -> None:
    """Drop what was activated in `scope`; other processes learn of it by the rules generation."""
    conn.execute(delete(rule_activations).where(rule_activations.c.scope == scope))
    bump_rules_generation(conn)
