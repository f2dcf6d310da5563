"""Replica heartbeats (the replicas table): which rules each serving process classifies with, and when it was seen."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.tables import replicas

PRUNE_AFTER_MS = 86_400_000  # rows of processes not seen for a day are dropped


@dataclass(frozen=True)
class Replica:
    instance: str
    started_at: int
    seen_at: int
    rule_version: str
    rules_generation: str | None


def beat(
    conn: Connection, *, instance: str, started_at: int, rule_version: str, rules_generation: str | None, now: int
) -> None:
    """Record that `instance` is alive at `now` and classifies with `rule_version` (an upsert by instance)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(replicas).values(
        instance=instance,
        started_at=started_at,
        seen_at=now,
        rule_version=rule_version,
        rules_generation=rules_generation,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["instance"],
            set_={
                "seen_at": stmt.excluded.seen_at,
                "rule_version": stmt.excluded.rule_version,
                "rules_generation": stmt.excluded.rules_generation,
            },
        )
    )
    conn.execute(delete(replicas).where(replicas.c.seen_at < now - PRUNE_AFTER_MS))


def live_replicas(conn: Connection, *, seen_since: int) -> list[Replica]:
    """The processes seen at or after `seen_since`, oldest start first."""
    r = replicas.c
    rows = conn.execute(
        select(r.instance, r.started_at, r.seen_at, r.rule_version, r.rules_generation)
        .where(r.seen_at >= seen_since)
        .order_by(r.started_at, r.instance)
    )
    return [Replica(*row) for row in rows]
