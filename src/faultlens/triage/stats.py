"""Failure statistics for a window: the summary counts and the error distribution by scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from faultlens.model import SCOPE_CLASSES, FailureClass, Scope
from faultlens.timeutil import Window
from faultlens.triage.counts import BY, tally, window_rows


def _where(source: str | None, release: str | None, environment: str | None) -> dict[str, str]:
    named = (("source", source), ("release", release), ("environment", environment))
    return {k: v for k, v in named if v is not None}


def summary(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    source: str | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    where = _where(source, release, environment)
    c = tally(window_rows(conn, tenant=tenant, window=window, where=where), BY)
    return {
        "window": window.label,
        "total": c.total,
        "success_count": c.success,
        "failure_count": c.failures,
        "service_failure_count": c.of_class(FailureClass.SERVICE_FAILURE),
        "client_failure_count": c.of_class(FailureClass.CLIENT_FAILURE),
        "client_abort_count": c.of_class(FailureClass.CLIENT_ABORT),
        "actionable_failure_count": c.actionable,
        "actionable_failure_rate": c.actionable_rate,
    }


def error_distribution(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    scope: Scope,
    source: str | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    where = _where(source, release, environment)
    rows = window_rows(conn, tenant=tenant, window=window, by=("failure_class", "failure_kind"), where=where)
    wanted = {c.value for c in SCOPE_CLASSES[scope]}
    counts: dict[str, int] = {}
    for (failure_class, kind), (n, _attempts) in rows.items():
        if failure_class in wanted:
            counts[kind] = counts.get(kind, 0) + n
    items = [{"failure_kind": k, "count": n} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"scope": scope.value, "window": window.label, "total": sum(counts.values()), "items": items}
