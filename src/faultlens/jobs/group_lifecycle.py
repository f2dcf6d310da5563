"""The "group_lifecycle" duty: failure groups change status on their own when events say so.

Each pass, on the one process holding the lease (jobs/duty.py), for every tenant with such groups:
- a resolved group with an event after resolved_at becomes regressed (regressed_at: the first such event);
- a regressed group whose regression is GROUP_REGRESSED_DAYS old becomes open again (shown as ongoing);
- an ignored group whose `until` passed, or whose events since ignoring reached its count, becomes open again.

Reads are cheap: template last_seen by an index range (fingerprints), counts from the group rollups; the raw
events are read only for the first event of a group that did regress. Each change is a compare-and-set on the
state read (a person acting meanwhile wins) and is recorded in the group's activity as done by "faultlens".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faultlens.jobs.duty import Duty
from faultlens.store import groups as store
from faultlens.store.rollup_shapes import HOUR_MS
from faultlens.timeutil import ms_to_rfc3339, now_ms
from faultlens.triage import groups as triage

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs.group_lifecycle")

NAME = "group_lifecycle"
ACTOR = triage.SYSTEM_ACTOR
_WATCHED = ("resolved", "ignored", "regressed")


@dataclass
class PassReport:
    at: int
    regressed: list[tuple[str, str]] = field(default_factory=list)  # (tenant, group id)
    reopened: list[tuple[str, str]] = field(default_factory=list)
    errors: int = 0

    @property
    def ok(self) -> bool:
        return self.errors == 0


def run_pass(services: Services, *, now: int | None = None) -> PassReport:
    """One pass over every tenant's resolved, ignored and regressed groups (see the module doc)."""
    now = now_ms() if now is None else now
    report = PassReport(now)
    with services.engine.connect() as conn:
        watched = store.list_states_with_status(conn, statuses=_WATCHED)
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for state in watched:
        by_tenant.setdefault(state["tenant"], []).append(state)
    for tenant, states in by_tenant.items():
        try:
            _tenant_pass(services, tenant, states, now, report)
        except Exception:
            log.exception("group lifecycle of tenant %r failed", tenant)
            report.errors += 1
    return report


def _tenant_pass(services: Services, tenant: str, states: list[dict[str, Any]], now: int, report: PassReport) -> None:
    regressed_ms = int(services.settings.group_regressed_days * 86_400_000)
    with services.engine.begin() as conn:
        grouping = triage.grouping_for(conn, tenant=tenant, templates=services.fingerprinters.for_tenant(tenant))
        resolved = {s["id"]: s for s in states if s["status"] == "resolved"}
        if resolved:
            since = min(int(s["resolved_at"] or 0) for s in resolved.values())
            recent = store.list_templates_seen_since(conn, tenant=tenant, since=since)
            seen_again: dict[str, list[str]] = {}
            for fid, last in recent.items():
                gid = grouping.group_of(fid)
                state = resolved.get(gid)
                if state is not None and last > int(state["resolved_at"] or 0):
                    seen_again.setdefault(gid, []).append(fid)
            for gid, fids in sorted(seen_again.items()):
                _regress(conn, tenant, resolved[gid], fids, now, report)
        for state in states:
            if state["status"] == "regressed" and int(state["regressed_at"] or 0) < now - regressed_ms:
                _reopen(
                    conn,
                    tenant,
                    state,
                    now,
                    "regressed",
                    f"regressed more than {regressed_ms // 86_400_000} days ago",
                    report,
                )
            elif state["status"] == "ignored":
                reason = _ignore_over(conn, tenant, grouping, state, now)
                if reason is not None:
                    _reopen(conn, tenant, state, now, "ignored", reason, report)


def _regress(conn: Any, tenant: str, state: dict[str, Any], fids: list[str], now: int, report: PassReport) -> None:
    resolved_at = int(state["resolved_at"] or 0)
    first = store.first_event_after(conn, tenant=tenant, fingerprint_ids=sorted(fids), after=resolved_at)
    if first is None:
        return  # last_seen moved by an event outside the raw retention, or not committed yet: next pass
    changed = store.swap_status(
        conn,
        tenant=tenant,
        group_id=state["id"],
        expected={"status": "resolved", "resolved_at": state["resolved_at"]},
        values={"status": "regressed", "regressed_at": first},
        by=ACTOR,
        at=now,
    )
    if changed:
        detail = {"status": "regressed", "first_event_at": ms_to_rfc3339(first)}
        store.add_activity(
            conn, tenant=tenant, group_id=state["id"], actor=ACTOR, action="status", detail=detail, at=now
        )
        report.regressed.append((tenant, state["id"]))


def _ignore_over(conn: Any, tenant: str, grouping: triage.Grouping, state: dict[str, Any], now: int) -> str | None:
    """Why an ignored group's ignoring ends now, or None."""
    until = state["ignore_until"]
    if until is not None and now >= int(until):
        return f"ignored until {ms_to_rfc3339(int(until))}"
    count = state["ignore_count"]
    if count is None or state["ignored_at"] is None:
        return None
    members = triage.members_of(conn, tenant=tenant, grouping=grouping, group_id=state["id"])
    hour = int(state["ignored_at"]) - int(state["ignored_at"]) % HOUR_MS
    seen = triage.events_since_hour(conn, tenant=tenant, members=members, hour=hour, now=now) - int(
        state["ignore_base"] or 0
    )
    return f"{seen} events since ignoring it (ignored until {count})" if seen >= int(count) else None


def _reopen(conn: Any, tenant: str, state: dict[str, Any], now: int, was: str, reason: str, report: PassReport) -> None:
    cleared = dict.fromkeys(
        ("resolved_at", "regressed_at", "ignored_at", "ignore_until", "ignore_count", "ignore_base")
    )
    changed = store.swap_status(
        conn,
        tenant=tenant,
        group_id=state["id"],
        expected={"status": was, "updated_at": state["updated_at"]},
        values={"status": "open", **cleared},
        by=ACTOR,
        at=now,
    )
    if changed:
        detail = {"status": "unresolved", "reason": reason}
        store.add_activity(
            conn, tenant=tenant, group_id=state["id"], actor=ACTOR, action="status", detail=detail, at=now
        )
        report.reopened.append((tenant, state["id"]))


def make_duty(services: Services) -> Duty:
    metrics = services.metrics

    def work() -> bool:
        return run_pass(services).ok

    return Duty(
        services.engine,
        NAME,
        work,
        interval_s=services.settings.group_lifecycle_interval_s,
        lease_ttl_s=services.settings.lease_ttl_s,
        on_pass=lambda ok: metrics.loop_pass(NAME, ok=ok),
        on_held=lambda held: metrics.duty_held(NAME, held),
    )


def start_group_lifecycle(services: Services) -> Callable[[], None]:
    """Start the duty on this process (it works only while holding the lease); returns its stop function."""
    if not services.settings.start_group_lifecycle:
        return lambda: None
    return make_duty(services).start()
