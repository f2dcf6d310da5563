"""Minute rollup retention: minute rows are for windows of the recent past only; older ones go in bounded batches."""

from __future__ import annotations

from sqlalchemy import Connection, text

from faultlens.store.rollup_shapes import FINE_MS


def delete_fine_before(conn: Connection, *, cutoff_ms: int, limit: int) -> int:
    """Delete up to `limit` minute rollup rows whose bucket starts before `cutoff_ms`; returns how many.

    Reads check an hour's minute rows against its hour rows before using them, so a pass that stops halfway leaves
    every answer exact (store/rollup_reads.complete_fine_hours)."""
    row_id = "ctid" if conn.dialect.name == "postgresql" else "rowid"
    return int(
        conn.execute(
            text(
                f"DELETE FROM rollups WHERE {row_id} IN (SELECT {row_id} FROM rollups WHERE grain = :grain "
                "AND bucket < :cutoff LIMIT :limit)"
            ),
            {"grain": FINE_MS // 1000, "cutoff": cutoff_ms, "limit": limit},
        ).rowcount
        or 0
    )
