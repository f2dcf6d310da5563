"""Which of some event ids a tenant already has: asked by sources that re-send what they hold (task sync)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from faultlens.store.tables import events

# Ids per query: one indexed lookup on (tenant, id) each, well under SQLite's bound-parameter limit.
CHUNK = 500


def existing_ids(conn: Connection, *, tenant: str, ids: Sequence[str]) -> set[str]:
    """Those of `ids` the tenant's events hold already."""
    found: set[str] = set()
    unique = sorted(set(ids))
    for i in range(0, len(unique), CHUNK):
        chunk = unique[i : i + CHUNK]
        found.update(
            conn.execute(select(events.c.id).where(events.c.tenant == tenant, events.c.id.in_(chunk))).scalars()
        )
    return found
