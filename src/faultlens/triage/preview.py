"""Rule-change preview: which stored events a candidate classifier would move, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, not_, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.classify.engine import Classifier
from faultlens.jobs.backfill import DECISION, decision
from faultlens.model import Classification, Status
from faultlens.store.tables import events
from faultlens.triage.stats import Window

# What the classifier reads; events agreeing on these (and on their stored decision) move together. A row counts
# as changed exactly when the backfill would rewrite it (jobs.backfill.DECISION), so the two counts agree.
INPUTS = ("status", "http_status", "error_code", "error_message", "source", "operation")
_GROUP = (*INPUTS, *DECISION)
SAMPLES = 5


@dataclass
class _Move:
    source: tuple[str, str]
    target: tuple[str, str]
    count: int = 0
    # (events, ids already known, group key) per combination of inputs and stored class/kind
    combos: list[tuple[int, tuple[str, ...], tuple[Any, ...]]] = field(default_factory=list)


def _same(inputs: tuple[Any, ...]) -> list[ColumnElement[bool]]:
    return [
        events.c[name].is_(None) if value is None else events.c[name] == value
        for name, value in zip(_GROUP, inputs, strict=True)
    ]


def _window_clauses(conn: Connection, tenant: str, window: Window, in_window: int) -> list[ColumnElement[bool]]:
    e = events.c
    occurred: Any = e.occurred_at
    if conn.dialect.name == "sqlite":
        # Separate queries: SQLite answers a lone min() or max() of the rowid from the b-tree's edge.
        low = conn.execute(select(func.min(e.pk))).scalar()
        high = conn.execute(select(func.max(e.pk))).scalar()
        # SQLite walks the time index row by row with random table reads; once the window holds a good
        # share of the table, a sequential scan is several times faster. "+ 0" makes the index unusable.
        if low is not None and high is not None and in_window * 5 > high - low + 1:
            occurred = e.occurred_at + 0
    return [e.tenant == tenant, occurred >= window.start_ms, occurred < window.end_ms]


def preview(conn: Connection, *, tenant: str, window: Window, candidate: Classifier) -> dict[str, Any]:
    """Group the window's events by classifier input, classify each group once, report what moves.

    Cost: a count over the time index, one GROUP BY over the window's events that can move (distinct
    input combinations are few next to events), one classification per combination, and a few LIMITed
    lookups per move for sample ids. Successes the candidate leaves as they are (the built-in decision
    no pack changes) are counted, not grouped.
    """
    e = events.c
    examined = int(
        conn.execute(
            select(func.count())
            .select_from(events)
            .where(e.tenant == tenant, e.occurred_at >= window.start_ms, e.occurred_at < window.end_ms)
        ).scalar()
        or 0
    )
    in_window = _window_clauses(conn, tenant, window, examined)
    ok = _as_row(candidate.classify(status=Status.SUCCESS.value))
    settled = and_(e.status == Status.SUCCESS.value, *(e[name] == ok[name] for name in DECISION))
    cols = [e[name] for name in _GROUP]
    stmt = select(*cols, func.count(), func.min(e.id), func.max(e.id)).where(*in_window, not_(settled)).group_by(*cols)
    moves: dict[tuple[tuple[str, str], tuple[str, str]], _Move] = {}
    for row in conn.execute(stmt):
        stored = dict(zip(_GROUP, row[: len(_GROUP)], strict=True))
        n, min_id, max_id = row[len(_GROUP) :]
        new = _as_row(candidate.classify(**{name: stored[name] for name in INPUTS}))
        if decision(new) == decision(stored):
            continue
        # Moves are told by class and kind; a change of rule, category or flags alone is a move to the same pair.
        fclass, kind = stored["failure_class"], stored["failure_kind"]
        target = (new["failure_class"], new["failure_kind"])
        key = ((fclass, kind), target)
        move = moves.get(key) or moves.setdefault(key, _Move(key[0], target))
        move.count += n
        move.combos.append((n, tuple(dict.fromkeys((min_id, max_id))), tuple(row[: len(_GROUP)])))
    ordered = sorted(moves.values(), key=lambda m: (-m.count, m.source, m.target))
    return {
        "candidate_version": candidate.version,
        "window": window.label,
        "total_examined": examined,
        "total_changed": sum(m.count for m in ordered),
        "moves": [
            {
                "from": {"failure_class": m.source[0], "failure_kind": m.source[1]},
                "to": {"failure_class": m.target[0], "failure_kind": m.target[1]},
                "count": m.count,
                "sample_ids": _samples(conn, in_window, m),
            }
            for m in ordered
        ],
    }


def _as_row(c: Classification) -> dict[str, Any]:
    return {
        "failure_kind": c.failure_kind,
        "failure_class": c.failure_class.value,
        "is_actionable": c.is_actionable,
        "category": c.category,
        "retryable": c.retryable,
        "rule_name": c.rule_name,
    }


def _samples(conn: Connection, in_window: list[ColumnElement[bool]], move: _Move) -> list[str]:
    combos = sorted(move.combos, key=lambda c: (-c[0], c[1]))
    ids: list[str] = []
    for _, known, _ in combos:
        ids.extend(known)
    ids = ids[:SAMPLES]
    # The group query gave two ids per combination; top up from the biggest ones, a LIMITed query each.
    for n, known, key in combos:
        if len(ids) >= SAMPLES:
            break
        if n <= len(known):
            continue
        more = conn.execute(
            select(events.c.id).where(*in_window, *_same(key), events.c.id.not_in(known)).limit(SAMPLES - len(ids))
        ).scalars()
        ids.extend(more)
    return ids[:SAMPLES]
