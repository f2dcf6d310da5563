"""Message templates ranked by events in a window, with their class/kind mix and rule coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from faultlens.classify.engine import SUCCESS_RULE, UNCLASSIFIED_RULE
from faultlens.store.tables import events, fingerprints
from faultlens.timeutil import ms_to_rfc3339
from faultlens.triage.stats import Window

_NOT_A_RULE = frozenset({UNCLASSIFIED_RULE, SUCCESS_RULE, None})


@dataclass
class _Template:
    id: str
    count: int = 0
    mix: Counter[tuple[str, str]] = field(default_factory=Counter)
    covered: bool = False
    ids: set[str] = field(default_factory=set)


def top_templates(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    limit: int,
    unclassified_only: bool = False,
    resolve: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Templates by event count in the window, most frequent first.

    `resolve` maps a template id to the group it was merged into (Fingerprinter.resolve), so events
    stored under a merged-away id count for the survivor. A template is covered by a rule when some
    specific rule decided at least one of its events; `unclassified_only` keeps the others, which are
    the candidates for a new rule.
    """
    e = events.c
    stmt = (
        select(e.fingerprint_id, e.failure_class, e.failure_kind, e.rule_name, func.count())
        .where(
            e.tenant == tenant,
            e.occurred_at >= window.start_ms,
            e.occurred_at < window.end_ms,
            e.fingerprint_id.is_not(None),
        )
        .group_by(e.fingerprint_id, e.failure_class, e.failure_kind, e.rule_name)
    )
    groups: dict[str, _Template] = {}
    for fid, fclass, kind, rule_name, n in conn.execute(stmt):
        tid = resolve(fid) if resolve else fid
        group = groups.get(tid) or groups.setdefault(tid, _Template(tid))
        group.ids.add(fid)
        group.count += n
        group.mix[(fclass, kind)] += n
        if rule_name not in _NOT_A_RULE and kind != "unclassified":
            group.covered = True
    chosen = [g for g in groups.values() if not (unclassified_only and g.covered)]
    chosen.sort(key=lambda g: (-g.count, g.id))
    chosen = chosen[:limit]
    wanted = sorted({i for g in chosen for i in g.ids | {g.id}})
    stored: dict[str, Any] = {}
    fp = fingerprints.c
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(fingerprints).where(fp.tenant == tenant, fp.id.in_(wanted[start : start + 500]))
        ).mappings()
        stored.update({r["id"]: r for r in rows})
    return {"window": window.label, "items": [_item(g, stored) for g in chosen]}


def _item(group: _Template, stored: dict[str, Any]) -> dict[str, Any]:
    rows = [stored[i] for i in sorted(group.ids | {group.id}) if i in stored]
    main = stored.get(group.id) or (rows[0] if rows else None)
    return {
        "id": group.id,
        "template": main["template"] if main else None,
        "sample_message": main["sample_message"] if main else None,
        "count": group.count,
        "first_seen": ms_to_rfc3339(min(r["first_seen"] for r in rows)) if rows else None,
        "last_seen": ms_to_rfc3339(max(r["last_seen"] for r in rows)) if rows else None,
        "covered_by_rule": group.covered,
        "mix": [
            {"failure_class": fclass, "failure_kind": kind, "count": n}
            for (fclass, kind), n in sorted(group.mix.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }
