"""Raw-event retention in bounded batches: ids of a detached day partition, old rows of the default partition
(PostgreSQL), old events (SQLite). Each call is one batch in the caller's transaction; rollups are never touched."""

from __future__ import annotations

from sqlalchemy import Connection, text

from faultlens.store.partitions import DEFAULT_PARTITION, partition_name


def forget_ids_of_day(conn: Connection, day: int, *, after_pk: int, limit: int) -> int | None:
    """Delete from event_ids the ids of the next `limit` rows (pk order, pk > after_pk) of the day's detached
    table; returns the last pk seen, or None when no row is left after `after_pk`."""
    last = conn.execute(
        text(
            f"WITH batch AS (SELECT pk, tenant, id FROM {partition_name(day)} WHERE pk > :after ORDER BY pk "
            "LIMIT :limit), gone AS (DELETE FROM event_ids e USING batch b WHERE e.tenant = b.tenant "
            "AND e.id = b.id) SELECT max(pk) FROM batch"
        ),
        {"after": after_pk, "limit": limit},
    ).scalar()
    return None if last is None else int(last)


def delete_default_before(conn: Connection, *, cutoff_ms: int, limit: int) -> int:
    """Delete up to `limit` rows older than `cutoff_ms` from the default partition, with their ids; returns how many."""
    return int(
        conn.execute(
            text(
                f"WITH gone AS (DELETE FROM {DEFAULT_PARTITION} WHERE pk IN (SELECT pk FROM {DEFAULT_PARTITION} "
                "WHERE occurred_at < :cutoff LIMIT :limit) RETURNING tenant, id), "
                "ids AS (DELETE FROM event_ids e USING gone g WHERE e.tenant = g.tenant AND e.id = g.id) "
                "SELECT count(*) FROM gone"
            ),
            {"cutoff": cutoff_ms, "limit": limit},
        ).scalar()
        or 0
    )


def delete_events_before(conn: Connection, *, cutoff_ms: int, limit: int) -> int:
    """SQLite: delete up to `limit` events older than `cutoff_ms` (oldest pks first); returns how many."""
    return int(
        conn.execute(
            text(
                "DELETE FROM events WHERE pk IN (SELECT pk FROM events WHERE occurred_at < :cutoff ORDER BY pk "
                "LIMIT :limit)"
            ),
            {"cutoff": cutoff_ms, "limit": limit},
        ).rowcount
        or 0
    )
