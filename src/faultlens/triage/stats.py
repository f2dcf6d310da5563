"""Failure statistics for a window: the summary counts and the error distribution by scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from faultlens.model import SCOPE_CLASSES, FailureClass, Scope
from faultlens.store import rollups


@dataclass(frozen=True)
class Window:
    """A resolved query window: label (e.g. "24h" or "custom") and [start_ms, end_ms)."""

    label: str
    start_ms: int
    end_ms: int


def summary(conn: Connection, *, tenant: str, window: Window, source: str | None = None) -> dict[str, Any]:
    where = {"source": source} if source else None
    rows = rollups.aggregate(
        conn,
        tenant=tenant,
        start=window.start_ms,
        end=window.end_ms,
        by=("status", "failure_class", "is_actionable"),
        where=where,
    )
    total = success = failures = actionable = 0
    by_class = {c: 0 for c in FailureClass}
    for (status, failure_class, is_actionable), (n, _attempts) in rows.items():
        total += n
        if status == "success":
            success += n
        cls = FailureClass(failure_class)
        by_class[cls] += n
        if cls is not FailureClass.NONE:
            failures += n
            if is_actionable:
                actionable += n
    return {
        "window": window.label,
        "total": total,
        "success_count": success,
        "failure_count": failures,
        "service_failure_count": by_class[FailureClass.SERVICE_FAILURE],
        "client_failure_count": by_class[FailureClass.CLIENT_FAILURE],
        "client_abort_count": by_class[FailureClass.CLIENT_ABORT],
        "actionable_failure_count": actionable,
        "actionable_failure_rate": actionable / total if total else 0.0,
    }


def error_distribution(
    conn: Connection, *, tenant: str, window: Window, scope: Scope, source: str | None = None
) -> dict[str, Any]:
    where = {"source": source} if source else None
    rows = rollups.aggregate(
        conn,
        tenant=tenant,
        start=window.start_ms,
        end=window.end_ms,
        by=("failure_class", "failure_kind"),
        where=where,
    )
    wanted = {c.value for c in SCOPE_CLASSES[scope]}
    counts: dict[str, int] = {}
    for (failure_class, kind), (n, _attempts) in rows.items():
        if failure_class in wanted:
            counts[kind] = counts.get(kind, 0) + n
    items = [{"failure_kind": k, "count": n} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"scope": scope.value, "window": window.label, "total": sum(counts.values()), "items": items}
