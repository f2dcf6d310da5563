"""The security_signals table: refusals counted per tenant, minute and kind; the lookup that finds cross_tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.api_usage import minute_of
from faultlens.store.tables import api_keys, events, security_signals

# (tenant, minute start in epoch ms, kind)
SignalKey = tuple[str, int, str]


def add_signals(conn: Connection, counts: Mapping[SignalKey, int]) -> None:
    """Add `counts` to the table in one statement: a row already there (another replica's, an earlier flush's)
    gets the count added, never replaced. Keys are written in sorted order, so two replicas lock alike."""
    values = [
        {"tenant": tenant, "minute": minute, "kind": kind, "count": n}
        for (tenant, minute, kind), n in sorted(counts.items())
        if n > 0
    ]
    if not values:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(security_signals).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "minute", "kind"],
        set_={"count": security_signals.c["count"] + stmt.excluded["count"]},
    )
    conn.execute(stmt)


def count_signals(conn: Connection, *, tenant: str, starts: Sequence[int], end: int) -> dict[str, list[int]]:
    """The tenant's signals per kind over each window [start, end), one count per start in the order given.

    Like api_usage.sum_usage, a window holds the minutes that start in [minute_of(start), end). One query: a
    conditional sum per window over the widest one. Kinds without any signal are absent.
    """
    if not starts:
        return {}
    c = security_signals.c
    sums: list[Any] = [func.sum(case((c.minute >= minute_of(s), c["count"]), else_=0)) for s in starts]
    stmt = (
        select(c.kind, *sums)
        .where(c.tenant == tenant, c.minute >= minute_of(min(starts)), c.minute < end)
        .group_by(c.kind)
    )
    return {str(kind): [int(n or 0) for n in counts] for kind, *counts in conn.execute(stmt).all()}


def event_in_other_tenant(conn: Connection, *, tenant: str, event_id: str, default_tenant: str) -> bool:
    """Whether a tenant other than `tenant` holds an event with this id (the caller asked for someone else's).

    Tenants are those of API keys (revoked ones too) and the default tenant, so the events lookup is one probe
    per tenant of the (tenant, id) unique index, never a scan of events by id. Nothing is returned but the bool.
    """
    tenants = {str(t) for t in conn.execute(select(api_keys.c.tenant).distinct()).scalars()}
    tenants.add(default_tenant)
    tenants.discard(tenant)
    if not tenants:
        return False
    stmt = select(events.c.pk).where(events.c.tenant.in_(sorted(tenants)), events.c.id == event_id).limit(1)
    return conn.execute(stmt).first() is not None
