"""The duty_runs table: each run of a leased duty (jobs/duty.py), by whom and how it ended, kept a week."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, update

from faultlens.store.tables import duty_runs


def record_start(conn: Connection, *, name: str, holder: str, started_at: int) -> int:
    """A run of duty `name` by `holder` begins; returns the row's key for record_end."""
    result = conn.execute(insert(duty_runs).values(name=name, holder=holder, started_at=started_at))
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def record_end(conn: Connection, pk: int, *, finished_at: int, ok: bool) -> None:
    conn.execute(update(duty_runs).where(duty_runs.c.pk == pk).values(finished_at=finished_at, ok=ok))


def count_runs(conn: Connection, *, name: str, since: int, until: int) -> dict[str, int]:
    """Runs of duty `name` that started in [since, until), per holder (a run still going counts)."""
    rows = conn.execute(
        select(duty_runs.c.holder, func.count())
        .where(duty_runs.c.name == name, duty_runs.c.started_at >= since, duty_runs.c.started_at < until)
        .group_by(duty_runs.c.holder)
    )
    return {holder: int(n) for holder, n in rows}


def prune(conn: Connection, *, name: str, before: int) -> int:
    """Forget the runs of duty `name` that started before `before`; returns how many."""
    result = conn.execute(delete(duty_runs).where(duty_runs.c.name == name, duty_runs.c.started_at < before))
    return int(result.rowcount or 0)
