"""The task_archive table: failed tasks archived before retention deleted them, when archives go to the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from faultlens.store.tables import task_archive


@dataclass(frozen=True)
class ArchivedTask:
    store: str
    task_key: str
    day: str  # the fail day, YYYY-MM-DD (UTC)
    record: dict[str, Any]  # the line a file archive would hold
    archived_at: int


def add_archived(conn: Connection, *, tenant: str, tasks: Sequence[ArchivedTask]) -> None:
    """Archive `tasks` (the caller commits before deleting them from their store)."""
    if not tasks:
        return
    conn.execute(
        insert(task_archive),
        [
            {
                "tenant": tenant,
                "store": t.store,
                "task_key": t.task_key,
                "day": t.day,
                "record": orjson.dumps(t.record).decode(),
                "archived_at": t.archived_at,
            }
            for t in tasks
        ],
    )


def list_archived(conn: Connection, *, tenant: str, day: str) -> list[ArchivedTask]:
    """The tasks of `tenant` that failed on `day` (YYYY-MM-DD), in the order they were archived."""
    rows = conn.execute(
        select(task_archive)
        .where(task_archive.c.tenant == tenant, task_archive.c.day == day)
        .order_by(task_archive.c.pk)
    )
    return [ArchivedTask(r.store, r.task_key, r.day, orjson.loads(r.record), r.archived_at) for r in rows]
