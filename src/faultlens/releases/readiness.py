"""Release readiness (document 004 §7): seven checks and the replay, each with the evidence it used; an admission
decision stored as an immutable evidence record (store/readiness.py) with its inputs, who asked and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from faultlens.errors import InvalidRequest
from faultlens.releases import rollouts
from faultlens.releases.stats import quantile
from faultlens.settings import Settings
from faultlens.store import alerts as alert_store
from faultlens.store import canary_analyses, replays
from faultlens.store import readiness as store
from faultlens.store import rollouts as rollout_store
from faultlens.timeutil import Window, ms_to_rfc3339, now_ms, resolve_window
from faultlens.triage.slo import SloConfig

CHECKS = ("quality", "performance", "security", "cost", "rollout", "rollback", "ops")
# More attempts per event than this means retries multiply the cost of every outcome.
MAX_ATTEMPTS_PER_EVENT = 3.0
COST_ALERT = "event_volume_spike"
# Alerts the release gates raise themselves: they need a runbook even before one ever fired.
GATE_ALERTS = (("release_rollback", "P1"),)
DAY_MS = 86_400_000
MINUTE_MS = 60_000
Check = dict[str, Any]
# (alertname, level) -> the runbook link its notifications carry, or None (from the alert routing in force).
RunbookFor = Callable[[str, str], str | None]


def _check(passed: bool, reason: str, **evidence: Any) -> Check:
    return {"passed": passed, "reason": reason, "evidence": evidence}


def _rate(part: int, total: int) -> float:
    return part / total if total else 0.0


def _quality(counts: Mapping[str, Mapping[str, int]], slo: SloConfig, source: str | None, *, what: str) -> Check:
    total = sum(c["total"] for c in counts.values())
    actionable = sum(c["actionable"] for c in counts.values())
    wanted = slo.for_source(source).min_events if source else slo.default.min_events
    per_source = {}
    breached = []
    for name, c in sorted(counts.items()):
        objective = slo.for_source(name)
        rate = _rate(c["actionable"], c["total"])
        judged = c["total"] >= objective.min_events
        per_source[name] = {
            "events": c["total"],
            "actionable": c["actionable"],
            "actionable_failure_rate": rate,
            "objective": objective.budget,
            "judged": judged,
        }
        if judged and rate > objective.budget:
            breached.append(f"{name} {rate:.2%} > {objective.budget:.2%}")
    evidence = {"events": total, "actionable": actionable, "actionable_failure_rate": _rate(actionable, total)}
    if total == 0:
        return _check(False, f"no evidence: no event of {what} in the window", **evidence, sources=per_source)
    if total < wanted:
        reason = f"too little evidence: {total} events of {what}, the objective wants at least {wanted}"
        return _check(False, reason, **evidence, sources=per_source)
    if breached:
        reason = f"actionable failure rate above the objective: {', '.join(breached)}"
        return _check(False, reason, **evidence, sources=per_source)
    reason = f"actionable failure rate {_rate(actionable, total):.2%} over {total} events is within every objective"
    return _check(True, reason, **evidence, sources=per_source)


def _performance(durations: list[float], report: dict[str, Any] | None) -> Check:
    events_p95 = quantile(durations, 0.95) if durations else None
    seen = {"events_p95_ms": events_p95, "events_with_duration": len(durations)}
    # The SLO file holds no latency objective: the replay's latency budgets are the objective (DECISIONS.md).
    if report is None:
        return _check(False, "no replay report: its latency budgets are the performance objective", **seen)
    budgeted = [r for r in report.get("results", []) if r.get("latency_budget_ms") is not None]
    seen.update(replay_report_id=report["id"], replay_p95_ms=report.get("p95_ms"), budgets=len(budgeted))
    if not budgeted:
        return _check(False, "the replay suite sets no latency budget", **seen)
    over = [
        r["name"]
        for r in budgeted
        if r.get("outcome") == "not_run" or r.get("duration_ms") is None or r["duration_ms"] > r["latency_budget_ms"]
    ]
    if over:
        return _check(
            False,
            f"{len(over)} of {len(budgeted)} replayed requests missed their latency budget",
            **seen,
            over_budget=over[:50],
        )
    return _check(True, f"every one of {len(budgeted)} replayed requests met its latency budget", **seen)


def _alert_list(rows: list[alert_store.AlertRow]) -> list[dict[str, Any]]:
    return [{"id": a.id, "name": a.name, "level": a.level, "labels": a.labels} for a in rows]


def _security(firing: list[alert_store.AlertRow]) -> Check:
    p0 = [a for a in firing if a.level == "P0"]
    if p0:
        return _check(False, f"{len(p0)} P0 alert(s) firing", firing=_alert_list(p0))
    return _check(True, "no P0 alert firing", firing=[])


def _cost(counts: Mapping[str, Mapping[str, int]], firing: list[alert_store.AlertRow], source: str | None) -> Check:
    spikes = [a for a in firing if a.name == COST_ALERT and (source is None or a.labels.get("source") == source)]
    total = sum(c["total"] for c in counts.values())
    attempts = _rate(sum(c["attempt_sum"] for c in counts.values()), total)
    seen = {
        "attempts_per_event": attempts,
        "limit": MAX_ATTEMPTS_PER_EVENT,
        "events": total,
        "firing": _alert_list(spikes),
    }
    if spikes:
        return _check(False, f"{COST_ALERT} firing for {len(spikes)} source(s)", **seen)
    if total == 0:
        return _check(False, "no evidence: no event of the release to count attempts on", **seen)
    if attempts > MAX_ATTEMPTS_PER_EVENT:
        return _check(False, f"{attempts:.2f} attempts per event, above {MAX_ATTEMPTS_PER_EVENT:g}", **seen)
    return _check(True, f"{attempts:.2f} attempts per event and no event volume spike", **seen)


def _when(value: Any) -> Any:
    return ms_to_rfc3339(value) if isinstance(value, int) else value


def _rollout(conn: Connection, *, tenant: str, release: str) -> Check:
    blocked = rollouts.blocked_reason(conn, tenant=tenant, release=release)
    newest = canary_analyses.list_analyses(conn, tenant=tenant, canary=release, limit=1)
    seen: dict[str, Any] = {"blocked_reason": blocked, "analysis": None}
    if newest:
        a = newest[0]
        seen["analysis"] = {
            k: _when(a.get(k))
            for k in ("id", "verdict", "score", "baseline", "environment", "rollout_id", "created_at")
        }
    if blocked:
        return _check(False, f"blocked: {blocked}", **seen)
    if not newest:
        return _check(False, f"no canary analysis of {release}", **seen)
    if newest[0]["verdict"] != "pass":
        return _check(False, f"the last canary analysis of {release} says {newest[0]['verdict']}", **seen)
    return _check(True, "the last canary analysis passed and the release is not blocked", **seen)


def _rollback(
    conn: Connection, settings: Settings, *, tenant: str, environment: str, source: str | None, now: int
) -> Check:
    days = settings.readiness_rollback_drill_days
    since = now - days * DAY_MS
    rows = rollout_store.list_rollbacks(conn, tenant=tenant, environment=environment, since=since, limit=100)
    max_ms = settings.rollback_max_minutes * MINUTE_MS
    fit = [
        r
        for r in rows
        if r["recovery_state"] == "recovered"
        and r["completed_at"] is not None
        and r["completed_at"] - r["decided_at"] <= max_ms
        and (source is None or r["source"] in (None, source))
    ]
    seen: dict[str, Any] = {
        "days": days,
        "max_recovery_minutes": settings.rollback_max_minutes,
        "considered": len(rows),
    }
    if not fit:
        reason = (
            f"no rollback (drill or real) in {environment} recovered within {settings.rollback_max_minutes:g} "
            f"minutes in the last {days} days"
        )
        return _check(False, reason, **seen)
    r = fit[0]
    seen["rollback"] = {
        "id": r["id"],
        "drill": r["drill"],
        # The drill's report (GET /api/v1/releases/rollbacks/{id}/report): the dashboard links the check to it.
        "has_report": r["has_report"],
        "release": r["release"],
        "decided_at": ms_to_rfc3339(r["decided_at"]),
        "completed_at": ms_to_rfc3339(r["completed_at"]),
        "recovery_minutes": round((r["completed_at"] - r["decided_at"]) / MINUTE_MS, 2),
    }
    kind = "drill" if r["drill"] else "rollback"
    return _check(
        True, f"a {kind} in {environment} recovered in {seen['rollback']['recovery_minutes']:g} minutes", **seen
    )


def _ops(conn: Connection, firing: list[alert_store.AlertRow], runbook_for: RunbookFor, *, tenant: str) -> Check:
    paging = [a for a in firing if a.level in ("P0", "P1")]
    names = sorted(set(store.alert_names(conn, tenant=tenant)) | set(GATE_ALERTS))
    runbooks = {name: runbook_for(name, level) for name, level in names}
    missing = sorted(name for name, url in runbooks.items() if not url)
    seen = {"firing": _alert_list(paging), "runbooks": runbooks, "missing_runbooks": missing}
    if paging:
        return _check(False, f"{len(paging)} P0/P1 alert(s) firing", **seen)
    if missing:
        return _check(False, f"no runbook for {', '.join(missing)}", **seen)
    return _check(True, f"no P0/P1 alert firing; all {len(runbooks)} alert names have a runbook", **seen)


def _replay(
    conn: Connection, *, tenant: str, release: str, environment: str, report_id: str | None
) -> tuple[Check, dict[str, Any] | None]:
    if report_id is None:
        newest = replays.list_reports(conn, tenant=tenant, release=release, environment=environment, limit=1)
        report_id = newest[0]["id"] if newest else None
    if report_id is None:
        return _check(False, f"no replay of {release} in {environment}", report=None), None
    summary = replays.find_summary(conn, tenant=tenant, report_id=report_id)  # another tenant's id: 404
    report = replays.get_report(conn, tenant=tenant, report_id=report_id)
    rollback = rollout_store.list_rollbacks(conn, tenant=tenant, release=release, drill=False, limit=1)
    seen = {
        "report": {
            k: summary[k] for k in ("id", "release", "environment", "suite", "suite_version", "passed", "finished_at")
        },
        "last_rollback_at": ms_to_rfc3339(rollback[0]["decided_at"]) if rollback else None,
    }
    if summary["release"] != release:
        return _check(False, f"replay {report_id} is of release {summary['release']}, not {release}", **seen), report
    if not summary["passed"]:
        return _check(False, f"replay {report_id} did not pass", **seen), report
    if rollback and summary["finished_at_ms"] <= rollback[0]["decided_at"]:
        return _check(False, "the replay is older than the release's last rollback: replay again", **seen), report
    return _check(True, f"replay {report_id} passed", **seen), report


def _window(window: str | None, since: str | None, until: str | None, now: int) -> Window:
    try:
        return Window(*resolve_window(window, since, until, now=now))
    except InvalidRequest as exc:
        params = [{**p, "location": "body"} for p in exc.details.get("params", [])]
        raise InvalidRequest(exc.message, details={"params": params}) from None


def evaluate_readiness(
    engine: Engine,
    settings: Settings,
    *,
    slo: SloConfig,
    rule_version: str,
    runbook_for: RunbookFor,
    tenant: str,
    release: str,
    environment: str = "staging",
    source: str | None = None,
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    replay_report_id: str | None = None,
    requested_by: str,
    now: int | None = None,
) -> dict[str, Any]:
    """Judge every check and the replay, store the evidence record and return it (as GET answers it)."""
    now = now_ms() if now is None else now
    span = _window(window, since, until, now)
    scope: dict[str, Any] = {"tenant": tenant, "release": release, "environment": environment, "source": source}
    what = f"{release} in {environment}" + (f" ({source})" if source else "")
    with engine.connect() as conn:
        counts = store.release_counts(conn, **scope, since=span.start_ms, until=span.end_ms)
        durations = store.release_durations(conn, **scope, since=span.start_ms, until=span.end_ms)
        replay, report = _replay(
            conn, tenant=tenant, release=release, environment=environment, report_id=replay_report_id
        )
        firing = alert_store.list_alerts(conn, tenant=tenant, states=["firing"], limit=500)
        checks = {
            "quality": _quality(counts, slo, source, what=what),
            "performance": _performance(durations, report),
            "security": _security(firing),
            "cost": _cost(counts, firing, source),
            "rollout": _rollout(conn, tenant=tenant, release=release),
            "rollback": _rollback(conn, settings, tenant=tenant, environment=environment, source=source, now=now),
            "ops": _ops(conn, firing, runbook_for, tenant=tenant),
        }
    failed = [name for name in CHECKS if not checks[name]["passed"]]
    if not replay["passed"]:
        failed.append("replay")
    enforced = settings.p6_readiness_required
    evidence_id = str(uuid.uuid4())
    record: dict[str, Any] = {
        "id": evidence_id,
        "release": release,
        "environment": environment,
        "admitted": not failed if enforced else True,
        "replay_passed": bool(replay["passed"]),
        "replay_report_id": report["id"] if report else None,
        "failed_checks": failed,
        "checks": {**checks, "replay": replay},
        "inputs": {
            "request": {
                **{k: v for k, v in scope.items() if k != "tenant"},
                "window": window,
                "since": since,
                "until": until,
                "replay_report_id": replay_report_id,
            },
            "window": {"label": span.label, "since": ms_to_rfc3339(span.start_ms), "until": ms_to_rfc3339(span.end_ms)},
            "settings": {
                "p6_readiness_required": enforced,
                "readiness_rollback_drill_days": settings.readiness_rollback_drill_days,
                "rollback_max_minutes": settings.rollback_max_minutes,
                "max_attempts_per_event": MAX_ATTEMPTS_PER_EVENT,
            },
            "slo_objectives": {name: slo.for_source(name).model_dump() for name in sorted(counts) or ["default"]},
            "rule_version": rule_version,
        },
        "requested_by": requested_by,
    }
    with engine.begin() as conn:
        store.insert_evidence(conn, tenant=tenant, record=record, created_at=now)
        return store.get_evidence(conn, tenant=tenant, evidence_id=evidence_id)


def get_evidence(engine: Engine, *, tenant: str, evidence_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return store.get_evidence(conn, tenant=tenant, evidence_id=evidence_id)


def list_evidence(
    engine: Engine, *, tenant: str, release: str | None = None, environment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return store.list_evidence(conn, tenant=tenant, release=release, environment=environment, limit=limit)
