"""The rollouts and rollbacks tables: a canary's rollout state and the rollbacks decided (or drilled) for releases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, false, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from faultlens.errors import RollbackNotFound, RolloutNotFound
from faultlens.store.tables import events, rollbacks, rollouts

RUNNING = "running"
# Rollbacks the alert condition and the analyzer still care about: recovery not confirmed.
UNRECOVERED = ("pending", "overdue", "failed")
MINUTE_MS = 60_000
# A rollback row as every reader gets it: the drill report (a few kB of markdown) stays out of lists and answers,
# only whether there is one; get_report reads it.
_ROLLBACK_ROW = (
    *(c for c in rollbacks.c if c.name != "report"),
    rollbacks.c.report.is_not(None).label("has_report"),
)


def _rollout(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


def _rollback(r: Any) -> dict[str, Any]:
    m = dict(r._mapping)
    m["drill"] = bool(m["drill"])
    m["has_report"] = bool(m["has_report"])
    m["replay_passed"] = None if m["replay_passed"] is None else bool(m["replay_passed"])
    m["recovery_detail"] = json.loads(m["recovery_detail"]) if m["recovery_detail"] else None
    return m


def create_rollout(conn: Connection, **values: Any) -> dict[str, Any] | None:
    """Insert a running rollout (every column but the decision ones); the stored row, or None when one of the same
    release, environment and source is already running (uq_rollouts_running: another start won the race)."""
    row = {"state": RUNNING, "consecutive_failures": 0, **values}
    try:
        with conn.begin_nested():
            conn.execute(insert(rollouts).values(**row))
    except IntegrityError:
        return None
    return get_rollout(conn, tenant=row["tenant"], rollout_id=row["id"])


def get_rollout(conn: Connection, *, tenant: str, rollout_id: str) -> dict[str, Any]:
    row = conn.execute(select(rollouts).where(rollouts.c.tenant == tenant, rollouts.c.id == rollout_id)).first()
    if row is None:
        raise RolloutNotFound(f"no rollout {rollout_id}", details={"id": rollout_id})
    return _rollout(row)


def find_running(
    conn: Connection, *, tenant: str, release: str, environment: str, source: str | None
) -> dict[str, Any] | None:
    """The running rollout of this release in this environment and source scope, if any."""
    q = select(rollouts).where(
        rollouts.c.tenant == tenant,
        rollouts.c.release == release,
        rollouts.c.environment == environment,
        rollouts.c.state == RUNNING,
        rollouts.c.source.is_(None) if source is None else rollouts.c.source == source,
    )
    row = conn.execute(q.limit(1)).first()
    return None if row is None else _rollout(row)


def list_rollouts(
    conn: Connection,
    *,
    tenant: str,
    release: str | None = None,
    state: str | None = None,
    environment: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The tenant's rollouts, newest first, optionally of one release / state / environment."""
    q = select(rollouts).where(rollouts.c.tenant == tenant)
    if release is not None:
        q = q.where(rollouts.c.release == release)
    if state is not None:
        q = q.where(rollouts.c.state == state)
    if environment is not None:
        q = q.where(rollouts.c.environment == environment)
    q = q.order_by(rollouts.c.created_at.desc(), rollouts.c.id).limit(limit)
    return [_rollout(r) for r in conn.execute(q)]


def due_rollouts(conn: Connection, *, now: int) -> list[dict[str, Any]]:
    """Running rollouts of every tenant whose next analysis is due: one interval after the last one (the first one
    interval after the start, so its window holds only canary traffic). Few rows run at once: filtered here."""
    rows = [_rollout(r) for r in conn.execute(select(rollouts).where(rollouts.c.state == RUNNING))]
    return sorted((r for r in rows if next_analysis_at(r) <= now), key=lambda r: (r["last_analysis_at"] or 0, r["id"]))


def next_analysis_at(row: dict[str, Any]) -> int:
    start = row["last_analysis_at"] if row["last_analysis_at"] is not None else row["created_at"]
    return int(start + row["interval_min"] * MINUTE_MS)


def record_analysis(conn: Connection, *, rollout_id: str, verdict: str, at: int) -> bool:
    """Count one analysis of a running rollout: a fail adds to consecutive_failures, a pass resets it, an
    inconclusive one leaves it. One statement, so two writers never lose a count. False: no longer running."""
    failures = rollouts.c.consecutive_failures
    new: Any = failures + 1 if verdict == "fail" else 0 if verdict == "pass" else failures
    result = conn.execute(
        update(rollouts)
        .where(rollouts.c.id == rollout_id, rollouts.c.state == RUNNING)
        .values(consecutive_failures=new, last_verdict=verdict, last_analysis_at=at, updated_at=at)
    )
    return bool(result.rowcount)


def decide(conn: Connection, *, rollout_id: str, decision: str, state: str, reason: str, at: int) -> bool:
    """End a running rollout with its decision (rollback | promote | abort). False when it was no longer running
    (another caller decided first): the decision is taken once."""
    result = conn.execute(
        update(rollouts)
        .where(rollouts.c.id == rollout_id, rollouts.c.state == RUNNING)
        .values(state=state, decision=decision, decision_reason=reason, decided_at=at, updated_at=at)
    )
    return bool(result.rowcount)


def create_rollback(conn: Connection, **values: Any) -> dict[str, Any]:
    row = dict(values)
    if isinstance(row.get("recovery_detail"), dict):
        row["recovery_detail"] = json.dumps(row["recovery_detail"], ensure_ascii=False, sort_keys=True)
    conn.execute(insert(rollbacks).values(**row))
    return get_rollback(conn, tenant=row["tenant"], rollback_id=row["id"])


def get_rollback(conn: Connection, *, tenant: str, rollback_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(*_ROLLBACK_ROW).where(rollbacks.c.tenant == tenant, rollbacks.c.id == rollback_id)
    ).first()
    if row is None:
        raise RollbackNotFound(f"no rollback {rollback_id}", details={"id": rollback_id})
    return _rollback(row)


def get_report(conn: Connection, *, tenant: str, rollback_id: str) -> str | None:
    """The drill report stored with a rollback (None: it has none); RollbackNotFound for an unknown id."""
    row = conn.execute(
        select(rollbacks.c.report).where(rollbacks.c.tenant == tenant, rollbacks.c.id == rollback_id)
    ).first()
    if row is None:
        raise RollbackNotFound(f"no rollback {rollback_id}", details={"id": rollback_id})
    return None if row.report is None else str(row.report)


def list_rollbacks(
    conn: Connection,
    *,
    tenant: str,
    release: str | None = None,
    environment: str | None = None,
    source: str | None = None,
    since: int | None = None,
    rollout_id: str | None = None,
    drill: bool | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The tenant's rollbacks (drills included unless `drill` says), newest decision first."""
    q = select(*_ROLLBACK_ROW).where(rollbacks.c.tenant == tenant)
    for column, value in (
        (rollbacks.c.release, release),
        (rollbacks.c.environment, environment),
        (rollbacks.c.source, source),
        (rollbacks.c.rollout_id, rollout_id),
    ):
        if value is not None:
            q = q.where(column == value)
    if since is not None:
        q = q.where(rollbacks.c.decided_at >= since)
    if drill is not None:
        q = q.where(rollbacks.c.drill == (true() if drill else false()))
    q = q.order_by(rollbacks.c.decided_at.desc(), rollbacks.c.id).limit(limit)
    return [_rollback(r) for r in conn.execute(q)]


def update_rollback(conn: Connection, *, rollback_id: str, states: Sequence[str] | None = None, **values: Any) -> bool:
    """Set columns of one rollback, only while its recovery_state is one of `states` (when given)."""
    if isinstance(values.get("recovery_detail"), dict):
        values["recovery_detail"] = json.dumps(values["recovery_detail"], ensure_ascii=False, sort_keys=True)
    q = update(rollbacks).where(rollbacks.c.id == rollback_id)
    if states is not None:
        q = q.where(rollbacks.c.recovery_state.in_(states))
    return bool(conn.execute(q.values(**values)).rowcount)


def unrecovered_rollbacks(conn: Connection, *, tenant: str | None = None) -> list[dict[str, Any]]:
    """Real (not drill) rollbacks whose recovery is not confirmed: pending or overdue, oldest first."""
    q = select(*_ROLLBACK_ROW).where(
        rollbacks.c.drill == false(),
        rollbacks.c.completed_at.is_(None),
        rollbacks.c.recovery_state.in_(("pending", "overdue")),
    )
    if tenant is not None:
        q = q.where(rollbacks.c.tenant == tenant)
    return [_rollback(r) for r in conn.execute(q.order_by(rollbacks.c.decided_at, rollbacks.c.id))]


def mark_overdue(conn: Connection, *, now: int) -> int:
    """Pending rollbacks past their deadline without completion become overdue; how many."""
    result = conn.execute(
        update(rollbacks)
        .where(
            rollbacks.c.recovery_state == "pending",
            rollbacks.c.completed_at.is_(None),
            rollbacks.c.deadline_at <= now,
        )
        .values(recovery_state="overdue")
    )
    return int(result.rowcount or 0)


def record_replay(conn: Connection, *, tenant: str, release: str, report_id: str, passed: bool, at: int) -> int:
    """A replay of `release` finished at `at`: the real rollbacks of that release decided before it and not yet
    cleared by a passing replay take its result. How many rows changed."""
    result = conn.execute(
        update(rollbacks)
        .where(
            rollbacks.c.tenant == tenant,
            rollbacks.c.release == release,
            rollbacks.c.drill == false(),
            rollbacks.c.decided_at <= at,
            or_(rollbacks.c.replay_passed.is_(None), rollbacks.c.replay_passed == false()),
        )
        .values(replay_report_id=report_id, replay_passed=passed)
    )
    return int(result.rowcount or 0)


def unreplayed_rollbacks(
    conn: Connection, *, tenant: str, release: str | None = None, environment: str | None = None
) -> list[dict[str, Any]]:
    """Real rollbacks no passing replay has cleared yet, newest decision first: their release stays blocked."""
    q = select(*_ROLLBACK_ROW).where(
        rollbacks.c.tenant == tenant,
        rollbacks.c.drill == false(),
        or_(rollbacks.c.replay_passed.is_(None), rollbacks.c.replay_passed == false()),
    )
    if release is not None:
        q = q.where(rollbacks.c.release == release)
    if environment is not None:
        q = q.where(rollbacks.c.environment == environment)
    return [_rollback(r) for r in conn.execute(q.order_by(rollbacks.c.decided_at.desc(), rollbacks.c.id))]


def alerting_rollbacks(conn: Connection, *, tenant: str) -> list[dict[str, Any]]:
    """The rollbacks people must hear about (the release_rollback alert): real ones whose recovery is not confirmed
    (pending, overdue, failed) or whose replay has not passed; only the newest per release, environment and source."""
    q = select(*_ROLLBACK_ROW).where(
        rollbacks.c.tenant == tenant,
        rollbacks.c.drill == false(),
        or_(
            rollbacks.c.recovery_state.in_(UNRECOVERED),
            rollbacks.c.replay_passed.is_(None),
            rollbacks.c.replay_passed == false(),
        ),
    )
    newest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in conn.execute(q.order_by(rollbacks.c.decided_at.desc(), rollbacks.c.id)):
        row = _rollback(r)
        newest.setdefault((row["release"], row["environment"], row["source"] or ""), row)
    return list(newest.values())


def outcome_counts(
    conn: Connection,
    *,
    tenant: str,
    environment: str,
    since: int,
    until: int,
    source: str | None = None,
    release: str | None = None,
    exclude_release: str | None = None,
) -> tuple[int, int]:
    """(outcomes, actionable failures) of an environment in [since, until), optionally of one release or of every
    release but one. The occurred_at range keeps PostgreSQL to the window's day partitions."""
    actionable = and_(events.c.failure_class != "none", events.c.is_actionable == true())
    q = select(func.count(), func.coalesce(func.sum(case((actionable, 1), else_=0)), 0)).where(
        events.c.tenant == tenant,
        events.c.environment == environment,
        events.c.occurred_at >= since,
        events.c.occurred_at < until,
    )
    if source is not None:
        q = q.where(events.c.source == source)
    if release is not None:
        q = q.where(events.c.release == release)
    if exclude_release is not None:
        q = q.where(or_(events.c.release.is_(None), events.c.release != exclude_release))
    total, bad = conn.execute(q).one()
    return int(total or 0), int(bad or 0)
