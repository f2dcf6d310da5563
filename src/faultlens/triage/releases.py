"""The release list and deploy markers: releases seen in a window (releases_seen), counted from release rollups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from faultlens.store import releases_seen
from faultlens.timeutil import Window, ms_to_rfc3339
from faultlens.triage.counts import BY, Counts, window_rows

_BY = ("release", "environment", *BY)


def _where(environment: str | None, source: str | None) -> dict[str, str]:
    return {k: v for k, v in (("environment", environment), ("source", source)) if v is not None}


def _seen(
    conn: Connection, *, tenant: str, window: Window, environment: str | None, source: str | None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(release, environment) -> {sources, first_seen, last_seen} (epoch ms) for what was seen in the window."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    rows = releases_seen.list_seen(
        conn, tenant=tenant, start=window.start_ms, end=window.end_ms, environment=environment, source=source
    )
    for row in rows:
        entry = out.setdefault(
            (row["release"], row["environment"]),
            {"sources": [], "first_seen": row["first_seen"], "last_seen": row["last_seen"]},
        )
        entry["sources"].append(row["source"])
        entry["first_seen"] = min(entry["first_seen"], row["first_seen"])
        entry["last_seen"] = max(entry["last_seen"], row["last_seen"])
    return out


def list_releases(
    conn: Connection, *, tenant: str, window: Window, environment: str | None = None, source: str | None = None
) -> list[dict[str, Any]]:
    """Each release seen in the window per environment, newest first_seen first, with its counts over the window.

    first_seen / last_seen are the release's own (the registry's, not cut to the window); counts come from the
    release rollups (raw events while they are being built), so they equal a scan of the window's events.
    """
    seen = _seen(conn, tenant=tenant, window=window, environment=environment, source=source)
    rows = window_rows(conn, tenant=tenant, window=window, by=_BY, where=_where(environment, source))
    counts: dict[tuple[str, str], Counts] = {}
    for key, (n, attempts) in rows.items():
        release, env = key[0], key[1]
        if not release:
            continue  # events without a release
        counts.setdefault((release, env), Counts()).add_row(dict(zip(_BY, key, strict=True)), n, attempts)
    out = []
    for release, env in seen.keys() | counts.keys():
        entry = seen.get((release, env), {"sources": [], "first_seen": None, "last_seen": None})
        c = counts.get((release, env), Counts())
        out.append(
            {
                "release": release,
                "environment": env,
                "sources": sorted(entry["sources"]),
                "first_seen": entry["first_seen"],
                "last_seen": entry["last_seen"],
                "total": c.total,
                "failures": c.failures,
                "actionable": c.actionable,
                "actionable_failure_rate": c.actionable_rate,
                "client_aborts": c.of_class("client_abort"),
            }
        )
    # Newest first; a release only the counts know (its registry rows still being rebuilt) goes last.
    out.sort(key=lambda r: (r["first_seen"] is None, -(r["first_seen"] or 0), r["release"], r["environment"]))
    for r in out:
        r["first_seen"], r["last_seen"] = ms_to_rfc3339(r["first_seen"]), ms_to_rfc3339(r["last_seen"])
    return out


def deploy_markers(
    conn: Connection, *, tenant: str, window: Window, environment: str | None = None, source: str | None = None
) -> list[dict[str, Any]]:
    """[{release, environment, at}]: each release's first appearance (per environment) inside the window, oldest
    first (a chart draws them left to right)."""
    seen = _seen(conn, tenant=tenant, window=window, environment=environment, source=source)
    inside = [
        (entry["first_seen"], release, env)
        for (release, env), entry in seen.items()
        if window.start_ms <= entry["first_seen"] < window.end_ms
    ]
    return [{"release": r, "environment": e, "at": ms_to_rfc3339(at)} for at, r, e in sorted(inside)]
