"""Failure group routes (/api/v1/groups): the list, one group, its events, and the lifecycle changes, each stamped
with who and when. Always the caller's tenant; reads need the read scope, changes admin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from faultlens.api.deps import Admin, Principal, Reader, ServicesDep, WindowDep
from faultlens.api.schemas import error_responses
from faultlens.api.schemas import groups as s
from faultlens.errors import InvalidRequest, param_details
from faultlens.rulepacks import activation
from faultlens.services import Services
from faultlens.timeutil import now_ms, parse_rfc3339_ms
from faultlens.triage import group_rules
from faultlens.triage import groups as triage
from faultlens.triage.preview import preview as preview_moves

router = APIRouter(prefix="/api/v1/groups", tags=["groups"])
T = TypeVar("T")

NOT_FOUND = error_responses(404)


def _grouping(conn: Connection, services: Services, tenant: str) -> triage.Grouping:
    return triage.grouping_for(conn, tenant=tenant, templates=services.fingerprinters.for_tenant(tenant))


def _actor(conn: Connection, principal: Principal) -> str:
    """Who changes something: the API key's name, else its id; anonymous in open mode."""
    return triage.actor_name(conn, key_id=principal.key_id)


def _change(change: Callable[..., T], principal: Principal, services: Services, group_id: str, **fields: Any) -> T:
    """Run one of the triage changes on a group in one transaction, stamped with who and when."""
    with services.engine.begin() as conn:
        return change(
            conn,
            tenant=principal.tenant,
            grouping=_grouping(conn, services, principal.tenant),
            group_id=group_id,
            actor=_actor(conn, principal),
            now=fields.pop("now", None) or now_ms(),
            **fields,
        )


def _existing_group(group_id: str, principal: Admin, services: ServicesDep) -> str:
    """The group a change names, checked before its body: an unknown group is a 404 whatever the body holds."""
    with services.engine.connect() as conn:
        grouping = _grouping(conn, services, principal.tenant)
        triage.ensure_group(conn, tenant=principal.tenant, grouping=grouping, group_id=group_id)
    return group_id


ChangedGroup = Annotated[str, Depends(_existing_group)]


def _statuses(value: str | None) -> list[str]:
    wanted = [v.strip() for v in (value or "").split(",") if v.strip()]
    bad = [v for v in wanted if v not in triage.STATUSES]
    if bad:
        message = f"status must be among {', '.join(triage.STATUSES)} (comma-separated)"
        raise InvalidRequest(message, details=param_details("status", message))
    return wanted


def _detail(services: Services, principal: Principal, group_id: str, window: Any) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return triage.group_detail(
            conn,
            tenant=principal.tenant,
            grouping=_grouping(conn, services, principal.tenant),
            group_id=group_id,
            window=window,
            lifecycle=triage.lifecycle_of(services.settings),
            now=now_ms(),
        )


@router.get("", response_model=s.GroupList, summary="Failure groups with events in the window, filtered and sorted")
def groups_list(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    status: Annotated[str | None, Query(description="new,ongoing,resolved,ignored,regressed (any of)")] = None,
    source: Annotated[str | None, Query(max_length=128)] = None,
    release: Annotated[str | None, Query(max_length=128)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the template or sample")] = None,
    sort: Annotated[str, Query(pattern="^(count|trend|first_seen|last_seen)$")] = "count",
    order: Annotated[str, Query(pattern="^(desc|asc)$")] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    statuses = _statuses(status)
    with services.engine.connect() as conn:
        return triage.list_groups(
            conn,
            tenant=principal.tenant,
            grouping=_grouping(conn, services, principal.tenant),
            window=window,
            lifecycle=triage.lifecycle_of(services.settings),
            now=now_ms(),
            statuses=statuses,
            source=source,
            release=release,
            environment=environment,
            q=q,
            sort=sort,
            order=order,
            limit=limit,
            cursor=cursor,
        )


@router.get("/{group_id}", response_model=s.GroupDetail, responses=NOT_FOUND, summary="One failure group")
def group_detail(group_id: str, principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    return _detail(services, principal, group_id, window)


@router.get(
    "/{group_id}/events", response_model=s.GroupEvents, responses=NOT_FOUND, summary="A group's events, newest first"
)
def group_events(
    group_id: str,
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return triage.group_events(
            conn,
            tenant=principal.tenant,
            grouping=_grouping(conn, services, principal.tenant),
            group_id=group_id,
            window=window,
            limit=limit,
            cursor=cursor,
        )


def _until(body: s.StatusBody, now: int) -> int | None:
    if body.until is None:
        return None
    try:
        until = parse_rfc3339_ms(body.until)
    except ValueError as exc:
        raise InvalidRequest(f"until: {exc}", details=param_details("until", str(exc), location="body")) from None
    if until <= now:
        message = "until must be in the future"
        raise InvalidRequest(message, details=param_details("until", message, location="body"))
    return until


@router.post(
    "/{group_id}/status",
    response_model=s.GroupDetail,
    responses=NOT_FOUND,
    summary="Resolve, ignore (until a time, a count of events, or forever) or unresolve a group",
)
def group_status(
    group_id: ChangedGroup, body: s.StatusBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    now = now_ms()
    if body.status != "ignored" and (body.until is not None or body.count is not None):
        message = "until and count apply to status ignored only"
        raise InvalidRequest(message, details=param_details("status", message, location="body"))
    until = _until(body, now)
    _change(
        triage.set_status, principal, services, group_id, status=body.status, until=until, count=body.count, now=now
    )
    return _detail(services, principal, group_id, window)


@router.put("/{group_id}/assignee", response_model=s.GroupDetail, responses=NOT_FOUND, summary="Assign a group")
def group_assignee(
    group_id: ChangedGroup, body: s.AssigneeBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    _change(triage.set_assignee, principal, services, group_id, assignee=body.assignee)
    return _detail(services, principal, group_id, window)


@router.post("/{group_id}/notes", response_model=s.GroupDetail, responses=NOT_FOUND, summary="Note on a group")
def group_note(
    group_id: ChangedGroup, body: s.NoteBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    _change(triage.add_note, principal, services, group_id, text=body.text)
    return _detail(services, principal, group_id, window)


@router.post(
    "/{group_id}/merge",
    response_model=s.GroupDetail,
    responses=NOT_FOUND,
    summary="Fold other groups into this one; their later events follow",
)
def group_merge(
    group_id: ChangedGroup, body: s.MergeBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    _change(triage.merge, principal, services, group_id, group_ids=body.group_ids)
    return _detail(services, principal, group_id, window)


@router.post(
    "/{group_id}/split",
    response_model=s.SplitResult,
    responses=NOT_FOUND,
    summary="Move member templates out into one new group; their later events follow",
)
def group_split(
    group_id: ChangedGroup, body: s.SplitBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    new_id: str = _change(triage.split, principal, services, group_id, member_ids=body.member_ids)
    return {
        "group": _detail(services, principal, group_id, window),
        "new_group": _detail(services, principal, new_id, window),
    }


@router.post(
    "/{group_id}/rule-draft",
    response_model=s.RuleDraft,
    responses=NOT_FOUND,
    summary="A rule matching the group's template words, and what the tenant's pack with it would reclassify; "
    "activates nothing",
)
def group_rule_draft(
    group_id: ChangedGroup, body: s.RuleDraftBody, principal: Admin, services: ServicesDep, window: WindowDep
) -> dict[str, Any]:
    group = _detail(services, principal, group_id, window)
    classes = [m["failure_class"] for m in group["mix"] if m["failure_class"] != "none"]
    rule = group_rules.draft_rule(
        group_id=group_id,
        template=group["title"] or "",
        sample=group["sample_message"],
        mix_class=classes[0] if classes else None,
        choices=body.model_dump(),
    )
    today = dt.datetime.fromtimestamp(now_ms() / 1000, tz=dt.UTC).date()
    pack = group_rules.draft_pack(services.rulebook.tenant_pack(principal.tenant), rule, today=today)
    candidate = activation.candidate_for(services, pack, tenant=principal.tenant, scope="tenant")
    with services.engine.connect() as conn:
        moves = preview_moves(conn, tenant=principal.tenant, window=window, candidate=candidate)
    return {"rule": rule, "yaml": group_rules.as_yaml(rule), "preview": moves}
