"""One release's gate timeline: its canary verdicts, rollouts, rollbacks, replays and readiness reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from faultlens.errors import ReleaseNotFound
from faultlens.store import canary_analyses, readiness, release_reads, replays, rollouts
from faultlens.timeutil import ms_to_rfc3339

# Each list shows the newest records first and at most this many: a timeline, not an archive.
LIMIT = 100


def _analysis(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": ms_to_rfc3339(row["created_at"]),
        "verdict": row["verdict"],
        "score": row["score"],
        "baseline": row["baseline"],
        "environment": row["environment"],
        "source": row["source"],
        "rollout_id": row["rollout_id"],
        "since": ms_to_rfc3339(row["since"]),
        "until": ms_to_rfc3339(row["until"]),
        "metrics": row["metrics"] or [],
        "reasons": row["reasons"] or [],
        "requested_by": row["requested_by"],
    }


def _rollout(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": ms_to_rfc3339(row["created_at"]),
        "baseline": row["baseline"],
        "environment": row["environment"],
        "source": row["source"],
        "ratio": row["ratio"],
        "interval_min": row["interval_min"],
        "max_failures": row["max_failures"],
        "state": row["state"],
        "consecutive_failures": row["consecutive_failures"],
        "last_verdict": row["last_verdict"],
        "last_analysis_at": ms_to_rfc3339(row["last_analysis_at"]),
        "decision": row["decision"],
        "decision_reason": row["decision_reason"],
        "decided_at": ms_to_rfc3339(row["decided_at"]),
        "created_by": row["created_by"],
    }


def _rollback(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rollout_id": row["rollout_id"],
        "baseline": row["baseline"],
        "environment": row["environment"],
        "source": row["source"],
        "decided_at": ms_to_rfc3339(row["decided_at"]),
        "deadline_at": ms_to_rfc3339(row["deadline_at"]),
        "completed_at": ms_to_rfc3339(row["completed_at"]),
        "recovery_state": row["recovery_state"],
        "recovery_detail": row["recovery_detail"],
        "reason": row["reason"],
        "drill": bool(row["drill"]),
        "has_report": bool(row.get("has_report")),
        "replay_report_id": row["replay_report_id"],
        "replay_passed": None if row["replay_passed"] is None else bool(row["replay_passed"]),
    }


def _readiness(row: dict[str, Any]) -> dict[str, Any]:
    # The seven checks (the store keeps the replay's judgement beside them); its verdict is replay_passed.
    checks = row["checks"]
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "environment": row["environment"],
        "admitted": bool(row["admitted"]),
        "replay_passed": bool(row["replay_passed"]),
        "failed_checks": list(row["failed_checks"] or []),
        # The verdict of each check, not its evidence: the evidence record's own route has that.
        "checks": {name: bool(check.get("passed")) for name, check in checks.items() if isinstance(check, dict)},
        "replay_report_id": row["replay_report_id"],
        "requested_by": row["requested_by"],
        "rollback": _rollback_used(checks.get("rollback")),
    }


def _rollback_used(check: Any) -> dict[str, Any] | None:
    """The rollback (or drill) the readiness rollback check passed on, so the page links it (and its drill report)."""
    used = check.get("evidence", {}).get("rollback") if isinstance(check, dict) else None
    if not isinstance(used, dict) or not used.get("id"):
        return None
    return {"id": used["id"], "drill": bool(used.get("drill")), "has_report": bool(used.get("has_report"))}


def _replay(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "environment": row["environment"],
        "suite": row["suite"],
        "suite_version": row["suite_version"],
        "target": row["target"],
        "passed": bool(row["passed"]),
        "total": row["total"],
        "failed": row["failed"],
        "p95_ms": row["p95_ms"],
        "requested_by": row["requested_by"],
    }


def release_timeline(conn: Connection, *, tenant: str, release: str, environment: str | None = None) -> dict[str, Any]:
    """Every gate record of `release` (in `environment` when given), newest first, at most 100 of each kind.

    A release the tenant never sent an event of and has no gate record of is unknown (ReleaseNotFound), exactly
    like a release of another tenant.
    """
    envs = release_reads.environments(conn, tenant=tenant, release=release)
    if envs is None:
        raise ReleaseNotFound(f"no release {release!r}", details={"release": release})

    # An analysis names the release it judges as its canary.
    analyses = canary_analyses.list_analyses(conn, tenant=tenant, canary=release, environment=environment, limit=LIMIT)
    rollout_rows = rollouts.list_rollouts(conn, tenant=tenant, release=release, environment=environment, limit=LIMIT)
    rollbacks = rollouts.list_rollbacks(conn, tenant=tenant, release=release, environment=environment, limit=LIMIT)
    evidence = readiness.list_evidence(conn, tenant=tenant, release=release, environment=environment, limit=LIMIT)
    reports = replays.list_reports(conn, tenant=tenant, release=release, environment=environment, limit=LIMIT)
    return {
        "release": release,
        "environment": environment,
        "environments": envs,
        "analyses": [_analysis(r) for r in analyses],
        "rollouts": [_rollout(r) for r in rollout_rows],
        "rollbacks": [_rollback(r) for r in rollbacks],
        "readiness": [_readiness(r) for r in evidence],
        "replays": [_replay(r) for r in reports],
    }
