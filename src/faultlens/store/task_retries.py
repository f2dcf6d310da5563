"""Retry events of tasks, oldest first: what the retry-loop task hints read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from faultlens.store.tables import events


def list_task_retries(conn: Connection, *, tenant: str, start: int, end: int, limit: int) -> Sequence[Any]:
    """Rows of (source, job_id, operation, attempt, max_attempts) for the task retry events in [start, end) that
    name their job, in the order they happened; at most `limit`."""
    c = events.c
    return conn.execute(
        select(c.source, c.job_id, c.operation, c.attempt, c.max_attempts)
        .where(
            c.tenant == tenant,
            c.item_type == "task",
            c.status == "retry",
            c.occurred_at >= start,
            c.occurred_at < end,
            c.job_id.is_not(None),
        )
        .order_by(c.occurred_at, c.pk)
        .limit(limit)
    ).all()
