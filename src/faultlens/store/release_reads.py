"""Which environments one release was seen in, across the gate tables and the releases_seen registry."""

from __future__ import annotations

from sqlalchemy import Connection, Table, select

from faultlens.store.tables import (
    canary_analyses,
    readiness_evidence,
    releases_seen,
    replay_reports,
    rollbacks,
    rollouts,
)

# The records themselves are read through each table's owner module (canary_analyses, rollouts, replays,
# readiness); only this question spans the tables. The gate tables and the column naming the release in each (an
# analysis names it as its canary).
_GATE_TABLES: tuple[tuple[Table, str], ...] = (
    (canary_analyses, "canary"),
    (rollouts, "release"),
    (rollbacks, "release"),
    (replay_reports, "release"),
    (readiness_evidence, "release"),
)


def environments(conn: Connection, *, tenant: str, release: str) -> list[str] | None:
    """The environments `release` was seen in (events or gate records), sorted; None when it was seen nowhere.

    Events count through the releases_seen registry (written with them), never a scan of the events.
    """
    found: set[str] = set()
    seen_any = False
    for table, column in _GATE_TABLES:
        query = (
            select(table.c.environment)
            .where(table.c.tenant == tenant, table.c[column] == release)
            .group_by(table.c.environment)
        )
        for (env,) in conn.execute(query):
            seen_any = True
            found.add(env)
    query = (
        select(releases_seen.c.environment)
        .where(releases_seen.c.tenant == tenant, releases_seen.c.release == release)
        .group_by(releases_seen.c.environment)
    )
    for (env,) in conn.execute(query):
        seen_any = True
        found.add(env or "")
    if not seen_any:
        return None
    # '' is how the registry keeps "no environment given": not an environment to list.
    return sorted(env for env in found if env)
