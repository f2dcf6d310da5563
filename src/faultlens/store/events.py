"""Event rows: insert with de-duplication, filtered cursor listing, lookup, related events, raw counts."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens import cursors
from faultlens.errors import EventNotFound
from faultlens.store import attributes, pg_stage
from faultlens.store.tables import events, fingerprints

EVENT_COLUMNS = [c for c in events.c if c.name != "pk"]


# Rows per INSERT statement: keeps the bound parameters under SQLite's limit of 32,766 per statement.
_INSERT_CHUNK = 500
_INSERT_COLUMNS = tuple(c.name for c in EVENT_COLUMNS)
_VALUES_OF = itemgetter(*_INSERT_COLUMNS)


def _insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """INSERT .. ON CONFLICT DO NOTHING: the ids that were really new.

    Written against the driver: on the ingest hot path SQLAlchemy's per-row parameter processing cost more
    than the database's own work. PostgreSQL gets the rows by COPY into a staging table, SQLite multi-row
    VALUES. A unique key (tenant, id) decides duplicates in the database, so two writers racing on one id
    cannot both count it: on SQLite the events table's own, on PostgreSQL event_ids' (events is partitioned by
    day there, store/partitions.py), written by the same statement. Its events insert keeps ON CONFLICT DO
    NOTHING for a database whose events are not partitioned yet (jobs/partition_events.py): there the old
    table's key still has the ids event_ids has not been filled with.

    SQLite answers without RETURNING (which steps once per row through the driver, each step a release and
    re-take of the GIL that a busy ingest thread beside it makes slow): a chunk whose every row went in gave
    its own ids; otherwise the rows that went in are the last `rowcount` rowids, since this transaction holds
    the write lock and each new row takes the next rowid.
    """
    cols = ", ".join(_INSERT_COLUMNS)
    if conn.dialect.name == "postgresql":
        staged = pg_stage.stage(conn, events, _INSERT_COLUMNS, map(_VALUES_OF, rows))
        picked = ", ".join(f"s.{name}" for name in _INSERT_COLUMNS)
        result = conn.exec_driver_sql(
            f"WITH new AS (INSERT INTO event_ids (tenant, id) SELECT tenant, id FROM {staged} "
            "ON CONFLICT DO NOTHING RETURNING tenant, id) "
            f"INSERT INTO events ({cols}) SELECT {picked} FROM {staged} s JOIN new n ON n.tenant = s.tenant "
            "AND n.id = s.id ON CONFLICT DO NOTHING RETURNING id"
        )
        return {r[0] for r in result}
    one = "(" + ", ".join(["?"] * len(_INSERT_COLUMNS)) + ")"
    head = f"INSERT INTO events ({cols}) VALUES "
    tail = " ON CONFLICT (tenant, id) DO NOTHING"
    new_ids: set[str] = set()
    for i in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[i : i + _INSERT_CHUNK]
        params = tuple(chain.from_iterable(map(_VALUES_OF, chunk)))
        result = conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, params)
        inserted, last = result.rowcount, result.lastrowid
        if inserted == len(chunk):
            new_ids.update(row["id"] for row in chunk)
        elif inserted > 0:
            found = conn.exec_driver_sql("SELECT id FROM events WHERE pk > ? AND pk <= ?", (last - inserted, last))
            new_ids.update(r[0] for r in found)
    return new_ids


def insert_events(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    *,
    tenant: str,
    templates: Mapping[str, tuple[str, str, int]] | None = None,
) -> int:
    """Insert rows, ignoring ids the tenant already has; returns how many were new.

    Events, their rollups, the releases they carry and their fingerprints change in one transaction, so no reader
    ever sees one without the others. `templates` maps fingerprint id -> (template, sample message, first seen).
    What the rows add (rollup deltas, release spans, template last-seen times) is summed before the transaction,
    and again inside it only for the rows that turn out new when some were already stored: a writer holds
    SQLite's write lock from its first insert to its commit, and Python work there would hold back the others.
    """
    from faultlens.store import releases_seen, rollup_writes  # late import: rollup_writes imports this module's tables

    counts, attempts = rollup_writes.deltas(rows)
    seen = releases_seen.spans(rows)
    last_seen = _last_seen(rows) if templates else {}
    with _writer(engine), engine.begin() as conn:
        new_ids = _insert_new(conn, rows)
        if len(new_ids) != len(rows):
            new_rows = [r for r in rows if r["id"] in new_ids]
            counts, attempts = rollup_writes.deltas(new_rows)
            seen = releases_seen.spans(new_rows)
            last_seen = _last_seen(new_rows) if templates else {}
        if new_ids:
            rollup_writes.apply_deltas(conn, counts, attempts)
            releases_seen.record_spans(conn, seen)
        if templates and last_seen:
            _upsert_templates(conn, tenant=tenant, templates=templates, last_seen=last_seen)
    return len(new_ids)


# One lock per SQLite database file: this process's ingest batches take turns at the write lock here, where the
# next one starts the moment the last commits, instead of in SQLite's busy handler, which sleeps and polls (1, 2,
# 5, 10 ... ms). Other processes and other writers still meet at the busy handler.
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


# A batch that waited this long goes on to SQLite's busy handler (and its deadline) without its turn here.
_WRITER_WAIT_S = 2.0


@contextmanager
def _writer(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    key = str(engine.url)
    lock = _WRITERS.get(key)
    if lock is None:
        with _WRITERS_LOCK:
            lock = _WRITERS.setdefault(key, threading.Lock())
    held = lock.acquire(timeout=_WRITER_WAIT_S)
    try:
        yield
    finally:
        if held:
            lock.release()


def _last_seen(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The latest occurred_at per fingerprint id of the rows."""
    last_seen: dict[str, int] = {}
    for row in rows:
        fid = row.get("fingerprint_id")
        if fid is not None and row["occurred_at"] > last_seen.get(fid, 0):
            last_seen[fid] = row["occurred_at"]
    return last_seen


def upsert_fingerprints(
    conn: Connection,
    *,
    tenant: str,
    templates: Mapping[str, tuple[str, str, int]],
    rows: Sequence[dict[str, Any]],
) -> None:
    """Record the templates of `rows` (fingerprint id -> (template, sample message, first seen)): the template
    text, the earliest first_seen and the latest last_seen."""
    _upsert_templates(conn, tenant=tenant, templates=templates, last_seen=_last_seen(rows))


def _upsert_templates(
    conn: Connection, *, tenant: str, templates: Mapping[str, tuple[str, str, int]], last_seen: Mapping[str, int]
) -> None:
    values = [
        (tenant, fid, templates[fid][0], templates[fid][1][:2000], templates[fid][2], seen)
        for fid, seen in sorted(last_seen.items())
        if fid in templates
    ]
    if not values:
        return
    pg = conn.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    least, greatest = ("LEAST", "GREATEST") if pg else ("MIN", "MAX")
    # Written against the driver: this runs inside every ingest batch that has failures.
    conn.exec_driver_sql(
        "INSERT INTO fingerprints (tenant, id, template, sample_message, first_seen, last_seen) "
        f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (tenant, id) DO UPDATE SET template = excluded.template, "
        f"last_seen = {greatest}(fingerprints.last_seen, excluded.last_seen), "
        f"first_seen = {least}(fingerprints.first_seen, excluded.first_seen)",
        values,
    )


@dataclass(frozen=True)
class EventFilter:
    """The filters of the event list; every field is optional and they combine with AND."""

    start_ms: int
    end_ms: int
    source: str | None = None
    operation: str | None = None
    status: str | None = None
    failure_class: str | None = None
    failure_kind: str | None = None
    category: str | None = None
    is_actionable: bool | None = None
    trace_id: str | None = None
    correlation_id: str | None = None
    fingerprint_id: str | None = None
    item_type: str | None = None
    q: str | None = None
    failures_only: bool = False
    release: str | None = None
    environment: str | None = None

    def clauses(self, tenant: str) -> list[ColumnElement[bool]]:
        c = events.c
        where: list[ColumnElement[bool]] = [
            c.tenant == tenant,
            c.occurred_at >= self.start_ms,
            c.occurred_at < self.end_ms,
        ]
        for name in (
            "source",
            "operation",
            "status",
            "failure_class",
            "failure_kind",
            "category",
            "trace_id",
            "correlation_id",
            "fingerprint_id",
            "item_type",
            "release",
            "environment",
        ):
            value = getattr(self, name)
            if value is not None:
                where.append(c[name] == value)
        if self.is_actionable is not None:
            where.append(c.is_actionable == self.is_actionable)
        if self.failures_only:
            where.append(c.failure_class != "none")
        if self.q:
            pattern = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(c.error_message.ilike(pattern, escape="\\"))
        return where


def encode_cursor(occurred_at: int, pk: int) -> str:
    return cursors.encode_cursor(occurred_at, pk)


def decode_cursor(cursor: str) -> tuple[int, int]:
    """The (occurred_at, pk) of a cursor encode_cursor made; a 400 for anything else (faultlens.cursors)."""
    occurred, pk = cursors.decode_numbers(cursor, numbers=2)
    return occurred, pk


def row_to_event(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored row as the API's snake_case event object (times RFC 3339)."""
    from faultlens.timeutil import ms_to_rfc3339

    out = {col.name: row[col.name] for col in EVENT_COLUMNS if col.name != "tenant"}
    for name in ("occurred_at", "received_at", "started_at"):
        out[name] = ms_to_rfc3339(out[name])
    out["attributes"] = orjson.loads(out["attributes"]) if out["attributes"] else {}
    out["is_actionable"] = bool(out["is_actionable"])
    out["retryable"] = bool(out["retryable"])
    return out


def list_events(
    conn: Connection, *, tenant: str, flt: EventFilter, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; the cursor is (occurred_at, pk) of the last item, so pages never skip or repeat."""
    where = flt.clauses(tenant)
    if cursor:
        occurred, pk = decode_cursor(cursor)
        where.append(or_(events.c.occurred_at < occurred, and_(events.c.occurred_at == occurred, events.c.pk < pk)))
    stmt = select(events).where(*where).order_by(events.c.occurred_at.desc(), events.c.pk.desc()).limit(limit + 1)
    rows = conn.execute(stmt).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["occurred_at"], last["pk"])
        rows = rows[:limit]
    return [row_to_event(r) for r in rows], next_cursor


def get_event(conn: Connection, *, tenant: str, event_id: str) -> dict[str, Any]:
    row = conn.execute(select(events).where(events.c.tenant == tenant, events.c.id == event_id)).mappings().first()
    if row is None:
        raise EventNotFound(f"no event with id {event_id!r}", details={"id": event_id})
    return row_to_event(row)


def list_related(conn: Connection, *, tenant: str, event: Mapping[str, Any], limit: int = 100) -> list[dict[str, Any]]:
    """Other events sharing the event's trace_id or correlation_id, oldest first."""
    links: list[ColumnElement[bool]] = []
    if event.get("trace_id"):
        links.append(events.c.trace_id == event["trace_id"])
    if event.get("correlation_id"):
        links.append(events.c.correlation_id == event["correlation_id"])
    if not links:
        return []
    stmt = (
        select(events)
        .where(events.c.tenant == tenant, or_(*links), events.c.id != event["id"])
        .order_by(events.c.occurred_at, events.c.pk)
        .limit(limit)
    )
    return [row_to_event(r) for r in conn.execute(stmt).mappings()]


def count_raw(conn: Connection, *, tenant: str, flt: EventFilter, by: Sequence[str]) -> list[dict[str, Any]]:
    """GROUP BY over the raw events: the reference that rollups are checked against."""
    cols = [events.c[name] for name in by]
    stmt = select(*cols, func.count().label("count")).where(*flt.clauses(tenant)).group_by(*cols)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def find_fingerprint(conn: Connection, *, tenant: str, fingerprint_id: str | None) -> dict[str, Any] | None:
    if fingerprint_id is None:
        return None
    row = (
        conn.execute(select(fingerprints).where(fingerprints.c.tenant == tenant, fingerprints.c.id == fingerprint_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    from faultlens.timeutil import ms_to_rfc3339

    return {
        "id": row["id"],
        "template": row["template"],
        "first_seen": ms_to_rfc3339(row["first_seen"]),
        "last_seen": ms_to_rfc3339(row["last_seen"]),
    }


def list_events_at(
    conn: Connection,
    *,
    tenant: str,
    flt: EventFilter,
    attrs: Mapping[str, str] | None = None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first, skipping `offset` matching events (attribute filters too): the numbered pages of failures."""
    where = flt.clauses(tenant) + attributes.clauses(conn.dialect.name, attrs)
    stmt = (
        select(events)
        .where(*where)
        .order_by(events.c.occurred_at.desc(), events.c.pk.desc())
        .limit(limit)
        .offset(offset)
    )
    return [row_to_event(r) for r in conn.execute(stmt).mappings()]


# The ids an event can be looked up by across services: the pivots (GET /api/v1/traces/{id} and its siblings).
PIVOT_LINKS = ("trace_id", "correlation_id", "request_id")


def list_linked(
    conn: Connection, *, tenant: str, link: str, value: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The stored rows (times as epoch ms) of the tenant's events whose `link` column equals `value`, oldest
    first, at most `limit`; and whether more were left out."""
    if link not in PIVOT_LINKS:
        raise ValueError(f"not a pivot link: {link!r}")
    stmt = (
        select(events)
        .where(events.c.tenant == tenant, events.c[link] == value)
        .order_by(events.c.occurred_at, events.c.pk)
        .limit(limit + 1)
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return rows[:limit], len(rows) > limit
