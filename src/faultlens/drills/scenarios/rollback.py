"""The `rollback` drill: a bad canary build decides a rollback, recovery is confirmed and timed, and the drill's result
becomes a rollback drill record (POST /api/v1/releases/rollbacks/drills) that readiness' rollback check reads."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from faultlens.drills.harness import Drill, DrillContext, DrillResult, Server, trace_id_of
from faultlens.drills.report import render_markdown
from faultlens.timeutil import ms_to_rfc3339, now_ms, parse_rfc3339_ms

ENVIRONMENT = "staging"  # readiness' default environment
BASELINE = "drill-good"
CANARY = "drill-bad"
SOURCE = "drill-checkout"
# Per analysis window: enough outcomes for the canary's minimum samples (200 per arm) and its power check.
BASELINE_N, CANARY_N = 600, 240
BASELINE_BAD, CANARY_BAD = 0.01, 0.20  # actionable failure shares of the good and the bad build
RATIO = CANARY_N / (BASELINE_N + CANARY_N)
# The readiness rollback check reads this environment's drill records only, so the record made inside the drill is
# judged apart from the real rollback the drill's rollout decided.
RECORD_ENVIRONMENT = "drill-record"
RECORD_LINE = "rollback drill record"
BATCH = 500


def outcomes(release: str, n: int, bad_share: float, since: int, until: int, *, slow: bool) -> list[dict[str, Any]]:
    """n outcomes of `release` spread over [since, until): the first bad_share of them 502s (actionable)."""
    bad = round(n * bad_share)
    step = max(1, (until - since) // n)
    tag = secrets.token_hex(3)
    out: list[dict[str, Any]] = []
    for i in range(n):
        failed = i < bad
        out.append(
            {
                "id": f"{release}-{tag}-{i}",
                "source": SOURCE,
                "operation": "POST /orders",
                "status": "failure" if failed else "success",
                "occurred_at": ms_to_rfc3339(min(since + i * step, until - 1)),
                "duration_ms": (240.0 if slow else 60.0) + (i % 11),
                "release": release,
                "environment": ENVIRONMENT,
                **({"http_status": 502, "error_message": "upstream answered 502"} if failed else {"http_status": 200}),
            }
        )
    return out


def _send(ctx: DrillContext, server: Server, rows: list[dict[str, Any]]) -> int:
    accepted = 0
    for i in range(0, len(rows), BATCH):
        answer = server.post("/api/v1/events", json=rows[i : i + BATCH], timeout=30)
        if answer.status_code == 200:
            accepted += int(answer.json().get("accepted", 0)) + int(answer.json().get("duplicates", 0))
    ctx.lost += len(rows) - accepted
    return accepted


def _traffic(ctx: DrillContext, server: Server, window_ms: int, *, canary: bool) -> None:
    """One interval of traffic that has just happened: the good build's share, and the bad build's when it serves."""
    until = now_ms()
    since = until - window_ms * 8 // 10
    rows = outcomes(BASELINE, BASELINE_N, BASELINE_BAD, since, until, slow=False)
    if canary:
        rows += outcomes(CANARY, CANARY_N, CANARY_BAD, since, until, slow=True)
    sent = _send(ctx, server, rows)
    ctx.note(f"{sent} outcomes in ({'baseline and canary' if canary else 'baseline only'})")


def _detail(answer: httpx.Response) -> str:
    """A check's detail: the status, and the body only when it is not the expected answer."""
    return f"status {answer.status_code}" + ("" if answer.status_code < 300 else f": {answer.text[:300]}")


def _summary(server: Server, *, since: int, until: int, release: str | None = None) -> dict[str, Any]:
    params = {"since": ms_to_rfc3339(since), "until": ms_to_rfc3339(until), "environment": ENVIRONMENT}
    if release is not None:
        params["release"] = release
    answer = server.get("/api/v1/stats/summary", params=params)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _traced_lines(ctx: DrillContext, server: Server, trace_id: str | None) -> list[dict[str, Any]]:
    return ctx.try_wait(lambda: [x for x in server.logs() if x.get("trace_id") == trace_id], 5) or []


def _wait_ms(ctx: DrillContext, ms: int, what: str) -> None:
    start = now_ms()
    ctx.wait_until(lambda: now_ms() - start >= ms, ms / 1000 + 5, what)


def _decide(ctx: DrillContext, server: Server, rollout_id: str, interval_ms: int, rounds: int) -> dict[str, Any]:
    """Analyse once per interval (the window holds only that interval's traffic) until the decision is rollback."""
    for n in range(1, rounds + 1):
        _traffic(ctx, server, interval_ms, canary=True)
        answer = server.post(f"/api/v1/releases/rollouts/{rollout_id}/analyze", timeout=30)
        ctx.check(f"analysis {n} answered 200", answer.status_code == 200, _detail(answer))
        outcome: dict[str, Any] = answer.json()
        analysis = outcome.get("analysis", {})
        verdict = analysis.get("verdict")
        ctx.note(f"analysis {n}: verdict {verdict}, score {analysis.get('score')}, decision {outcome.get('decision')}")
        ctx.check(f"analysis {n} fails the bad canary", verdict == "fail", str(analysis.get("reasons"))[:300])
        if outcome.get("decision") == "rollback":
            # The deciding request's trace leads to its log lines: who asked, when, what was answered.
            trace_id = trace_id_of(answer)
            ctx.add_trace_id(trace_id)
            ctx.add_log_lines(_traced_lines(ctx, server, trace_id)[:5])
            return outcome
        # The next analysis' window must not see this interval's traffic again.
        _wait_ms(ctx, interval_ms, "the next interval")
    return {}


def _record_body(
    *, decided_at: int, completed_at: int, recovered: bool, text: str, environment: str, source: str | None
) -> dict[str, Any]:
    return {
        "release": CANARY,
        "baseline": BASELINE,
        "environment": environment,
        "source": source,
        "decided_at": ms_to_rfc3339(decided_at),
        "completed_at": ms_to_rfc3339(completed_at),
        "recovered": recovered,
        "report": {"format": "markdown", "text": text},
    }


def _interim_report(ctx: DrillContext) -> str:
    """The record made inside the drill carries what the drill saw so far (the final report is longer)."""
    lines = ["# rollback drill (recorded during the run)", "", "## Checks", ""]
    lines += [f"- [{'x' if c.ok else ' '}] {c.name}{f': {c.detail}' if c.detail else ''}" for c in ctx.checks]
    lines += ["", "## Timeline", ""] + [f"- {ms / 1000:.2f} s: {text}" for ms, text in ctx.timeline]
    return "\n".join(lines) + "\n"


def _readiness_uses(ctx: DrillContext, server: Server, *, environment: str, rollback_id: str, drill: bool) -> None:
    answer = server.post("/api/v1/releases/readiness", json={"release": BASELINE, "environment": environment})
    ctx.check(f"readiness in {environment} answered 200", answer.status_code == 200, _detail(answer))
    check = answer.json().get("checks", {}).get("rollback", {}) if answer.status_code == 200 else {}
    used = check.get("evidence", {}).get("rollback") or {}
    ctx.note(f"readiness rollback check in {environment}: {check.get('reason')}")
    ctx.check(
        f"readiness' rollback check in {environment} passes from this {'drill record' if drill else 'rollback'}",
        bool(check.get("passed")) and used.get("id") == rollback_id and used.get("drill") is drill,
        f"{check.get('reason')}; evidence {used}",
    )


def run(ctx: DrillContext) -> None:
    interval_ms = max(int(ctx.cfg.seconds(60) * 1000), 3000)
    # The drill asks for each analysis itself (POST .../analyze), as a deploy pipeline's step would, so the
    # analyzer duty stays off: its own passes would race the drill's windows.
    server = ctx.start_server(start_release_analyzer=False, release_canary_ratio=RATIO)
    body = {
        "release": CANARY,
        "baseline": BASELINE,
        "environment": ENVIRONMENT,
        "source": SOURCE,
        "ratio": RATIO,
        "interval_min": interval_ms / 60_000,
        "max_failures": 2,
    }
    started = server.post("/api/v1/releases/rollouts", json=body)
    ctx.check("the rollout started", started.status_code == 201, _detail(started))
    rollout_id = started.json()["id"]
    ctx.note(f"rollout {rollout_id}: {CANARY} against {BASELINE}, interval {interval_ms / 1000:g} s")

    decided = _decide(ctx, server, rollout_id, interval_ms, rounds=4)
    rollback = decided.get("rollback") or {}
    ctx.check("the rollout decided rollback", decided.get("decision") == "rollback", str(decided.get("rollout"))[:300])
    if not rollback:
        return
    decided_at = parse_rfc3339_ms(rollback["decided_at"])
    ctx.note(f"rollback {rollback['id']} decided: {rollback['reason']}")
    ctx.check("the reason names the actionable failure rate", "actionable" in rollback["reason"], rollback["reason"])
    status = server.get(f"/api/v1/releases/rollouts/{rollout_id}/status").json()
    ctx.check(
        "the deploy gate says rollback and blocks the release",
        status.get("rollback") is True and status.get("blocked") is True,
        str(status.get("blocked_reason")),
    )

    # Traffic back on the good build: one interval of baseline-only outcomes after the decision.
    ctx.wait_until(lambda: now_ms() - decided_at >= interval_ms // 2, interval_ms / 1000 + 5, "traffic to move")
    _traffic(ctx, server, interval_ms // 2, canary=False)
    until = now_ms()
    gone = _summary(server, since=decided_at, until=until, release=CANARY)
    after = _summary(server, since=decided_at, until=until)
    before = _summary(server, since=decided_at - interval_ms, until=decided_at, release=BASELINE)
    ctx.check("the bad build serves nothing after the decision", gone["total"] == 0, f"{gone['total']} outcomes")
    recovered = (
        gone["total"] == 0
        and after["total"] > 0
        and after["actionable_failure_rate"] <= before["actionable_failure_rate"] * 1.5 + 0.005
    )
    rates = f"{after['actionable_failure_rate']:.2%} after, baseline {before['actionable_failure_rate']:.2%} before"
    ctx.check("the environment's actionable failure rate is back to the baseline's", recovered, rates)

    done = server.post(
        f"/api/v1/releases/rollbacks/{rollback['id']}/complete",
        json={"recovered": recovered, "detail": f"rollback drill: {rates}"},
    )
    ctx.check("recovery confirmed", done.status_code == 200, _detail(done))
    completed = done.json() if done.status_code == 200 else {}
    completed_at = parse_rfc3339_ms(str(completed.get("completed_at") or ms_to_rfc3339(now_ms())))
    took_ms = completed_at - decided_at
    deadline = parse_rfc3339_ms(rollback["deadline_at"])  # decided_at + ROLLBACK_MAX_MINUTES
    ctx.note(f"recovery confirmed {took_ms / 1000:.1f} s after the decision")
    ctx.metric_deltas["rollback_decision_to_recovery_seconds"] = took_ms / 1000
    ctx.check(
        "recovered within ROLLBACK_MAX_MINUTES",
        completed.get("recovery_state") == "recovered" and completed_at <= deadline,
        f"{took_ms / 1000:.1f} s; deadline {rollback['deadline_at']}",
    )
    _readiness_uses(ctx, server, environment=ENVIRONMENT, rollback_id=rollback["id"], drill=False)

    # The drill's own record, through the route the team's faultlens takes it on, judged by readiness.
    text = _interim_report(ctx)
    record = _record_body(
        decided_at=decided_at,
        completed_at=completed_at,
        recovered=recovered,
        text=text,
        environment=RECORD_ENVIRONMENT,
        source=None,
    )
    stored = server.post("/api/v1/releases/rollbacks/drills", json=record)
    ctx.check("the drill record was stored", stored.status_code == 201, _detail(stored))
    if stored.status_code != 201:
        return
    drill_id = stored.json()["id"]
    report = server.get(f"/api/v1/releases/rollbacks/{drill_id}/report")
    ctx.check(
        "the drill report reads back as markdown",
        report.status_code == 200
        and report.headers.get("content-type", "").startswith("text/markdown")
        and report.text == text,
        f"status {report.status_code}",
    )
    _readiness_uses(ctx, server, environment=RECORD_ENVIRONMENT, rollback_id=drill_id, drill=True)
    ctx.add_log_lines(
        [
            {
                "msg": RECORD_LINE,
                "rollback_id": rollback["id"],
                "decided_at": ms_to_rfc3339(decided_at),
                "completed_at": ms_to_rfc3339(completed_at),
                "recovered": recovered,
                "recovery_seconds": took_ms / 1000,
            }
        ]
    )


DRILL = Drill(
    name="rollback",
    title="Rollback: a bad canary rolled back and recovery confirmed",
    shows=(
        "Failing canary analyses decide a rollback with its reason, recovery is confirmed and timed within "
        "ROLLBACK_MAX_MINUTES, and the drill's record passes readiness' rollback check."
    ),
    run=run,
)


def drill_record(result: DrillResult, *, environment: str, source: str | None = None) -> dict[str, Any]:
    """The body of POST /api/v1/releases/rollbacks/drills for a finished rollback drill: its decision and recovery
    times and its full markdown report. ValueError when the drill never reached a confirmed recovery."""
    line = next((x for x in result.log_lines if x.get("msg") == RECORD_LINE), None)
    if line is None:
        raise ValueError("the rollback drill recorded no decision and recovery: nothing to record")
    return _record_body(
        decided_at=parse_rfc3339_ms(line["decided_at"]),
        completed_at=parse_rfc3339_ms(line["completed_at"]),
        recovered=bool(line["recovered"]) and result.passed,
        text=render_markdown([result]),
        environment=environment,
        source=source,
    )


def send_record(
    result: DrillResult, *, url: str, key: str, environment: str, source: str | None = None, timeout_s: float = 10.0
) -> dict[str, Any]:
    """Record the drill in the faultlens at `url` (an admin key): the stored rollback, as the route answers it."""
    body = drill_record(result, environment=environment, source=source)
    answer = httpx.post(
        url.rstrip("/") + "/api/v1/releases/rollbacks/drills",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout_s,
    )
    answer.raise_for_status()
    stored: dict[str, Any] = answer.json()
    return stored
