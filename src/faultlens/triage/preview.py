"""Rule-change preview: which stored events a candidate classifier would move, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from faultlens.classify.engine import Classifier
from faultlens.store.tables import events
from faultlens.triage.stats import Window

# What the classifier reads; events agreeing on these (and on their stored class and kind) move together.
INPUTS = ("status", "http_status", "error_code", "error_message", "source", "operation")
_GROUP = (*INPUTS, "failure_class", "failure_kind")
SAMPLES = 5


@dataclass
class _Move:
    source: tuple[str, str]
    target: tuple[str, str]
    count: int = 0
    combos: list[tuple[int, str, tuple[Any, ...]]] = field(default_factory=list)  # (count, min id, group key)


def _same(inputs: tuple[Any, ...]) -> list[ColumnElement[bool]]:
    return [events.c[name].is_(None) if value is None else events.c[name] == value
            for name, value in zip(_GROUP, inputs, strict=True)]


def preview(conn: Connection, *, tenant: str, window: Window, candidate: Classifier) -> dict[str, Any]:
    """Group the window's events by classifier input, classify each group once, report what moves.

    Cost: one GROUP BY over the window (distinct input combinations are few next to events), one
    classification per combination, and at most a few LIMITed lookups per move for sample ids.
    """
    e = events.c
    in_window = [e.tenant == tenant, e.occurred_at >= window.start_ms, e.occurred_at < window.end_ms]
    cols = [e[name] for name in INPUTS]
    stmt = (
        select(*cols, e.failure_class, e.failure_kind, func.count(), func.min(e.id))
        .where(*in_window)
        .group_by(*cols, e.failure_class, e.failure_kind)
    )
    examined = 0
    moves: dict[tuple[tuple[str, str], tuple[str, str]], _Move] = {}
    for row in conn.execute(stmt):
        status, http_status, error_code, error_message, source, operation, fclass, kind, n, min_id = row
        examined += n
        c = candidate.classify(status=status, http_status=http_status, error_code=error_code,
                               error_message=error_message, source=source, operation=operation)
        target = (c.failure_class.value, c.failure_kind)
        if target == (fclass, kind):
            continue
        key = ((fclass, kind), target)
        move = moves.get(key) or moves.setdefault(key, _Move(key[0], target))
        move.count += n
        move.combos.append((n, min_id, tuple(row[: len(_GROUP)])))
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


def _samples(conn: Connection, in_window: list[ColumnElement[bool]], move: _Move) -> list[str]:
    combos = sorted(move.combos, key=lambda c: (-c[0], c[1]))
    ids = [min_id for _, min_id, _ in combos[:SAMPLES]]
    # Fewer combinations than samples: top up from the biggest ones, a LIMITed query each.
    for n, min_id, inputs in combos:
        if len(ids) >= SAMPLES:
            break
        if n < 2:
            continue
        more = conn.execute(
            select(events.c.id)
            .where(*in_window, *_same(inputs), events.c.id != min_id)
            .limit(SAMPLES - len(ids))
        ).scalars()
        ids.extend(more)
    return ids[:SAMPLES]
