"""A canary arm's outcomes read from raw events: counts by SQL aggregate and the newest durations.

An arm is the events of one release in one environment (and one source when given) with occurred_at in
[since, until). The occurred_at bounds come first so PostgreSQL prunes the day partitions outside the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.model import FailureClass
from faultlens.store.tables import events

_e = events.c


# Defined here, below releases/ in the layers, so this module can build it; releases.canary re-exports it.
@dataclass(frozen=True)
class ArmStats:
    """One arm's outcomes in the window: counts, and the durations (ms) of the outcomes that carry one."""

    release: str
    total: int
    actionable: int
    client_aborts: int
    durations: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "total": self.total,
            "actionable": self.actionable,
            "client_aborts": self.client_aborts,
            "durations": len(self.durations),
        }


def _arm_conditions(
    tenant: str, release: str, environment: str, source: str | None, since: int, until: int
) -> list[ColumnElement[bool]]:
    conds = [
        _e.tenant == tenant,
        _e.occurred_at >= since,
        _e.occurred_at < until,
        _e.release == release,
        _e.environment == environment,
    ]
    if source is not None:
        conds.append(_e.source == source)
    return conds


def arm_stats(
    conn: Connection,
    *,
    tenant: str,
    release: str,
    environment: str,
    source: str | None,
    since: int,
    until: int,
    max_durations: int = 20000,
) -> ArmStats:
    """The arm's totals (actionable = a failure class other than none marked actionable; client aborts = class
    client_abort) and the durations of its newest `max_durations` outcomes that carry one."""
    conds = _arm_conditions(tenant, release, environment, source, since, until)
    actionable = and_(_e.failure_class != FailureClass.NONE.value, _e.is_actionable.is_(True))
    aborts = _e.failure_class == FailureClass.CLIENT_ABORT.value
    total, n_actionable, n_aborts = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((actionable, 1), else_=0)), 0),
            func.coalesce(func.sum(case((aborts, 1), else_=0)), 0),
        ).where(*conds)
    ).one()
    durations: list[float] = []
    if total:
        q = (
            select(_e.duration_ms)
            .where(*conds, _e.duration_ms.is_not(None))
            .order_by(_e.occurred_at.desc())
            .limit(max_durations)
        )
        durations = [float(d) for (d,) in conn.execute(q)]
    return ArmStats(release, int(total), int(n_actionable), int(n_aborts), durations)
