"""The "release_analyzer" duty: analyses due rollouts, marks rollbacks overdue and confirms recoveries.

Each pass, on the one process holding the lease (jobs/duty.py), for every tenant:
- every running rollout whose interval has passed is analysed over its last interval (releases/rollouts.py decides
  the rollback after max_failures failing analyses in a row);
- a pending rollback is confirmed recovered when no event of the rolled-back release arrived in its environment
  for one interval after the decision and the environment's actionable failure rate over that interval is not
  worse than the baseline's in the interval before the decision (one-sided two-proportion test at the canary
  alpha, at least the canary's minimum samples on each side); the evidence is kept in recovery_detail;
- a pending rollback past its deadline (decided_at + ROLLBACK_MAX_MINUTES) becomes overdue.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from faultlens.errors import FaultlensError, RolloutConflict, RolloutNotFound
from faultlens.jobs.duty import Duty
from faultlens.releases import rollouts
from faultlens.releases.stats import two_proportion_test
from faultlens.settings import Settings
from faultlens.store import rollouts as store
from faultlens.timeutil import ms_to_rfc3339, now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.releases.analyzer")

NAME = "release_analyzer"


@dataclass
class PassReport:
    at: int
    analysed: list[dict[str, Any]] = field(default_factory=list)  # {rollout_id, verdict, decision}
    rollbacks: list[str] = field(default_factory=list)  # rollback ids decided in this pass
    recovered: list[str] = field(default_factory=list)
    overdue: int = 0
    errors: int = 0

    @property
    def ok(self) -> bool:
        return self.errors == 0


def run_pass(
    engine: Engine, settings: Settings, *, now: int | None = None, analyze: rollouts.AnalyzeFn | None = None
) -> PassReport:
    """One pass (see the module doc); `now` and `analyze` for tests."""
    now = now_ms() if now is None else now
    report = PassReport(now)
    with engine.connect() as conn:
        due = store.due_rollouts(conn, now=now)
    for row in due:
        try:
            out = rollouts.analyze_rollout(
                engine, settings, tenant=row["tenant"], rollout_id=row["id"], now=now, analyze=analyze
            )
        except (RolloutConflict, RolloutNotFound):
            continue  # promoted or aborted since it was found due
        except Exception:
            # One rollout's failure (its analysis, its data) must not stop the others'.
            log.exception("rollout analysis failed", extra={"tenant_id": row["tenant"], "rollout_id": row["id"]})
            report.errors += 1
            continue
        report.analysed.append(
            {"rollout_id": row["id"], "verdict": out["analysis"]["verdict"], "decision": out["decision"]}
        )
        if out["rollback"] is not None:
            report.rollbacks.append(out["rollback"]["id"])
            log.warning(
                "rollback decided for %s in %s: %s",
                row["release"],
                row["environment"],
                out["rollback"]["reason"],
                extra={"tenant_id": row["tenant"], "rollout_id": row["id"]},
            )
    _check_recoveries(engine, settings, report)
    with engine.begin() as conn:
        report.overdue = store.mark_overdue(conn, now=now)
    if report.overdue:
        log.warning("%d rollbacks not confirmed recovered within ROLLBACK_MAX_MINUTES: overdue", report.overdue)
    return report


def _check_recoveries(engine: Engine, settings: Settings, report: PassReport) -> None:
    with engine.connect() as conn:
        pending = store.unrecovered_rollbacks(conn)
    for rollback in pending:
        try:
            evidence = recovery_evidence(engine, settings, rollback, now=report.at)
            if evidence is None or not evidence["recovered"]:
                continue
            rollouts.complete_rollback(
                engine,
                tenant=rollback["tenant"],
                rollback_id=rollback["id"],
                recovered=True,
                detail="confirmed by the release analyzer: the release is gone and the failure rate is back",
                by=rollouts.ANALYZER,
                now=report.at,
                evidence=evidence,
            )
            report.recovered.append(rollback["id"])
        except FaultlensError as exc:  # completed by the deploy tool meanwhile with another outcome
            log.info("rollback %s not completed by the analyzer: %s", rollback["id"], exc.message)
        except Exception:
            log.exception("rollback recovery check failed", extra={"tenant_id": rollback["tenant"]})
            report.errors += 1


def recovery_evidence(
    engine: Engine, settings: Settings, rollback: dict[str, Any], *, now: int
) -> dict[str, Any] | None:
    """What the automatic recovery check saw, with "recovered"; None while it cannot judge yet (less than one
    interval since the decision, or too few outcomes on either side)."""
    tenant, env, source, release = rollback["tenant"], rollback["environment"], rollback["source"], rollback["release"]
    with engine.connect() as conn:
        interval_ms = _interval_ms(conn, settings, rollback)
        decided = rollback["decided_at"]
        if now - decided < interval_ms:
            return None
        since = now - interval_ms
        scope = {"tenant": tenant, "environment": env, "source": source}
        gone_n, _ = store.outcome_counts(conn, **scope, since=since, until=now, release=release)
        after_n, after_bad = store.outcome_counts(conn, **scope, since=since, until=now)
        before = {"since": decided - interval_ms, "until": decided}
        if rollback["baseline"]:
            base_n, base_bad = store.outcome_counts(conn, **scope, **before, release=rollback["baseline"])
        else:
            base_n, base_bad = store.outcome_counts(conn, **scope, **before, exclude_release=release)
    evidence: dict[str, Any] = {
        "window": {"since": ms_to_rfc3339(since), "until": ms_to_rfc3339(now)},
        "rolled_back_release_outcomes": gone_n,
        "environment": _rate(after_n, after_bad),
        "baseline_before": {
            "release": rollback["baseline"],
            "since": ms_to_rfc3339(before["since"]),
            "until": ms_to_rfc3339(before["until"]),
            **_rate(base_n, base_bad),
        },
        "alpha": settings.release_canary_alpha,
        "min_samples": settings.release_canary_min_samples,
    }
    if gone_n:
        return {**evidence, "recovered": False, "reason": f"{release} still serves {gone_n} outcomes in {env}"}
    if min(after_n, base_n) < settings.release_canary_min_samples:
        return None
    test = two_proportion_test(base_bad, base_n, after_bad, after_n)
    worse = test.p_value < settings.release_canary_alpha
    evidence["test"] = {"name": "two_proportion_z_one_sided", "statistic": test.statistic, "p_value": test.p_value}
    reason = (
        f"the actionable failure rate of {env} is still worse than the baseline's before the rollback"
        if worse
        else f"{release} is gone from {env} and its actionable failure rate is not worse than the baseline's before"
    )
    return {**evidence, "recovered": not worse, "reason": reason}


def _interval_ms(conn: Any, settings: Settings, rollback: dict[str, Any]) -> int:
    minutes = settings.release_canary_duration_min
    if rollback["rollout_id"]:
        with contextlib.suppress(RolloutNotFound):  # rollouts are never deleted; the default if one were
            rollout = store.get_rollout(conn, tenant=rollback["tenant"], rollout_id=rollback["rollout_id"])
            minutes = rollout["interval_min"]
    return int(minutes * store.MINUTE_MS)


def _rate(total: int, actionable: int) -> dict[str, Any]:
    return {"total": total, "actionable": actionable, "rate": actionable / total if total else None}


def make_duty(services: Services) -> Duty:
    settings = services.settings
    metrics = services.metrics

    def work() -> bool:
        return run_pass(services.engine, settings).ok

    return Duty(
        services.engine,
        NAME,
        work,
        interval_s=settings.release_analyzer_interval_s,
        lease_ttl_s=settings.lease_ttl_s,
        on_pass=lambda ok: metrics.loop_pass(NAME, ok=ok),
        on_held=lambda held: metrics.duty_held(NAME, held),
    )


def start_release_analyzer(services: Services) -> Callable[[], None]:
    """Start the duty on this process (it works only while holding the lease); returns its stop function."""
    if not services.settings.start_release_analyzer:
        return lambda: None
    return make_duty(services).start()
