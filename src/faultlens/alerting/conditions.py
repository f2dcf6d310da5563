"""What is wrong right now, per tenant: the conditions alert evaluation turns into candidates.

Each condition reads what ingest stored (rollups and recent raw events) and returns Candidates whose labels name
what is affected; the evaluator (alerting/evaluate.py) keeps their state. Levels (DECISIONS.md "Alerts"):
P0 security signals (alerting/security.py) and a main-path source's critical SLO hint; P1 critical SLO hints,
dead-letter surges, silent retry loops, dead-lettered notifications, release rollbacks, regressed failure groups of
actionable failures; P2 warn hints, recurring failures, event volume (cost), other regressed failure groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from faultlens.alert_model import Candidate, Level
from faultlens.alerting.routing import ConditionSettings
from faultlens.store import alerts as store
from faultlens.store import rollouts as rollout_rows
from faultlens.store.rollup_shapes import DAY_MS
from faultlens.timeutil import ms_to_rfc3339
from faultlens.triage import groups as failure_groups
from faultlens.triage import slo
from faultlens.triage.counts import Counts

MINUTE_MS = 60_000
# The notifications' own dead letters raise this alert; it never counts itself (store.dead_notifications).
DELIVERY_DEAD_LETTER = "alert_delivery_dead_letter"
# SLO hint levels -> alert levels; info hints (a dominant category) are advice, not alerts.
HINT_LEVELS = {"critical": Level.P1, "warn": Level.P2}
# On a main-path source (routing file main_path_sources) these critical hints mean the main path is down: P0.
MAIN_PATH_CODES = frozenset({"actionable_failure_rate_high", "success_rate_low"})
# The hints judged over the last hour (the rest judge their own windows: burn-rate pairs, the spike window).
HINT_WINDOW = "1h"


@dataclass(frozen=True)
class Context:
    tenant: str
    now: int
    slo_config: slo.SloConfig
    settings: ConditionSettings
    main_path_sources: frozenset[str]


Condition = Callable[[Connection, Context, dict[str, dict[str, Counts]]], list[Candidate]]


def _labels(name: str, level: str, **scope: str | None) -> dict[str, str]:
    out = {"alertname": name, "level": level}
    out.update({k: v for k, v in scope.items() if v})
    return out


def slo_candidates(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """The SLO hint engine (burn rates, spikes, thresholds over the last hour) as alerts."""
    window_counts = {source: windows[HINT_WINDOW] for source, windows in recent.items() if HINT_WINDOW in windows}
    hints = slo.build_hints(window_counts=window_counts, recent=recent, config=ctx.slo_config, window=HINT_WINDOW)
    out = []
    for hint in hints:
        level = HINT_LEVELS.get(hint.level)
        if level is None:
            continue
        if level == Level.P1 and hint.code in MAIN_PATH_CODES and hint.source in ctx.main_path_sources:
            level = Level.P0
        out.append(
            Candidate(
                name=hint.code,
                level=level.value,
                labels=_labels(hint.code, level.value, source=hint.source),
                summary=hint.message,
                value=hint.observed,
                threshold=hint.threshold,
                description=f"SLO hint {hint.code} ({hint.level}) judged over {hint.window}",
                source=hint.source,
            )
        )
    return out


def dead_letter_surge(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """Dead letters of the spike window against their rate over the last day: a surge pages (P1)."""
    s = ctx.settings
    out = []
    for source, windows in recent.items():
        now_n = windows.get(slo.SPIKE_WINDOW, Counts()).dead_letter
        day = windows.get("1d", Counts()).dead_letter
        if now_n < s.dead_letter_surge_min:
            continue
        base = day * slo.SPIKE_WINDOW_MS / DAY_MS  # the day's dead letters per spike window
        if now_n < s.dead_letter_surge_factor * base:
            continue
        name = "dead_letter_surge"
        out.append(
            Candidate(
                name=name,
                level=Level.P1.value,
                labels=_labels(name, Level.P1.value, source=source),
                summary=(
                    f"{source}: {now_n} items dead-lettered in {slo.SPIKE_WINDOW_TEXT}, against {base:.1f} per "
                    f"{slo.SPIKE_WINDOW} over the last day"
                ),
                value=float(now_n),
                threshold=max(float(s.dead_letter_surge_min), s.dead_letter_surge_factor * base),
                description="Dead-lettered items are work nobody will retry: replay or fix them before they expire.",
                source=source,
            )
        )
    return out


def volume_spike(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """Events of the spike window against the day's rate: a cost anomaly (P2)."""
    s = ctx.settings
    out = []
    for source, windows in recent.items():
        now_n = windows.get(slo.SPIKE_WINDOW, Counts()).total
        day = windows.get("1d", Counts()).total
        base = day * slo.SPIKE_WINDOW_MS / DAY_MS
        if now_n < s.volume_min_events or now_n < s.volume_spike_factor * base:
            continue
        name = "event_volume_spike"
        out.append(
            Candidate(
                name=name,
                level=Level.P2.value,
                labels=_labels(name, Level.P2.value, source=source),
                summary=(
                    f"{source}: {now_n} events in {slo.SPIKE_WINDOW_TEXT}, {now_n / base:.1f}x its rate over the "
                    "last day"
                    if base
                    else f"{source}: {now_n} events in {slo.SPIKE_WINDOW_TEXT}, none the day before"
                ),
                value=float(now_n),
                threshold=max(float(s.volume_min_events), s.volume_spike_factor * base),
                description="Event volume drives storage and attempts cost; a retry storm or a loop often shows here.",
                source=source,
            )
        )
    return out


def recurring(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """One failure kind (or, for failures no rule names, one fingerprint) recurring in the last minutes (P2)."""
    s = ctx.settings
    since = ctx.now - int(s.recurring_window_s * 1000)
    rows = store.recurring_failures(conn, tenant=ctx.tenant, since=since, end=ctx.now + 1, min_count=1)
    # Keyed by what the alert's labels say (routes can match on source, environment, class and category); failures
    # no rule names are grouped by fingerprint, the others by failure kind.
    groups: dict[tuple[bool, str, str, str, str, str], int] = {}
    for r in rows:
        by_print = r["failure_kind"] in ("unknown", "unclassified") and bool(r["fingerprint_id"])
        ident = r["fingerprint_id"] if by_print else r["failure_kind"]
        key = (by_print, r["source"], r["environment"] or "", r["failure_class"], ident, r["category"])
        groups[key] = groups.get(key, 0) + int(r["n"])
    minutes = f"{s.recurring_window_s / 60:g} minutes"
    out = []
    for (by_print, source, env, failure_class, ident, category), n in sorted(groups.items()):
        if n < s.recurring_min_failures:
            continue
        where = f"{source} ({env})" if env else source
        if by_print:
            name = "fingerprint_recurring"
            scope = {"fingerprint": ident}
            summary = f"{where}: {n} actionable failures no rule names share fingerprint {ident} in the last {minutes}"
            description = "An unknown message recurs: its fingerprint groups them; write the rule that names it."
        else:
            name = "failure_kind_recurring"
            scope = {"failure_kind": ident}
            summary = f"{where}: {n} actionable {ident} failures ({category}) in the last {minutes}"
            description = "One failure kind keeps recurring: its failures list shows the messages and traces."
        labels = _labels(
            name,
            Level.P2.value,
            source=source,
            environment=env,
            failure_class=failure_class,
            category=category,
            **scope,
        )
        out.append(
            Candidate(
                name=name,
                level=Level.P2.value,
                labels=labels,
                summary=summary,
                value=float(n),
                threshold=float(s.recurring_min_failures),
                description=description,
                source=source,
            )
        )
    return out


def retry_loops(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """Document 001's silent retry loop: retried again and again for the same reason with no success, or past
    its max_attempts (P1)."""
    s = ctx.settings
    since = ctx.now - int(s.recurring_window_s * 1000)
    rows = store.retry_loops(
        conn, tenant=ctx.tenant, since=since, end=ctx.now + 1, min_attempts=s.retry_loop_min_attempts
    )
    out = []
    for r in rows:
        past_max = int(r["past_max"] or 0)
        stuck = r["successes"] == 0 and max(int(r["retries"]), int(r["max_attempt"] or 0)) >= s.retry_loop_min_attempts
        if not (past_max or stuck):
            continue
        name = "silent_retry_loop"
        source, operation = r["source"], r["operation"] or None
        where = f"{source}/{operation}" if operation else source
        why = (
            f"{past_max} retries past their max_attempts ({r['max_attempts']})"
            if past_max
            else f"{r['retries']} retries (attempt {r['max_attempt']}) and no success"
        )
        out.append(
            Candidate(
                name=name,
                level=Level.P1.value,
                labels=_labels(
                    name, Level.P1.value, source=source, operation=operation, fingerprint=r["fingerprint_id"]
                ),
                summary=f"{where}: {why} in {s.recurring_window_s / 60:g} minutes, same reason",
                # Past max_attempts: the highest attempt against the allowed; else retries against the minimum.
                value=float(r["max_attempt"] if past_max else r["retries"]),
                threshold=float(r["max_attempts"] if past_max else s.retry_loop_min_attempts),
                description="Work retried with the same reason and no progress burns capacity and hides the failure.",
                source=source,
            )
        )
    return out


def delivery_dead_letters(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """Notifications dead-lettered in the last week and not re-sent (P1, per receiver)."""
    dead = store.dead_notifications(
        conn, tenant=ctx.tenant, since=ctx.now - 7 * DAY_MS, exclude_alert=DELIVERY_DEAD_LETTER
    )
    out = []
    for receiver, n in sorted(dead.items()):
        out.append(
            Candidate(
                name=DELIVERY_DEAD_LETTER,
                level=Level.P1.value,
                labels=_labels(DELIVERY_DEAD_LETTER, Level.P1.value, receiver=receiver),
                summary=f"{n} alert notifications to receiver {receiver} were dead-lettered after their last try",
                value=float(n),
                threshold=1.0,
                description="Fix the receiver, then re-send them: `faultlens alerts resend --all-dead`.",
            )
        )
    return out


def release_rollbacks(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """A rollback decided by a rollout (releases/rollouts.py), until its recovery is confirmed and a replay of the
    release has passed (P1): the newest per release, environment and source."""
    out = []
    for r in rollout_rows.alerting_rollbacks(conn, tenant=ctx.tenant):
        name = "release_rollback"
        release, env = r["release"], r["environment"]
        if r["recovery_state"] in rollout_rows.UNRECOVERED:
            summary = f"roll back {release} in {env}: {r['reason']}"
        else:
            summary = f"{release} was rolled back in {env}, a replay must pass before traffic returns: {r['reason']}"
        replay = {True: "passed", False: "failed"}.get(r["replay_passed"], "not run")
        out.append(
            Candidate(
                name=name,
                level=Level.P1.value,
                labels=_labels(name, Level.P1.value, release=release, environment=env, source=r["source"]),
                summary=summary,
                value=max(0, ctx.now - r["decided_at"]) / MINUTE_MS,  # minutes since the decision
                threshold=(r["deadline_at"] - r["decided_at"]) / MINUTE_MS,  # ROLLBACK_MAX_MINUTES when decided
                description=(
                    f"rollback {r['id']}: decided {ms_to_rfc3339(r['decided_at'])}, recovery {r['recovery_state']} "
                    f"(deadline {ms_to_rfc3339(r['deadline_at'])}), replay {replay}. Traffic back on "
                    f"{r['baseline'] or 'the baseline'}: `faultlens rollout complete-rollback {r['id']}`."
                ),
                source=r["source"],
            )
        )
    return out


def group_regressions(conn: Connection, ctx: Context, recent: dict[str, dict[str, Counts]]) -> list[Candidate]:
    """A resolved failure group seen again (the group lifecycle marked it regressed), until a person acts on it or
    GROUP_REGRESSED_DAYS pass: P1 when most of its events since are actionable, else P2. The group_id label links
    the alert to /groups/<id>."""
    out = []
    for g in failure_groups.list_regressed(conn, tenant=ctx.tenant, now=ctx.now):
        name = "group_regressed"
        level = Level.P1 if g["count"] and g["actionable"] * 2 >= g["count"] else Level.P2
        title = str(g["title"])[:200]
        out.append(
            Candidate(
                name=name,
                level=level.value,
                labels=_labels(name, level.value, group_id=g["id"]),  # the title may generalise: not an identity
                summary=f"failure group {g['id']} came back after it was resolved: {title}",
                value=float(g["count"]),
                threshold=1.0,
                description=(
                    f"regressed {ms_to_rfc3339(g['regressed_at'])}; {g['count']} events since "
                    f"({g['actionable']} actionable). See /groups/{g['id']}; resolve, ignore or assign it there "
                    f"(POST /api/v1/groups/{g['id']}/status)."
                ),
            )
        )
    return out


CONDITIONS: tuple[Condition, ...] = (
    slo_candidates,
    dead_letter_surge,
    volume_spike,
    recurring,
    retry_loops,
    delivery_dead_letters,
    release_rollbacks,
    group_regressions,
)


def data_candidates(conn: Connection, ctx: Context) -> list[Candidate]:
    """Every data condition of the tenant (security ones come from alerting/security.py)."""
    recent = slo.count_recent(conn, tenant=ctx.tenant, now=ctx.now)
    out: list[Candidate] = []
    for condition in CONDITIONS:
        out.extend(condition(conn, ctx, recent))
    return out
