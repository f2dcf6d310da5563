"""Release-gate records written straight into their tables: a canary that failed twice, its rollback, replays and
readiness reports, for the timeline API and the Releases page tests."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert

from faultlens.store.tables import canary_analyses, readiness_evidence, replay_reports, rollbacks, rollouts

MINUTE = 60_000
METRICS = ("actionable_failure_rate", "latency_p95", "latency_p99", "client_abort_rate")


@dataclass
class Seeded:
    release: str
    rollout_id: str
    analyses: list[str] = field(default_factory=list)  # oldest first
    rollback_id: str = ""
    drill_id: str = ""
    replays: list[str] = field(default_factory=list)  # oldest first
    readiness: list[str] = field(default_factory=list)  # oldest first


def _metrics(verdicts: tuple[str, ...]) -> list[dict[str, Any]]:
    reasons = {
        "pass": "no significant increase",
        "fail": "canary is worse than the baseline (p < 0.05)",
        "inconclusive": "fewer than 200 outcomes in the canary arm",
    }
    return [
        {
            "name": name,
            "verdict": v,
            "baseline": 0.01,
            "canary": 0.05 if v == "fail" else 0.01,
            "p_value": 0.01,
            "reason": f"{name.replace('_', ' ')}: {reasons[v]}",
        }
        for name, v in zip(METRICS, verdicts, strict=True)
    ]


def seed_release(
    conn: Connection,
    *,
    tenant: str,
    release: str,
    baseline: str,
    environment: str,
    now: int,
    staging: str = "staging",
) -> Seeded:
    """A rollout of `release` in `environment` that passed, wavered, failed twice and was rolled back 12 minutes
    before `now`'s hour; a failed replay since (still blocked); a recovered drill in `staging`; two readiness
    reports (admitted in staging earlier, refused now)."""
    start = now - 130 * MINUTE
    rollout_id = str(uuid.uuid4())
    seeded = Seeded(release=release, rollout_id=rollout_id)
    decided = start + 100 * MINUTE
    conn.execute(
        insert(rollouts).values(
            id=rollout_id,
            tenant=tenant,
            release=release,
            baseline=baseline,
            environment=environment,
            source=None,
            ratio=0.1,
            interval_min=20.0,
            max_failures=2,
            state="rolled_back",
            consecutive_failures=2,
            last_verdict="fail",
            last_analysis_at=decided,
            decision="rollback",
            decision_reason="actionable failure rate: canary is worse than the baseline (p < 0.05)",
            decided_at=decided,
            created_by="key:deployer",
            created_at=start,
            updated_at=decided,
        )
    )
    plan = [
        ("pass", 1.0, ("pass", "pass", "pass", "pass")),
        ("pass", 1.0, ("pass", "pass", "pass", "pass")),
        ("inconclusive", 0.75, ("pass", "pass", "inconclusive", "pass")),
        ("fail", 0.5, ("fail", "fail", "pass", "pass")),
        ("fail", 0.25, ("fail", "fail", "fail", "pass")),
    ]
    for i, (verdict, score, verdicts) in enumerate(plan):
        at = start + (i + 1) * 20 * MINUTE
        analysis_id = str(uuid.uuid4())
        metrics = _metrics(verdicts)
        result = {"metrics": metrics, "reasons": [m["reason"] for m in metrics if m["verdict"] != "pass"]}
        conn.execute(
            insert(canary_analyses).values(
                id=analysis_id,
                tenant=tenant,
                rollout_id=rollout_id,
                baseline=baseline,
                canary=release,
                environment=environment,
                source=None,
                since=at - 20 * MINUTE,
                until=at,
                verdict=verdict,
                score=score,
                result=json.dumps(result),
                requested_by="release_analyzer",
                created_at=at,
            )
        )
        seeded.analyses.append(analysis_id)

    replay_failed = str(uuid.uuid4())
    conn.execute(
        insert(replay_reports).values(
            id=replay_failed,
            tenant=tenant,
            release=release,
            environment=staging,
            suite="checkout",
            suite_version="3",
            target="http://127.0.0.1:9/",
            passed=False,
            total=40,
            failed=3,
            p95_ms=412.5,
            rule_version="default@1",
            report=json.dumps({"counts": {"passed": 37, "failed": 3}}),
            requested_by="key:ci",
            started_at=decided + 15 * MINUTE,
            finished_at=decided + 16 * MINUTE,
        )
    )
    seeded.replays.append(replay_failed)
    seeded.rollback_id = str(uuid.uuid4())
    conn.execute(
        insert(rollbacks).values(
            id=seeded.rollback_id,
            tenant=tenant,
            rollout_id=rollout_id,
            release=release,
            baseline=baseline,
            environment=environment,
            source=None,
            reason="2 failing analyses in a row: actionable failure rate and latency p95 worse than the baseline",
            drill=False,
            decided_at=decided,
            deadline_at=decided + 30 * MINUTE,
            completed_at=decided + 12 * MINUTE,
            recovery_state="recovered",
            recovery_detail=json.dumps({"by": "analyzer"}),
            replay_report_id=replay_failed,
            replay_passed=False,
            created_by="release_analyzer",
        )
    )
    seeded.drill_id = str(uuid.uuid4())
    drill_at = start - 3 * 24 * 60 * MINUTE
    conn.execute(
        insert(rollbacks).values(
            id=seeded.drill_id,
            tenant=tenant,
            rollout_id=None,
            release=release,
            baseline=baseline,
            environment=staging,
            source=None,
            reason="rollback drill",
            drill=True,
            decided_at=drill_at,
            deadline_at=drill_at + 30 * MINUTE,
            completed_at=drill_at + 4 * MINUTE,
            recovery_state="recovered",
            recovery_detail=None,
            replay_report_id=None,
            replay_passed=None,
            created_by="key:sre",
        )
    )
    checks_ok = {
        name: {"passed": True, "reason": "ok", "evidence": {}}
        for name in ("quality", "performance", "security", "cost", "rollout", "rollback", "ops")
    }
    for at, admitted, env, failed in (
        (start - 60 * MINUTE, True, staging, []),
        (decided + 20 * MINUTE, False, staging, ["rollout", "replay"]),
    ):
        evidence_id = str(uuid.uuid4())
        checks = {
            **checks_ok,
            **{n: {"passed": False, "reason": "no", "evidence": {}} for n in failed if n != "replay"},
            # As releases/readiness.py stores it: the replay's judgement beside the seven checks.
            "replay": {"passed": "replay" not in failed, "reason": "replay", "evidence": {}},
        }
        conn.execute(
            insert(readiness_evidence).values(
                id=evidence_id,
                tenant=tenant,
                release=release,
                environment=env,
                admitted=admitted,
                replay_passed="replay" not in failed,
                failed_checks=json.dumps(failed),
                checks=json.dumps(checks),
                inputs=json.dumps({"window": "24h"}),
                replay_report_id=None,
                requested_by="key:ci",
                created_at=at,
            )
        )
        seeded.readiness.append(evidence_id)
    return seeded
