"""Rollup rows dropped so that a rebuild can recompute them from events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete

from faultlens.store.tables import rollups


def clear_rollups(conn: Connection, *, shapes: Sequence[int] | None = None) -> None:
    """Delete the rollup rows of `shapes` (every row when None)."""
    where = [] if shapes is None else [rollups.c.shape.in_(list(shapes))]
    conn.execute(delete(rollups).where(*where))
