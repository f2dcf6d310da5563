"""Stateful alerts routes (/api/v1/alerting/): firing first, one alert with its history and notifications,
acknowledgements, silences, and the outbox with re-sending of dead letters. Always the caller's tenant."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from faultlens.alerting import views
from faultlens.alerting.routing import parse_duration
from faultlens.api.deps import Admin, Principal, Reader, ServicesDep, WindowDep
from faultlens.api.schemas import alerting as s
from faultlens.api.schemas import error_responses
from faultlens.errors import InvalidRequest, param_details
from faultlens.timeutil import now_ms, parse_rfc3339_ms

router = APIRouter(prefix="/api/v1/alerting", tags=["alerting"])

AlertStateFilter = Literal["active", "firing", "pending", "resolved", "inactive", "all"]
LevelFilter = Literal["P0", "P1", "P2"]
SilenceState = Literal["active", "pending", "expired", "all"]
NotificationState = Literal["pending", "delivered", "dead"]


def _who(principal: Principal) -> str:
    return f"key:{principal.key_id}" if principal.key_id else "anonymous"


@router.get("/alerts", response_model=s.AlertList, summary="Stateful alerts, firing first")
def alerts_list(
    principal: Reader,
    services: ServicesDep,
    state: AlertStateFilter = "active",
    level: LevelFilter | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    return views.list_alerts(services.engine, tenant=principal.tenant, state=state, level=level, limit=limit)


@router.get(
    "/alerts/{alert_id}",
    response_model=s.AlertDetail,
    responses=error_responses(404),
    summary="One alert with its history and notifications",
)
def alert_detail(alert_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    return views.get_alert(services.engine, tenant=principal.tenant, alert_id=alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=s.StatefulAlert,
    responses=error_responses(404),
    summary="Acknowledge an alert (who and when are recorded)",
)
def alert_ack(alert_id: str, principal: Admin, services: ServicesDep, body: s.AckBody | None = None) -> dict[str, Any]:
    comment = body.comment if body is not None else ""
    return views.acknowledge(
        services.engine, tenant=principal.tenant, alert_id=alert_id, by=_who(principal), comment=comment
    )


@router.get("/history", response_model=s.History, summary="What happened to the tenant's alerts, newest first")
def alert_history(
    principal: Reader,
    services: ServicesDep,
    window: WindowDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    return views.history(services.engine, tenant=principal.tenant, since=window.start_ms, limit=limit)


@router.get("/silences", response_model=s.SilenceList, summary="Silences, newest first")
def silences_list(principal: Reader, services: ServicesDep, state: SilenceState = "all") -> dict[str, Any]:
    return views.list_silences(services.engine, tenant=principal.tenant, state=state)


def _time(name: str, value: str) -> int:
    try:
        return parse_rfc3339_ms(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", details=param_details(name, str(exc), location="body")) from None


@router.post(
    "/silences",
    response_model=s.Silence,
    status_code=201,
    summary="Silence the alerts its matchers select, from starts_at (default now) to ends_at or for a duration",
)
def silence_create(body: s.SilenceBody, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    starts = _time("starts_at", body.starts_at) if body.starts_at else None
    if (body.ends_at is None) == (body.duration is None):
        message = "give either ends_at or duration"
        raise InvalidRequest(message, details=param_details("ends_at", message, location="body"))
    if body.ends_at is not None:
        ends = _time("ends_at", body.ends_at)
    else:
        try:
            seconds = parse_duration(body.duration)
        except ValueError as exc:
            raise InvalidRequest(str(exc), details=param_details("duration", str(exc), location="body")) from None
        ends = (starts if starts is not None else now_ms()) + int(seconds * 1000)
    items = [m if isinstance(m, str) else m.model_dump() for m in body.matchers]
    return views.create_silence(
        services.engine,
        tenant=principal.tenant,
        matcher_items=items,
        starts_at=starts,
        ends_at=ends,
        created_by=body.created_by or _who(principal),
        comment=body.comment,
    )


@router.delete(
    "/silences/{silence_id}",
    response_model=s.Silence,
    responses=error_responses(404),
    summary="Expire a silence now",
)
def silence_expire(silence_id: str, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    return views.expire_silence(services.engine, tenant=principal.tenant, silence_id=silence_id)


@router.get("/notifications", response_model=s.NotificationList, summary="The outbox: notifications and their fate")
def notifications_list(
    principal: Reader,
    services: ServicesDep,
    state: NotificationState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    return views.list_notifications(services.engine, tenant=principal.tenant, state=state, limit=limit)


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=s.NotificationOut,
    responses=error_responses(404),
    summary="Send a dead-lettered notification again",
)
def notification_resend(notification_id: str, principal: Admin, services: ServicesDep) -> dict[str, Any]:
    found = views.resend(services.engine, tenant=principal.tenant, notification_id=notification_id)
    if services.alerting is not None:
        services.alerting.wake_sender()
    return found
