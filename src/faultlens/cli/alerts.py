"""The `faultlens alerts` commands: check a routing file, list and look at alerts, acknowledge, silence, re-send
dead letters, and run one evaluation or delivery pass by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from faultlens.cli import common
from faultlens.errors import FaultlensError

if TYPE_CHECKING:
    from faultlens.services import Services

app = typer.Typer(
    help="Stateful alerts: check the routing file, list, acknowledge, silence, re-send.", no_args_is_help=True
)
silence_app = typer.Typer(help="Silences: add, list, expire.", no_args_is_help=True)
app.add_typer(silence_app, name="silence")
err = Console(stderr=True)
T = TypeVar("T")

TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: FAULTLENS_DEFAULT_TENANT).")]


@contextmanager
def _reported() -> Iterator[None]:
    """A FaultlensError becomes its code and message on stderr and exit status 1."""
    try:
        yield
    except FaultlensError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.message}", markup=True, highlight=False)
        if exc.details:
            err.print(json.dumps(exc.details, ensure_ascii=False, default=str), markup=False, highlight=False)
        raise typer.Exit(1) from None


def _with_services(db: str | None, call: Callable[[Services], T]) -> T:
    from faultlens.services import build_services

    with _reported():
        services = build_services(common.settings_for(db))
        try:
            return call(services)
        finally:
            services.close()


def _tenant(services: Services, tenant: str | None) -> str:
    return tenant or services.settings.default_tenant


def _echo(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="The routing file (YAML) to validate.")],
    no_env: Annotated[
        bool, typer.Option("--no-env", help="Do not require the environment variables it names to be set here.")
    ] = False,
) -> None:
    """Validate a routing file: exit 0 when it is valid, 1 with every problem listed otherwise."""
    from faultlens.alerting.routing import check_routing

    if not path.is_file():
        raise common.usage(f"no file at {path}")
    problems = check_routing(path, require_env=not no_env)
    if problems:
        for problem in problems:
            err.print(f"[red]{path}[/red]: {problem}", highlight=False)
        raise typer.Exit(1)
    typer.echo(f"{path}: valid")


@app.command("list")
def list_alerts(
    db: common.DbOption = None,
    tenant: TenantOption = None,
    state: Annotated[str, typer.Option(help="active|firing|pending|resolved|inactive|all")] = "active",
    level: Annotated[str | None, typer.Option(help="P0|P1|P2")] = None,
) -> None:
    """Alerts of the tenant as JSON, firing first."""
    from faultlens.alerting import views

    if state not in views.STATE_FILTERS:
        raise common.usage(f"--state must be one of {', '.join(views.STATE_FILTERS)}")
    if level not in (None, "P0", "P1", "P2"):
        raise common.usage("--level must be P0, P1 or P2")
    doc = _with_services(db, lambda s: views.list_alerts(s.engine, tenant=_tenant(s, tenant), state=state, level=level))
    _echo(doc)


@app.command("show")
def show(alert_id: str, db: common.DbOption = None, tenant: TenantOption = None) -> None:
    """One alert with its history and notifications."""
    from faultlens.alerting import views

    _echo(_with_services(db, lambda s: views.get_alert(s.engine, tenant=_tenant(s, tenant), alert_id=alert_id)))


@app.command("ack")
def ack(
    alert_id: str,
    by: Annotated[str, typer.Option("--by", help="Who acknowledges (a name or handle).")],
    comment: Annotated[str, typer.Option("--comment")] = "",
    db: common.DbOption = None,
    tenant: TenantOption = None,
) -> None:
    """Acknowledge an alert: who and when are recorded in its history."""
    from faultlens.alerting import views

    doc = _with_services(
        db,
        lambda s: views.acknowledge(s.engine, tenant=_tenant(s, tenant), alert_id=alert_id, by=by, comment=comment),
    )
    _echo(doc)


@app.command("history")
def history(
    db: common.DbOption = None,
    tenant: TenantOption = None,
    window: Annotated[str, typer.Option(help="1h|6h|24h|7d|14d|30d|90d")] = "24h",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
) -> None:
    """What happened to the tenant's alerts, newest first."""
    from faultlens.alerting import views
    from faultlens.timeutil import resolve_window

    with _reported():
        _label, start, _end = resolve_window(window, None, None)
    _echo(_with_services(db, lambda s: views.history(s.engine, tenant=_tenant(s, tenant), since=start, limit=limit)))


@silence_app.command("add")
def silence_add(
    matcher: Annotated[list[str], typer.Option("--matcher", "-m", help='e.g. alertname=failure_spike, source=~"a|b"')],
    comment: Annotated[str, typer.Option("--comment", help="Why, and until when it is safe.")],
    by: Annotated[str, typer.Option("--by", help="Who creates it.")],
    duration: Annotated[str, typer.Option("--duration", help="30m, 2h, 1d ...")] = "2h",
    db: common.DbOption = None,
    tenant: TenantOption = None,
) -> None:
    """Silence the alerts every matcher selects, from now for --duration."""
    from faultlens.alerting import views
    from faultlens.alerting.routing import parse_duration
    from faultlens.timeutil import now_ms

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise common.usage(str(exc)) from None
    ends = now_ms() + int(seconds * 1000)
    doc = _with_services(
        db,
        lambda s: views.create_silence(
            s.engine,
            tenant=_tenant(s, tenant),
            matcher_items=matcher,
            starts_at=None,
            ends_at=ends,
            created_by=by,
            comment=comment,
        ),
    )
    _echo(doc)


@silence_app.command("list")
def silence_list(
    db: common.DbOption = None,
    tenant: TenantOption = None,
    state: Annotated[str, typer.Option(help="active|pending|expired|all")] = "all",
) -> None:
    """Silences of the tenant, newest first."""
    from faultlens.alerting import views

    if state not in views.SILENCE_STATES:
        raise common.usage(f"--state must be one of {', '.join(views.SILENCE_STATES)}")
    _echo(_with_services(db, lambda s: views.list_silences(s.engine, tenant=_tenant(s, tenant), state=state)))


@silence_app.command("expire")
def silence_expire(silence_id: str, db: common.DbOption = None, tenant: TenantOption = None) -> None:
    """End a silence now."""
    from faultlens.alerting import views

    _echo(
        _with_services(db, lambda s: views.expire_silence(s.engine, tenant=_tenant(s, tenant), silence_id=silence_id))
    )


@app.command("notifications")
def notifications(
    db: common.DbOption = None,
    tenant: TenantOption = None,
    state: Annotated[str | None, typer.Option(help="pending|delivered|dead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """The outbox: notifications of the tenant and what became of them."""
    from faultlens.alerting import views

    if state not in (None, "pending", "delivered", "dead"):
        raise common.usage("--state must be pending, delivered or dead")
    _echo(
        _with_services(
            db, lambda s: views.list_notifications(s.engine, tenant=_tenant(s, tenant), state=state, limit=limit)
        )
    )


@app.command("resend")
def resend(
    notification_id: Annotated[str | None, typer.Argument(help="A dead-lettered notification's id.")] = None,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Every dead-lettered notification of the tenant.")
    ] = False,
    db: common.DbOption = None,
    tenant: TenantOption = None,
) -> None:
    """Put dead-lettered notifications back in the outbox; the running server's sender delivers them."""
    from faultlens.alerting import views

    if (notification_id is None) == (not all_dead):
        raise common.usage("give a notification id or --all-dead")

    def run(s: Services) -> list[dict[str, Any]]:
        t = _tenant(s, tenant)
        if notification_id is not None:
            return [views.resend(s.engine, tenant=t, notification_id=notification_id)]
        dead = views.list_notifications(s.engine, tenant=t, state="dead", limit=500)["items"]
        return [views.resend(s.engine, tenant=t, notification_id=n["id"]) for n in dead]

    done = _with_services(db, run)
    _echo({"resent": done})


@app.command("evaluate")
def evaluate(db: common.DbOption = None) -> None:
    """Run one evaluation pass now (what the server's alert_evaluator does every interval) and print what changed."""

    def run(s: Services) -> dict[str, Any]:
        assert s.alerting is not None
        return s.alerting.evaluate_once().as_dict()

    _echo(_with_services(db, run))


@app.command("deliver")
def deliver(db: common.DbOption = None) -> None:
    """Run one delivery pass now: send the notifications that are due."""

    def run(s: Services) -> dict[str, Any]:
        assert s.alerting is not None
        report = s.alerting.deliver_once()
        return report.as_dict() if hasattr(report, "as_dict") else report.__dict__

    _echo(_with_services(db, run))
