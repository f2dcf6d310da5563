"""Failure groups: which templates form each group, their counts and trends from the group rollups, their status.

A template's group is a person's override (a merge or split, store/groups.py) or else the fingerprinter's survivor
(Fingerprinter.resolve). Counts, trends, sources, releases and the class mix come from the group shape of the
rollups (one read per question, whatever the number of events); template texts and first/last seen from the
fingerprints table; the lifecycle from failure_groups, with "new" and "ongoing" derived at read time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from faultlens.cursors import decode_keyed, encode_cursor
from faultlens.errors import InvalidRequest, NotFound, param_details
from faultlens.settings import Settings
from faultlens.store import groups as store
from faultlens.store.fingerprints import find_templates
from faultlens.store.rollup_reads import aggregate
from faultlens.store.rollup_shapes import DAY_MS, GROUP_SHAPE, HOUR_MS, SHAPES
from faultlens.timeutil import Window, ms_to_rfc3339

STATUSES = ("new", "ongoing", "resolved", "ignored", "regressed")
SORTS = ("count", "trend", "first_seen", "last_seen")
DIMENSIONS = SHAPES[GROUP_SHAPE]
SAMPLES = 10
ACTIVITY_LIMIT = 200
HOUR_SERIES_MAX_MS = 7 * DAY_MS  # the detail's hourly series covers at most the window's last week
SYSTEM_ACTOR = "faultlens"


class GroupNotFound(NotFound):
    code = "group_not_found"


@dataclass(frozen=True)
class Lifecycle:
    """The settings status derivation reads (settings.py GROUP_NEW_HOURS, GROUP_REGRESSED_DAYS)."""

    new_ms: int
    regressed_ms: int


class Templates(Protocol):
    """What groups ask of a tenant's fingerprinter (classify/fingerprint.py Fingerprinter)."""

    def resolve(self, template_id: str) -> str: ...

    def aliases_of(self, survivors: Collection[str]) -> set[str]: ...


@dataclass
class Grouping:
    """Maps template ids to group ids: the tenant's overrides first, then the fingerprinter's survivor."""

    resolve: Callable[[str], str]
    overrides: dict[str, str]
    # survivor ids -> the ids the fingerprinter merged into them (Fingerprinter.aliases_of)
    aliases_of: Callable[[Collection[str]], set[str]]

    def group_of(self, fid: str) -> str:
        found = self.overrides.get(fid)
        if found is not None:
            return found
        survivor = self.resolve(fid)
        return self.overrides.get(survivor, survivor)

    def candidates(self, group_ids: Collection[str]) -> set[str]:
        """Every id that may be a member of one of `group_ids` (a superset: group_of decides), found from the
        overrides and the fingerprinter's merges alone, without the tenant's other templates."""
        wanted = set(group_ids)
        heads = wanted | {fid for fid, gid in self.overrides.items() if gid in wanted}
        return heads | self.aliases_of(heads)


def lifecycle_of(settings: Settings) -> Lifecycle:
    """The lifecycle's windows from the settings (GROUP_NEW_HOURS, GROUP_REGRESSED_DAYS)."""
    return Lifecycle(
        new_ms=int(settings.group_new_hours * HOUR_MS), regressed_ms=int(settings.group_regressed_days * DAY_MS)
    )


def actor_name(conn: Connection, *, key_id: str | None) -> str:
    """Who changes a group: the API key's name, else its id; anonymous in open mode."""
    if key_id is None:
        return "anonymous"
    return store.find_key_name(conn, key_id=key_id) or f"key:{key_id}"


def grouping_for(conn: Connection, *, tenant: str, templates: Templates) -> Grouping:
    """The tenant's grouping now: its stored overrides over its fingerprinter's merges."""
    return Grouping(templates.resolve, store.list_overrides(conn, tenant=tenant), templates.aliases_of)


def derive_status(state: Mapping[str, Any] | None, first_seen: int | None, now: int, lifecycle: Lifecycle) -> str:
    """The status shown: stored resolved/ignored as they are; open as new or ongoing by first_seen; regressed as
    ongoing once it regressed GROUP_REGRESSED_DAYS ago."""
    status = state["status"] if state else "open"
    if status == "open":
        return "new" if first_seen is not None and first_seen >= now - lifecycle.new_ms else "ongoing"
    if status == "regressed" and state and (state["regressed_at"] or 0) < now - lifecycle.regressed_ms:
        return "ongoing"
    return str(status)


def bucket_ms_for(window: Window) -> int:
    """Trend buckets: hours for windows up to a day, days beyond."""
    return HOUR_MS if window.end_ms - window.start_ms <= DAY_MS + 1 else DAY_MS


def buckets_of(start: int, end: int, width: int) -> list[int]:
    first = start - start % width
    return list(range(first, end, width))


@dataclass
class _Acc:
    id: str
    count: int = 0
    actionable: int = 0
    sources: Counter[str] = field(default_factory=Counter)
    releases: Counter[str] = field(default_factory=Counter)
    environments: Counter[str] = field(default_factory=Counter)
    mix: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_template: Counter[str] = field(default_factory=Counter)
    trend: Counter[int] = field(default_factory=Counter)
    first_release: tuple[int, str] | None = None

    def covered(self) -> bool:
        return any(kind != "unclassified" for _cls, kind in self.mix)


def _filters(source: str | None, release: str | None, environment: str | None) -> dict[str, str]:
    return {k: v for k, v in (("source", source), ("release", release), ("environment", environment)) if v}


def _window_counts(
    conn: Connection, *, tenant: str, window: Window, grouping: Grouping, where: Mapping[str, str]
) -> dict[str, _Acc]:
    """Per group: counts by dimension and per trend bucket in the window, from one read of the group rollups."""
    accs: dict[str, _Acc] = {}
    groups_of: dict[str, str] = {}

    def acc_of(fid: str) -> _Acc:
        gid = groups_of.get(fid)
        if gid is None:
            gid = groups_of[fid] = grouping.group_of(fid)
        found = accs.get(gid)
        if found is None:
            found = accs[gid] = _Acc(gid)
        return found

    # One read: every dimension per trend bucket (a pass over the window's rows, not one per question).
    rows = aggregate(
        conn,
        tenant=tenant,
        start=window.start_ms,
        end=window.end_ms,
        by=DIMENSIONS,
        where=where,
        bucket_ms=bucket_ms_for(window),
    )
    for (bucket, source, release, environment, fclass, actionable, kind, fid), (n, _a) in rows.items():
        acc = acc_of(fid)
        acc.count += n
        acc.per_template[fid] += n
        acc.trend[bucket] += n
        if actionable:
            acc.actionable += n
        acc.sources[source] += n
        if release:
            acc.releases[release] += n
            if acc.first_release is None or (bucket, release) < acc.first_release:
                acc.first_release = (bucket, release)
        if environment:
            acc.environments[environment] += n
        acc.mix[(fclass, kind)] += n
    return accs


@dataclass
class _Templates:
    """Some groups' stored templates: their rows by id (template, sample, first/last seen) and each group's members
    (stored templates and overridden ids)."""

    rows: dict[str, dict[str, Any]]
    members: dict[str, list[str]]

    def seen(self, gid: str) -> tuple[int | None, int | None]:
        spans = [self.rows[f] for f in self.members.get(gid, ()) if f in self.rows]
        if not spans:
            return None, None
        return min(s["first_seen"] for s in spans), max(s["last_seen"] for s in spans)


def _templates_of(conn: Connection, *, tenant: str, grouping: Grouping, group_ids: Collection[str]) -> _Templates:
    """The templates of `group_ids`, read by id from what can be their members (Grouping.candidates): a group costs
    its own templates, whatever the number of templates the tenant has stored over time."""
    wanted = set(group_ids)
    candidates = grouping.candidates(wanted)
    rows = find_templates(conn, tenant=tenant, ids=sorted(candidates))
    members: dict[str, list[str]] = {}
    for fid in sorted(candidates & (rows.keys() | grouping.overrides.keys())):
        gid = grouping.group_of(fid)
        if gid in wanted:
            members.setdefault(gid, []).append(fid)
    return _Templates(rows, members)


def members_of(conn: Connection, *, tenant: str, grouping: Grouping, group_id: str) -> list[str]:
    """The member ids of one group now (its stored templates and overridden ids); [] for no group."""
    return _templates_of(conn, tenant=tenant, grouping=grouping, group_ids=[group_id]).members.get(group_id, [])


def first_seen_of(conn: Connection, *, tenant: str, grouping: Grouping, group_ids: Collection[str]) -> dict[str, int]:
    """group id -> the earliest first_seen of its stored templates, for those of `group_ids` with any."""
    templates = _templates_of(conn, tenant=tenant, grouping=grouping, group_ids=group_ids)
    return {gid: first for gid in templates.members if (first := templates.seen(gid)[0]) is not None}


# Members a rollup read names one by one (an IN list); a group of more reads every template's rows and keeps its own.
_MEMBERS_FILTERED = 500


def _member_filter(members: Sequence[str]) -> dict[str, Any]:
    """The rollup filter reading a group's rows only: its one template, or the IN list of its members."""
    if len(members) == 1:
        return {"fingerprint_id": members[0]}
    return {"fingerprint_id": tuple(members)} if len(members) <= _MEMBERS_FILTERED else {}


def _trend_change(trend: Sequence[int]) -> float | None:
    half = len(trend) // 2
    first, second = sum(trend[: len(trend) - half]), sum(trend[len(trend) - half :])
    if half == 0 or first == 0:
        return None
    return round(second / first - 1, 4)


def _ranked(counter: Counter[str]) -> list[str]:
    return [k for k, _n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _summary(
    acc: _Acc,
    *,
    window: Window,
    templates: _Templates,
    stored: Mapping[str, Mapping[str, Any]],
    state: Mapping[str, Any] | None,
    now: int,
    lifecycle: Lifecycle,
) -> dict[str, Any]:
    width = bucket_ms_for(window)
    trend = [acc.trend.get(b, 0) for b in buckets_of(window.start_ms, window.end_ms, width)]
    first_seen, last_seen = templates.seen(acc.id)
    members = templates.members.get(acc.id, [acc.id])
    main = stored.get(acc.id) or next((stored[m] for m in members if m in stored), None)
    return {
        "id": acc.id,
        "title": main["template"] if main else None,
        "sample_message": main["sample_message"] if main else None,
        "status": derive_status(state, first_seen, now, lifecycle),
        "count": acc.count,
        "trend": trend,
        "trend_change": _trend_change(trend),
        "first_seen": ms_to_rfc3339(first_seen),
        "last_seen": ms_to_rfc3339(last_seen),
        "first_release": acc.first_release[1] if acc.first_release else None,
        "sources": _ranked(acc.sources),
        "releases": _ranked(acc.releases),
        "environments": _ranked(acc.environments),
        "mix": [
            {"failure_class": fclass, "failure_kind": kind, "count": n}
            for (fclass, kind), n in sorted(acc.mix.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "actionable_share": round(acc.actionable / acc.count, 4) if acc.count else 0.0,
        "assignee": state["assignee"] if state else None,
        "covered_by_rule": acc.covered(),
        "members": len(members),
    }


def _sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if sort == "trend":
        return lambda g: (g["trend_change"] if g["trend_change"] is not None else float("-inf"), g["count"], g["id"])
    if sort in ("first_seen", "last_seen"):
        return lambda g: (g[sort] or "", g["count"], g["id"])
    return lambda g: (g["count"], g["id"])


def _page_offset(cursor: str | None, tag: str) -> int:
    if not cursor:
        return 0
    offset, issued_for = decode_keyed(cursor)
    if issued_for != tag:
        message = "cursor was issued for another sort, order, window or filter; start from the first page"
        raise InvalidRequest(message, details=param_details("cursor", message))
    return offset


def list_groups(
    conn: Connection,
    *,
    tenant: str,
    grouping: Grouping,
    window: Window,
    lifecycle: Lifecycle,
    now: int,
    statuses: Collection[str] = (),
    source: str | None = None,
    release: str | None = None,
    environment: str | None = None,
    q: str | None = None,
    sort: str = "count",
    order: str = "desc",
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The groups with events in the window (plus, without a source/release/environment filter, those a person or
    the lifecycle acted on in it), filtered, sorted and paged; status_counts before the status filter."""
    where = _filters(source, release, environment)
    accs = _window_counts(conn, tenant=tenant, window=window, grouping=grouping, where=where)
    states = store.list_states(conn, tenant=tenant)
    if not where:
        for gid, state in states.items():
            if window.start_ms <= state["updated_at"] < window.end_ms and gid not in accs:
                accs[gid] = _Acc(gid)
    templates = _templates_of(conn, tenant=tenant, grouping=grouping, group_ids=accs.keys())
    # A state row of a group merged away since (no member left) is no group any more.
    accs = {gid: acc for gid, acc in accs.items() if acc.count or gid in templates.members}
    stored = templates.rows
    items = [
        _summary(
            acc, window=window, templates=templates, stored=stored, state=states.get(gid), now=now, lifecycle=lifecycle
        )
        for gid, acc in accs.items()
    ]
    if q:
        needle = q.lower()
        items = [
            g for g in items if needle in (g["title"] or "").lower() or needle in (g["sample_message"] or "").lower()
        ]
    status_counts = Counter(g["status"] for g in items)
    if statuses:
        items = [g for g in items if g["status"] in statuses]
    items.sort(key=_sort_key(sort), reverse=order == "desc")
    tag = f"{sort}.{order}.{window.label}"
    offset = _page_offset(cursor, tag)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "window": window.label,
        "items": page,
        "next_cursor": encode_cursor(offset + limit, text=tag) if more else None,
        "status_counts": {s: status_counts.get(s, 0) for s in STATUSES},
    }


def ensure_group(conn: Connection, *, tenant: str, grouping: Grouping, group_id: str) -> None:
    """GroupNotFound unless `group_id` names a group now: a stored template that is its own group (one row read)."""
    if grouping.group_of(group_id) != group_id or not find_templates(conn, tenant=tenant, ids=[group_id]):
        raise GroupNotFound(f"no failure group {group_id!r}", details={"group_id": group_id})


def _members_or_404(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, others: Collection[str] = ()
) -> tuple[_Templates, list[str]]:
    """The templates of `group_id` (and of `others`, for a merge) and its members; GroupNotFound without any."""
    templates = _templates_of(conn, tenant=tenant, grouping=grouping, group_ids={group_id, *others})
    members = templates.members.get(group_id, [])
    if not members:
        now_in = grouping.group_of(group_id) if group_id in templates.rows else None
        details = {"group_id": group_id} | ({"now_in": now_in} if now_in and now_in != group_id else {})
        raise GroupNotFound(f"no failure group {group_id!r}", details=details)
    return templates, members


def _series(
    conn: Connection, *, tenant: str, members: Sequence[str], start: int, end: int, width: int
) -> list[dict[str, Any]]:
    where = _member_filter(members)
    got = aggregate(conn, tenant=tenant, start=start, end=end, by=("fingerprint_id",), where=where, bucket_ms=width)
    wanted = set(members)
    per: Counter[int] = Counter()
    for (bucket, fid), (n, _a) in got.items():
        if fid in wanted:
            per[bucket] += n
    return _points(per, start, end, width)


def _points(counts: Mapping[int, int], start: int, end: int, width: int) -> list[dict[str, Any]]:
    return [{"bucket": ms_to_rfc3339(b), "count": counts.get(b, 0)} for b in buckets_of(start, end, width)]


def events_since_hour(conn: Connection, *, tenant: str, members: Sequence[str], hour: int, now: int) -> int:
    """The members' events from the start of `hour` (a whole hour) to the end of the current hour, from the hour
    and day rollups of the group shape (no raw read)."""
    end = now - now % HOUR_MS + HOUR_MS
    got = aggregate(conn, tenant=tenant, start=hour, end=end, by=("fingerprint_id",), where=_member_filter(members))
    wanted = set(members)
    return sum(n for (fid,), (n, _a) in got.items() if fid in wanted)


def _ignore_view(
    conn: Connection, *, tenant: str, members: Sequence[str], state: Mapping[str, Any], now: int
) -> dict[str, Any]:
    count = state["ignore_count"]
    remaining = None
    if count is not None and state["ignored_at"] is not None:
        hour = state["ignored_at"] - state["ignored_at"] % HOUR_MS
        seen = events_since_hour(conn, tenant=tenant, members=members, hour=hour, now=now) - (state["ignore_base"] or 0)
        remaining = max(0, int(count) - seen)
    return {"until": ms_to_rfc3339(state["ignore_until"]), "count": count, "remaining": remaining}


def group_detail(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, window: Window, lifecycle: Lifecycle, now: int
) -> dict[str, Any]:
    """One group: its summary over the window, hourly and daily series, member templates, samples, activity."""
    templates, members = _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)
    # Only the members' rows are read (a group of very many: every template's), mapped like the list does.
    accs = _window_counts(conn, tenant=tenant, window=window, grouping=grouping, where=_member_filter(members))
    acc = accs.get(group_id) or _Acc(group_id)
    state = store.find_state(conn, tenant=tenant, group_id=group_id)
    stored = {m: templates.rows[m] for m in members if m in templates.rows}
    out = _summary(acc, window=window, templates=templates, stored=stored, state=state, now=now, lifecycle=lifecycle)
    # The trend is one of the two series already (hours up to a day, else days); the other comes from it (days of
    # hours) or from one more read (the window's last week of hours).
    if bucket_ms_for(window) == HOUR_MS:
        days: Counter[int] = Counter()
        for bucket, n in acc.trend.items():
            days[bucket - bucket % DAY_MS] += n
        hour, day = acc.trend, days
        hour_series = _points(hour, window.start_ms, window.end_ms, HOUR_MS)
    else:
        hour_start = max(window.start_ms, window.end_ms - HOUR_SERIES_MAX_MS)
        hour_series = _series(conn, tenant=tenant, members=members, start=hour_start, end=window.end_ms, width=HOUR_MS)
        day = acc.trend
    out["series"] = {"hour": hour_series, "day": _points(day, window.start_ms, window.end_ms, DAY_MS)}
    out["member_templates"] = [
        {"id": m, "template": stored[m]["template"] if m in stored else None, "count": acc.per_template.get(m, 0)}
        for m in sorted(members, key=lambda m: (-acc.per_template.get(m, 0), m))
    ]
    out["samples"] = store.list_samples(
        conn, tenant=tenant, fingerprint_ids=members, start=window.start_ms, end=window.end_ms, limit=SAMPLES
    )
    out["activity"] = [
        {**a, "at": ms_to_rfc3339(a["at"])}
        for a in store.list_activity(conn, tenant=tenant, group_id=group_id, limit=ACTIVITY_LIMIT)
    ]
    out["ignore"] = None
    if state is not None and state["status"] == "ignored":
        out["ignore"] = _ignore_view(conn, tenant=tenant, members=members, state=state, now=now)
    out["resolved_at"] = ms_to_rfc3339(state["resolved_at"]) if state and state["status"] == "resolved" else None
    out["regressed_at"] = ms_to_rfc3339(state["regressed_at"]) if state and state["status"] == "regressed" else None
    return out


def group_events(
    conn: Connection,
    *,
    tenant: str,
    grouping: Grouping,
    group_id: str,
    window: Window,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    members = _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)[1]
    items, next_cursor = store.list_group_events(
        conn,
        tenant=tenant,
        fingerprint_ids=members,
        start=window.start_ms,
        end=window.end_ms,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}


# -- changes -------------------------------------------------------------------------------------------------------


def set_status(
    conn: Connection,
    *,
    tenant: str,
    grouping: Grouping,
    group_id: str,
    status: str,
    until: int | None,
    count: int | None,
    actor: str,
    now: int,
) -> None:
    """resolved, ignored (until a time, until `count` more events, or forever) or unresolved (back to open)."""
    members = _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)[1]
    cleared: dict[str, Any] = dict.fromkeys(
        ("resolved_at", "regressed_at", "ignored_at", "ignore_until", "ignore_count", "ignore_base")
    )
    detail: dict[str, Any] = {"status": status}
    if status == "resolved":
        values = cleared | {"status": "resolved", "resolved_at": now}
    elif status == "ignored":
        hour = now - now % HOUR_MS
        base = events_since_hour(conn, tenant=tenant, members=members, hour=hour, now=now) if count else None
        ignoring = {"ignored_at": now, "ignore_until": until, "ignore_count": count, "ignore_base": base}
        values = cleared | {"status": "ignored", **ignoring}
        detail |= {"until": ms_to_rfc3339(until), "count": count}
    else:
        values = cleared | {"status": "open"}
    store.save_state(conn, tenant=tenant, group_id=group_id, values=values, by=actor, at=now)
    store.add_activity(conn, tenant=tenant, group_id=group_id, actor=actor, action="status", detail=detail, at=now)


def set_assignee(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, assignee: str | None, actor: str, now: int
) -> None:
    _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)
    store.save_state(conn, tenant=tenant, group_id=group_id, values={"assignee": assignee}, by=actor, at=now)
    store.add_activity(
        conn, tenant=tenant, group_id=group_id, actor=actor, action="assign", detail={"assignee": assignee}, at=now
    )


def add_note(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, text: str, actor: str, now: int
) -> None:
    _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)
    store.add_activity(
        conn, tenant=tenant, group_id=group_id, actor=actor, action="note", detail={"text": text}, at=now
    )


def merge(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, group_ids: Sequence[str], actor: str, now: int
) -> None:
    """Fold `group_ids` into `group_id`: each of their templates gets an override to it (later events follow)."""
    others = list(dict.fromkeys(g for g in group_ids if g != group_id))
    templates, _members = _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id, others=others)
    if not others:
        message = "group_ids must name at least one other group"
        raise InvalidRequest(message, details=param_details("group_ids", message, location="body"))
    moved: dict[str, str] = {}
    for other in others:
        members = templates.members.get(other)
        if not members:
            raise GroupNotFound(f"no failure group {other!r}", details={"group_id": other})
        moved.update((fid, group_id) for fid in members)
    store.set_overrides(conn, tenant=tenant, members=moved, at=now)
    store.repoint_overrides(conn, tenant=tenant, from_ids=others, to_id=group_id, at=now)
    detail = {"group_ids": others, "member_ids": sorted(moved)}
    store.add_activity(conn, tenant=tenant, group_id=group_id, actor=actor, action="merge", detail=detail, at=now)
    for other in others:
        store.add_activity(
            conn, tenant=tenant, group_id=other, actor=actor, action="merge", detail={"into": group_id}, at=now
        )


def split(
    conn: Connection, *, tenant: str, grouping: Grouping, group_id: str, member_ids: Sequence[str], actor: str, now: int
) -> str:
    """Move `member_ids` out of `group_id` into one new group named by the first of them; its id."""
    members = _members_or_404(conn, tenant=tenant, grouping=grouping, group_id=group_id)[1]
    wanted = list(dict.fromkeys(member_ids))
    bad = [m for m in wanted if m not in members]
    problem = None
    if not wanted:
        problem = "member_ids must name at least one member template"
    elif bad:
        problem = f"not member templates of group {group_id}: {', '.join(bad[:5])}"
    elif group_id in wanted:
        problem = "the template that names the group stays in it; split the other members out"
    if problem:
        raise InvalidRequest(problem, details=param_details("member_ids", problem, location="body"))
    new_id = wanted[0]
    store.set_overrides(conn, tenant=tenant, members=dict.fromkeys(wanted, new_id), at=now)
    detail = {"member_ids": wanted, "new_group": new_id}
    store.add_activity(conn, tenant=tenant, group_id=group_id, actor=actor, action="split", detail=detail, at=now)
    detail = {"member_ids": wanted, "from": group_id}
    store.add_activity(conn, tenant=tenant, group_id=new_id, actor=actor, action="split", detail=detail, at=now)
    return new_id


def list_regressed(conn: Connection, *, tenant: str, now: int) -> list[dict[str, Any]]:
    """The tenant's regressed groups (a person has not acted yet) with their title and, from the group rollups (raw
    events for the partial hours at the ends), the events since the regression and how many were actionable.
    Members: the group's own template and the templates a person moved into it (the alert evaluator has no
    fingerprinter; new events carry survivor ids)."""
    states = [s for s in store.list_states(conn, tenant=tenant).values() if s["status"] == "regressed"]
    if not states:
        return []
    overrides = store.list_overrides(conn, tenant=tenant)
    titles = find_templates(conn, tenant=tenant, ids=sorted(s["id"] for s in states))
    out = []
    for state in sorted(states, key=lambda s: s["id"]):
        gid = state["id"]
        members = sorted({gid, *(fid for fid, g in overrides.items() if g == gid)})
        members = [m for m in members if overrides.get(m, gid) == gid]
        start = int(state["regressed_at"] or now)
        end = max(start, now) - max(start, now) % HOUR_MS + HOUR_MS  # to the end of the hour: clocks disagree
        where = {"fingerprint_id": members[0]} if len(members) == 1 else {}
        got = aggregate(conn, tenant=tenant, start=start, end=end, by=("fingerprint_id", "is_actionable"), where=where)
        count = sum(n for (fid, _act), (n, _a) in got.items() if fid in members)
        actionable = sum(n for (fid, act), (n, _a) in got.items() if fid in members and act)
        row = titles.get(gid)
        out.append(
            {
                "id": gid,
                "title": row["template"] if row else gid,
                "regressed_at": state["regressed_at"],
                "count": count,
                "actionable": actionable,
            }
        )
    return out
