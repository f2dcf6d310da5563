"""Message templates ranked by events in a window, with their class/kind mix and rule coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from faultlens.classify.engine import SUCCESS_RULE, UNCLASSIFIED_RULE
from faultlens.store.fingerprints import count_by_template, find_templates
from faultlens.timeutil import Window, ms_to_rfc3339

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
    groups: dict[str, _Template] = {}
    counted = count_by_template(conn, tenant=tenant, start_ms=window.start_ms, end_ms=window.end_ms)
    for fid, fclass, kind, rule_name, n in counted:
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
    stored: dict[str, Any] = find_templates(conn, tenant=tenant, ids=wanted)
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
