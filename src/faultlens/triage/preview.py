"""Rule-change preview: which stored events a candidate classifier would move, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from faultlens.classify.engine import Classifier
from faultlens.model import DECISION, Classification, Status, decision
from faultlens.store.preview import WindowScan, count_window, group_window, plan_window_scan, sample_window
from faultlens.timeutil import Window

# What the classifier reads; events agreeing on these (and on their stored decision) move together. A row counts
# as changed exactly when the backfill would rewrite it (model.DECISION), so the two counts agree.
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


def preview(conn: Connection, *, tenant: str, window: Window, candidate: Classifier) -> dict[str, Any]:
    """Group the window's events by classifier input, classify each group once, report what moves.

    Cost: a count over the time index, one GROUP BY over the window's events that can move (distinct
    input combinations are few next to events), one classification per combination, and a few LIMITed
    lookups per move for sample ids. Successes the candidate leaves as they are (the built-in decision
    no pack changes) are counted, not grouped.
    """
    examined = count_window(conn, tenant=tenant, start_ms=window.start_ms, end_ms=window.end_ms)
    scan = plan_window_scan(conn, tenant=tenant, start_ms=window.start_ms, end_ms=window.end_ms, rows=examined)
    ok = _as_row(candidate.classify(status=Status.SUCCESS.value))
    settled = {"status": Status.SUCCESS.value, **{name: ok[name] for name in DECISION}}
    moves: dict[tuple[tuple[str, str], tuple[str, str]], _Move] = {}
    for group, n, min_id, max_id in group_window(conn, scan, columns=_GROUP, skip=settled):
        stored = dict(zip(_GROUP, group, strict=True))
        new = _as_row(candidate.classify(**{name: stored[name] for name in INPUTS}))
        if decision(new) == decision(stored):
            continue
        # Moves are told by class and kind; a change of rule, category or flags alone is a move to the same pair.
        fclass, kind = stored["failure_class"], stored["failure_kind"]
        target = (new["failure_class"], new["failure_kind"])
        key = ((fclass, kind), target)
        move = moves.get(key) or moves.setdefault(key, _Move(key[0], target))
        move.count += n
        move.combos.append((n, tuple(dict.fromkeys((min_id, max_id))), group))
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
                "sample_ids": _samples(conn, scan, m),
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


def _samples(conn: Connection, scan: WindowScan, move: _Move) -> list[str]:
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
        match = dict(zip(_GROUP, key, strict=True))
        ids.extend(sample_window(conn, scan, match=match, other_than=known, limit=SAMPLES - len(ids)))
    return ids[:SAMPLES]
