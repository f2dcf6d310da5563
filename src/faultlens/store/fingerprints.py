"""Template reads: events per stored template in a window, and template rows by id (the fingerprints table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from faultlens.store.tables import events, fingerprints

_IN_CHUNK = 500  # ids per query: far below every driver's bound-parameter limit


def count_by_template(
    conn: Connection, *, tenant: str, start_ms: int, end_ms: int
) -> list[tuple[str, str, str, str | None, int]]:
    """(fingerprint id, failure_class, failure_kind, rule_name, events) of the tenant's events in [start, end)."""
    e = events.c
    stmt = (
        select(e.fingerprint_id, e.failure_class, e.failure_kind, e.rule_name, func.count())
        .where(e.tenant == tenant, e.occurred_at >= start_ms, e.occurred_at < end_ms, e.fingerprint_id.is_not(None))
        .group_by(e.fingerprint_id, e.failure_class, e.failure_kind, e.rule_name)
    )
    return [(fid, fclass, kind, rule_name, int(n)) for fid, fclass, kind, rule_name, n in conn.execute(stmt)]


def find_templates(conn: Connection, *, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of those of `ids` the tenant has, by id."""
    found: dict[str, dict[str, Any]] = {}
    fp = fingerprints.c
    for start in range(0, len(ids), _IN_CHUNK):
        rows = conn.execute(select(fingerprints).where(fp.tenant == tenant, fp.id.in_(ids[start : start + _IN_CHUNK])))
        found.update({r["id"]: dict(r) for r in rows.mappings()})
    return found
