"""Breakages: the failure groups of a window seen as incidents (status, severity, ownership, open and repeat rates),
and their trend per bucket. The parallel-ops contract's `breakages` partition is this (docs/overview.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection

from faultlens.store import groups as group_rows
from faultlens.store.alerts import group_alert_levels
from faultlens.store.rollup_reads import aggregate
from faultlens.timeutil import Window
from faultlens.triage import groups
from faultlens.triage.counts import ratio

OPEN = ("new", "ongoing", "regressed")
SEVERITIES = ("P0", "P1", "P2", "none")
UNASSIGNED = "unassigned"
# Owner of a group no one was assigned to and no alert named: what the alert routing gives its labels.
RouteOwner = Callable[[Mapping[str, str]], str]
_ALL = 1 << 62  # list every group of the window in one page


def breakage_summary(
    conn: Connection,
    *,
    tenant: str,
    grouping: groups.Grouping,
    window: Window,
    lifecycle: groups.Lifecycle,
    now: int,
    route_owner: RouteOwner | None = None,
) -> dict[str, Any]:
    """The groups with failures in the window (or acted on in it) as incidents.

    - by_status: the statuses the groups page shows; open = new + ongoing + regressed; open_rate = open / total.
    - by_severity: the most severe level of the alerts that named the group and fired (none: no alert did).
    - by_owner: the assignee, else the owner of its alert, else what the alert routing gives a group_regressed alert
      of its busiest source, else "unassigned".
    - repeat_rate: groups that came back after being resolved / groups ever resolved (regressed ones included),
      from the stored lifecycle (a regression older than GROUP_REGRESSED_DAYS still counts as a repeat).
    """
    listed = groups.list_groups(
        conn, tenant=tenant, grouping=grouping, window=window, lifecycle=lifecycle, now=now, limit=_ALL
    )
    items: list[dict[str, Any]] = listed["items"]
    states = group_rows.list_states(conn, tenant=tenant)
    alerted = group_alert_levels(conn, tenant=tenant)
    by_severity: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    resolved_ever = regressed = 0
    for item in items:
        level, alert_owner = alerted.get(item["id"], ("none", ""))
        by_severity[level] += 1
        owner = item["assignee"] or alert_owner
        if not owner and route_owner is not None:
            labels = {"alertname": "group_regressed", "group_id": item["id"]}
            if item["sources"]:
                labels["source"] = item["sources"][0]
            owner = route_owner(labels)
        by_owner[owner or UNASSIGNED] += 1
        stored = (states.get(item["id"]) or {}).get("status")
        if stored == "regressed":
            regressed += 1
        if stored in ("resolved", "regressed"):
            resolved_ever += 1
    total = len(items)
    by_status = listed["status_counts"]
    open_total = sum(by_status[s] for s in OPEN)
    events = sum(int(i["count"]) for i in items)
    return {
        "total": total,
        "by_status": by_status,
        "open_total": open_total,
        "open_rate": ratio(open_total, total),
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "by_owner": dict(sorted(by_owner.items(), key=lambda kv: (-kv[1], kv[0]))),
        "assigned_total": sum(1 for i in items if i["assignee"]),
        "resolved_ever_total": resolved_ever,
        "regressed_total": regressed,
        "repeat_rate": ratio(regressed, resolved_ever),
        "failed_total": events,
        "actionable_failed_total": sum(round(i["actionable_share"] * i["count"]) for i in items),
    }


def breakage_buckets(
    conn: Connection, *, tenant: str, grouping: groups.Grouping, window: Window, bucket_ms: int
) -> tuple[dict[int, dict[str, int]], dict[str, int]]:
    """Per epoch-aligned bucket touching the window: groups with failures in it (total), groups first seen in it
    (new_total) and their failures (failed_total); and the same over the whole window (total: distinct groups).
    One read of the group rollups."""
    rows = aggregate(
        conn, tenant=tenant, start=window.start_ms, end=window.end_ms, by=("fingerprint_id",), bucket_ms=bucket_ms
    )
    seen: dict[int, set[str]] = {}
    failed: Counter[int] = Counter()
    for (bucket, fid), (n, _attempts) in rows.items():
        seen.setdefault(bucket, set()).add(grouping.group_of(fid))
        failed[bucket] += n
    first_seen = groups.first_seen_of(
        conn, tenant=tenant, grouping=grouping, group_ids=set().union(*seen.values()) if seen else set()
    )
    per_bucket: dict[int, dict[str, int]] = {}
    for bucket, gids in seen.items():
        new = sum(1 for g in gids if bucket <= first_seen.get(g, -1) < bucket + bucket_ms)
        per_bucket[bucket] = {"total": len(gids), "new_total": new, "failed_total": failed[bucket]}
    every = set().union(*seen.values()) if seen else set()
    totals = {
        "total": len(every),
        "new_total": sum(1 for g in every if window.start_ms <= first_seen.get(g, -1) < window.end_ms),
        "failed_total": sum(failed.values()),
    }
    return per_bucket, totals
