"""Rollouts and rollback decisions: a canary analysed every interval, N failing analyses in a row decide a rollback,
and the rolled-back release stays blocked until a replay of it passes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from faultlens.errors import InvalidRequest, NotFound, RolloutConflict, param_details
from faultlens.releases import analysis as canary_analysis
from faultlens.settings import Settings
from faultlens.store import rollouts as store
from faultlens.timeutil import ms_to_rfc3339, now_ms

RUNNING = store.RUNNING
MINUTE_MS = store.MINUTE_MS
# Who asks for the analyses the analyzer duty runs (canary_analyses.requested_by).
ANALYZER = "release_analyzer"
# decision -> the state a rollout ends in.
END_STATES = {"rollback": "rolled_back", "promote": "promoted", "abort": "aborted"}

# releases.analysis.analyze's signature: (engine, *, tenant, baseline, canary, environment, source, since, until,
# settings, requested_by, rollout_id, ratio, now) -> the stored analysis as a dict.
AnalyzeFn = Callable[..., dict[str, Any]]


def rollout_to_api(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in _ROLLOUT_FIELDS}
    for k in ("last_analysis_at", "decided_at", "created_at", "updated_at"):
        out[k] = ms_to_rfc3339(row[k])
    out["next_analysis_at"] = ms_to_rfc3339(store.next_analysis_at(row)) if row["state"] == RUNNING else None
    return out


_ROLLOUT_FIELDS = (
    "id",
    "release",
    "baseline",
    "environment",
    "source",
    "ratio",
    "interval_min",
    "max_failures",
    "state",
    "consecutive_failures",
    "last_verdict",
    "decision",
    "decision_reason",
    "created_by",
)


def rollback_to_api(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "tenant"}
    for k in ("decided_at", "deadline_at", "completed_at"):
        out[k] = ms_to_rfc3339(row[k])
    return out


def _invalid(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: {message}", details=param_details(name, message, location="body"))


def start_rollout(
    engine: Engine,
    *,
    tenant: str,
    release: str,
    baseline: str,
    environment: str,
    source: str | None,
    ratio: float,
    interval_min: float,
    max_failures: int,
    created_by: str,
    now: int | None = None,
) -> dict[str, Any]:
    """Record a running rollout of `release` against `baseline`. 409 when one of the same release, environment and
    source is running, or when the release is blocked (rolled back, no replay passed since)."""
    if release == baseline:
        raise _invalid("baseline", "the baseline must be another release than the canary")
    now = now_ms() if now is None else now
    with engine.begin() as conn:
        running = store.find_running(conn, tenant=tenant, release=release, environment=environment, source=source)
        if running is not None:
            raise RolloutConflict(
                f"rollout {running['id']} of {release} in {environment} is already running",
                details={"id": running["id"]},
            )
        blocked = blocked_reason(conn, tenant=tenant, release=release, environment=environment)
        if blocked is not None:
            raise RolloutConflict(f"{release} is blocked: {blocked}", details={"blocked_reason": blocked})
        row = store.create_rollout(
            conn,
            id=str(uuid.uuid4()),
            tenant=tenant,
            release=release,
            baseline=baseline,
            environment=environment,
            source=source,
            ratio=ratio,
            interval_min=interval_min,
            max_failures=max_failures,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        if row is None:
            raise RolloutConflict(
                f"a rollout of {release} in {environment} is already running", details={"release": release}
            )
    return rollout_to_api(row)


def analyze_rollout(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    rollout_id: str,
    now: int | None = None,
    requested_by: str = ANALYZER,
    analyze: AnalyzeFn | None = None,
) -> dict[str, Any]:
    """Analyse a running rollout over its last interval, record the verdict and decide: {"analysis", "decision",
    "rollout", "rollback"}. `analyze` replaces releases.analysis.analyze (tests)."""
    now = now_ms() if now is None else now
    with engine.connect() as conn:
        rollout = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
    _require_running(rollout)
    analysis = (analyze or canary_analysis.analyze)(
        engine,
        tenant=tenant,
        baseline=rollout["baseline"],
        canary=rollout["release"],
        environment=rollout["environment"],
        source=rollout["source"],
        since=now - int(rollout["interval_min"] * MINUTE_MS),
        until=now,
        settings=settings,
        requested_by=requested_by,
        rollout_id=rollout_id,
        ratio=rollout["ratio"],  # the rollout's own canary share sets the expected sample sizes
        now=now,
    )
    outcome = apply_verdict(
        engine,
        settings,
        tenant=tenant,
        rollout_id=rollout_id,
        verdict=str(analysis["verdict"]),
        reasons=failing_reasons(analysis),
        at=now,
    )
    return {"analysis": analysis, **outcome}


def failing_reasons(analysis: dict[str, Any]) -> list[str]:
    """What a person reads about a failing analysis: its failing metrics' reasons, else its own reasons."""
    failed = [str(m.get("reason") or m.get("name")) for m in analysis.get("metrics", []) if m.get("verdict") == "fail"]
    return failed or [str(r) for r in analysis.get("reasons", [])]


def apply_verdict(
    engine: Engine,
    settings: Settings,
    *,
    tenant: str,
    rollout_id: str,
    verdict: str,
    reasons: list[str],
    at: int,
) -> dict[str, Any]:
    """Count one analysis' verdict for a running rollout (fail +1, pass resets, inconclusive leaves the count) and,
    at max_failures failing analyses in a row, decide the rollback in the same transaction: {"decision",
    "rollout", "rollback"}; decision is "rollback" or "continue"."""
    if verdict not in ("pass", "fail", "inconclusive"):
        raise ValueError(f"unknown verdict {verdict!r}")
    rollback = None
    with engine.begin() as conn:
        rollout = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
        if not store.record_analysis(conn, rollout_id=rollout_id, verdict=verdict, at=at):
            _require_running(store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id))
        rollout = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
        failures = rollout["consecutive_failures"]
        if verdict == "fail" and failures >= rollout["max_failures"]:
            why = "; ".join(reasons) or "no reason given"
            reason = f"{failures} canary analyses in a row failed: {why}"
            if store.decide(
                conn, rollout_id=rollout_id, decision="rollback", state="rolled_back", reason=reason, at=at
            ):
                rollback = store.create_rollback(
                    conn,
                    id=str(uuid.uuid4()),
                    tenant=tenant,
                    rollout_id=rollout_id,
                    release=rollout["release"],
                    baseline=rollout["baseline"],
                    environment=rollout["environment"],
                    source=rollout["source"],
                    reason=reason,
                    drill=False,
                    decided_at=at,
                    deadline_at=at + int(settings.rollback_max_minutes * MINUTE_MS),
                    recovery_state="pending",
                    created_by=ANALYZER,
                )
                rollout = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
    return {
        "decision": "rollback" if rollback is not None else "continue",
        "rollout": rollout_to_api(rollout),
        "rollback": None if rollback is None else rollback_to_api(rollback),
    }


def _require_running(rollout: dict[str, Any]) -> None:
    if rollout["state"] != RUNNING:
        raise RolloutConflict(
            f"rollout {rollout['id']} is {rollout['state']}, not running",
            details={"id": rollout["id"], "state": rollout["state"]},
        )


def end_rollout(
    engine: Engine, *, tenant: str, rollout_id: str, decision: str, by: str, reason: str = "", now: int | None = None
) -> dict[str, Any]:
    """Promote or abort a running rollout (409 otherwise)."""
    if decision not in ("promote", "abort"):
        raise ValueError(decision)
    now = now_ms() if now is None else now
    with engine.begin() as conn:
        rollout = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
        _require_running(rollout)
        text = reason or (f"promoted by {by}" if decision == "promote" else f"aborted by {by}")
        if not store.decide(
            conn, rollout_id=rollout_id, decision=decision, state=END_STATES[decision], reason=text, at=now
        ):
            _require_running(store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id))
        return rollout_to_api(store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id))


def promote(engine: Engine, *, tenant: str, rollout_id: str, by: str, now: int | None = None) -> dict[str, Any]:
    return end_rollout(engine, tenant=tenant, rollout_id=rollout_id, decision="promote", by=by, now=now)


def abort(engine: Engine, *, tenant: str, rollout_id: str, by: str, now: int | None = None) -> dict[str, Any]:
    return end_rollout(engine, tenant=tenant, rollout_id=rollout_id, decision="abort", by=by, now=now)


def complete_rollback(
    engine: Engine,
    *,
    tenant: str,
    rollback_id: str,
    recovered: bool,
    detail: str = "",
    by: str = "anonymous",
    now: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The deploy tool (or the analyzer's recovery check) says traffic is back on the baseline: completed_at, and
    recovery_state recovered (or failed). Repeating the same completion answers the stored row; a different one
    is a 409."""
    now = now_ms() if now is None else now
    state = "recovered" if recovered else "failed"
    with engine.begin() as conn:
        row = store.get_rollback(conn, tenant=tenant, rollback_id=rollback_id)
        if row["completed_at"] is not None:
            if row["recovery_state"] == state:
                return rollback_to_api(row)
            raise RolloutConflict(
                f"rollback {rollback_id} was already completed as {row['recovery_state']}",
                details={"id": rollback_id, "recovery_state": row["recovery_state"]},
            )
        record = {
            "recovered": recovered,
            "by": by,
            "detail": detail,
            "late": now > row["deadline_at"],
            **({"evidence": evidence} if evidence else {}),
        }
        done = store.update_rollback(
            conn,
            rollback_id=rollback_id,
            states=("pending", "overdue"),
            completed_at=now,
            recovery_state=state,
            recovery_detail=record,
        )
        if done:
            return rollback_to_api(store.get_rollback(conn, tenant=tenant, rollback_id=rollback_id))
    # Completed by another caller in between: answer as for a repeated completion.
    return complete_rollback(
        engine, tenant=tenant, rollback_id=rollback_id, recovered=recovered, detail=detail, by=by, now=now
    )


def record_replay(conn: Connection, *, tenant: str, release: str, report_id: str, passed: bool, at: int) -> int:
    """Called after each replay of a release (releases/replay.py): the rollbacks of that release decided before
    `at` and not yet cleared take the replay's result; a passing one unblocks the release. Rows changed."""
    return store.record_replay(conn, tenant=tenant, release=release, report_id=report_id, passed=passed, at=at)


def blocked_reason(conn: Connection, *, tenant: str, release: str, environment: str | None = None) -> str | None:
    """Why traffic may not return to `release` (in `environment`, or anywhere): it was rolled back and no replay
    has passed since; None when it is not blocked."""
    rows = store.unreplayed_rollbacks(conn, tenant=tenant, release=release, environment=environment)
    if not rows:
        return None
    newest = rows[0]
    tried = " (the last replay failed)" if newest["replay_passed"] is False else ""
    return (
        f"rolled back in {newest['environment']} at {ms_to_rfc3339(newest['decided_at'])}, "
        f"a replay must pass before traffic returns{tried}"
    )


def record_drill(
    engine: Engine,
    *,
    tenant: str,
    release: str,
    environment: str,
    source: str | None,
    created_by: str,
    decided_at: int,
    completed_at: int | None,
    recovered: bool,
    detail: str = "",
    baseline: str | None = None,
    deadline_minutes: float = 30.0,
    report: str | None = None,
) -> dict[str, Any]:
    """A rollback drill's record (drill=True): never blocks the release, never alerts; readiness reads it. `report`:
    the drill's markdown report, answered by rollback_report."""
    state = "recovered" if recovered and completed_at is not None else "failed" if completed_at else "pending"
    with engine.begin() as conn:
        row = store.create_rollback(
            conn,
            id=str(uuid.uuid4()),
            tenant=tenant,
            rollout_id=None,
            release=release,
            baseline=baseline,
            environment=environment,
            source=source,
            reason="rollback drill",
            drill=True,
            decided_at=decided_at,
            deadline_at=decided_at + int(deadline_minutes * MINUTE_MS),
            completed_at=completed_at,
            recovery_state=state,
            recovery_detail={"recovered": recovered, "by": created_by, "detail": detail, "drill": True},
            created_by=created_by,
            report=report,
        )
    return rollback_to_api(row)


def list_rollouts(
    engine: Engine, *, tenant: str, release: str | None = None, state: str | None = None, limit: int = 100
) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = store.list_rollouts(conn, tenant=tenant, release=release, state=state, limit=limit)
    return {"rollouts": [rollout_to_api(r) for r in rows]}


def rollout_detail(engine: Engine, *, tenant: str, rollout_id: str) -> dict[str, Any]:
    """A rollout with its analyses (newest first), its rollbacks and whether its release is blocked."""
    with engine.connect() as conn:
        row = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
        backs = store.list_rollbacks(conn, tenant=tenant, rollout_id=rollout_id)
        blocked = blocked_reason(conn, tenant=tenant, release=row["release"], environment=row["environment"])
    return {
        **rollout_to_api(row),
        "analyses": canary_analysis.list_analyses(engine, tenant=tenant, rollout_id=rollout_id, limit=100),
        "rollbacks": [rollback_to_api(r) for r in backs],
        "blocked": blocked is not None,
        "blocked_reason": blocked,
    }


def rollout_status(engine: Engine, *, tenant: str, rollout_id: str) -> dict[str, Any]:
    """The rollout's decision, shaped for a deploy tool's gate (Argo Rollouts' Web metric: successCondition
    `result.rollback == false`)."""
    with engine.connect() as conn:
        row = store.get_rollout(conn, tenant=tenant, rollout_id=rollout_id)
        blocked = blocked_reason(conn, tenant=tenant, release=row["release"], environment=row["environment"])
    decision = row["decision"] or "continue"
    return {
        "id": row["id"],
        "release": row["release"],
        "environment": row["environment"],
        "state": row["state"],
        "decision": decision,
        "rollback": decision == "rollback",
        "blocked": blocked is not None,
        "blocked_reason": blocked,
        "reason": row["decision_reason"],
        "last_verdict": row["last_verdict"],
        "consecutive_failures": row["consecutive_failures"],
        "max_failures": row["max_failures"],
    }


def list_rollbacks(
    engine: Engine,
    *,
    tenant: str,
    release: str | None = None,
    environment: str | None = None,
    source: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = store.list_rollbacks(
            conn, tenant=tenant, release=release, environment=environment, source=source, limit=limit
        )
    return {"rollbacks": [rollback_to_api(r) for r in rows]}


def get_rollback(engine: Engine, *, tenant: str, rollback_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return rollback_to_api(store.get_rollback(conn, tenant=tenant, rollback_id=rollback_id))


def rollback_report(engine: Engine, *, tenant: str, rollback_id: str) -> str:
    """The markdown report a rollback drill stored with its record; 404 for an unknown id and for a rollback without
    one (a real rollback, or a drill recorded without its report)."""
    with engine.connect() as conn:
        text = store.get_report(conn, tenant=tenant, rollback_id=rollback_id)
    if text is None:
        raise NotFound(f"rollback {rollback_id} has no drill report", details={"id": rollback_id})
    return text
