"""trace_spans: a trace's evidence spans, stored once each and bounded per trace, and read back per trace."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from faultlens.store.tables import trace_spans
from faultlens.timeutil import now_ms

# The keys a span row carries; insert_spans adds tenant and received_at.
SPAN_KEYS = tuple(c.name for c in trace_spans.c if c.name not in ("tenant", "received_at"))
# Trace ids per IN list: keeps the bound parameters far under SQLite's limit.
_CHUNK = 500
# The class half of the two-key advisory locks taken per trace (PostgreSQL); only faultlens uses it.
_PG_LOCK_CLASS = 0x7370616E


def _lock_traces(conn: Connection, *, tenant: str, trace_ids: Sequence[str]) -> None:
    """Serialise writers of the same traces, so two batches cannot both fill a trace's last free places.

    PostgreSQL: one transaction-scoped advisory lock per trace, taken in a fixed order (no deadlock between two
    batches sharing traces). SQLite: a write that matches nothing takes the database's write lock now, so the
    counts read next are still current when the rows are written.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:cls, k) FROM "
                "(SELECT DISTINCT hashtext(:tenant || chr(31) || t) AS k FROM unnest(CAST(:ids AS text[])) AS t "
                "ORDER BY k) AS keys"
            ),
            {"cls": _PG_LOCK_CLASS, "tenant": tenant, "ids": list(trace_ids)},
        )
    else:
        conn.execute(text("UPDATE trace_spans SET tenant = tenant WHERE 1 = 0"))


def _stored(conn: Connection, *, tenant: str, trace_ids: Sequence[str]) -> set[tuple[str, str]]:
    """The (trace_id, span_id) already stored for these traces: at most max_per_trace rows per trace."""
    c = trace_spans.c
    out: set[tuple[str, str]] = set()
    for i in range(0, len(trace_ids), _CHUNK):
        stmt = select(c.trace_id, c.span_id).where(c.tenant == tenant, c.trace_id.in_(trace_ids[i : i + _CHUNK]))
        out.update((r[0], r[1]) for r in conn.execute(stmt))
    return out


def _row(row: dict[str, Any], *, tenant: str, received_at: int) -> dict[str, Any]:
    out = {name: row.get(name) for name in SPAN_KEYS}
    attrs = out["attributes"]
    if attrs is not None and not isinstance(attrs, str):
        out["attributes"] = orjson.dumps(attrs).decode() if attrs else None
    out["tenant"] = tenant
    out["received_at"] = received_at
    return out


def insert_spans(engine: Engine, rows: list[dict[str, Any]], *, tenant: str, max_per_trace: int) -> tuple[int, int]:
    """Store evidence spans; returns (stored, dropped).

    A span the tenant already has (same trace_id and span_id, e.g. an exporter's retry, or twice in `rows`) is
    skipped and counted in neither. No trace ever holds more than `max_per_trace` spans: the earliest-starting
    new spans fill the free places and the rest are dropped and counted. `attributes` may be a dict or a JSON
    string. One short transaction.
    """
    if not rows:
        return 0, 0
    received_at = now_ms()
    trace_ids = sorted({r["trace_id"] for r in rows})
    with engine.begin() as conn:
        _lock_traces(conn, tenant=tenant, trace_ids=trace_ids)
        seen = _stored(conn, tenant=tenant, trace_ids=trace_ids)
        held = Counter(trace for trace, _span in seen)
        keep: list[dict[str, Any]] = []
        dropped = 0
        # The earliest failures are the likeliest root causes: they are the ones kept when a trace overflows.
        for row in sorted(rows, key=lambda r: (r["trace_id"], r["started_at"], r["span_id"])):
            key = (row["trace_id"], row["span_id"])
            if key in seen:
                continue
            seen.add(key)
            if held[key[0]] >= max_per_trace:
                dropped += 1
                continue
            held[key[0]] += 1
            keep.append(_row(row, tenant=tenant, received_at=received_at))
        if not keep:
            return 0, dropped
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stored = 0
        # Multi-row VALUES of 100 rows (1,500 parameters); RETURNING counts what the database really stored,
        # whatever a concurrent writer of the same span did.
        for i in range(0, len(keep), 100):
            stmt = (
                insert(trace_spans)
                .values(keep[i : i + 100])
                .on_conflict_do_nothing(index_elements=["tenant", "trace_id", "span_id"])
                .returning(trace_spans.c.span_id)
            )
            stored += len(conn.execute(stmt).all())
    return stored, dropped


def _span_out(row: Any) -> dict[str, Any]:
    out = {name: row[name] for name in SPAN_KEYS}
    out["attributes"] = orjson.loads(out["attributes"]) if out["attributes"] else {}
    return out


def list_spans(
    conn: Connection, *, tenant: str, trace_ids: Sequence[str], limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The evidence spans of these traces (times as epoch ms), earliest first, at most `limit`; and whether more
    were left out."""
    if not trace_ids:
        return [], False
    c = trace_spans.c
    stmt = (
        select(trace_spans)
        .where(c.tenant == tenant, c.trace_id.in_(list(trace_ids)[:_CHUNK]))
        .order_by(c.started_at, c.trace_id, c.span_id)
        .limit(limit + 1)
    )
    rows = conn.execute(stmt).mappings().all()
    return [_span_out(r) for r in rows[:limit]], len(rows) > limit or len(trace_ids) > _CHUNK


def count_spans(conn: Connection, *, tenant: str, trace_id: str) -> int:
    c = trace_spans.c
    return int(conn.execute(select(func.count()).where(c.tenant == tenant, c.trace_id == trace_id)).scalar_one())
