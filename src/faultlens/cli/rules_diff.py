"""`faultlens rules diff`: preview what a candidate pack would reclassify in stored events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from faultlens.errors import FaultlensError

err = Console(stderr=True)


def diff(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The candidate pack (.yaml/.json).")],
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL).")] = None,
    window: Annotated[str, typer.Option("--window", help="1h|6h|24h|7d|14d|30d|90d")] = "7d",
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant whose events are examined.")] = "default",
    scope: Annotated[
        str, typer.Option("--scope", help="tenant: as the tenant's own pack; global: as the global pack.")
    ] = "tenant",
    as_json: Annotated[bool, typer.Option("--json", help="Print the preview as JSON.")] = False,
) -> None:
    """Show which stored events the pack would move, layered exactly as its activation would; writes nothing."""
    from sqlalchemy.exc import SQLAlchemyError

    from faultlens.classify.rules import load_pack
    from faultlens.cli.jobs import missing_sqlite_file
    from faultlens.rulepacks.activation import candidate_for
    from faultlens.rulepacks.rulebook import GLOBAL_SCOPE
    from faultlens.services import build_services
    from faultlens.settings import Settings
    from faultlens.store.db import missing_database, unavailable_reason
    from faultlens.timeutil import Window, resolve_window
    from faultlens.triage.preview import preview

    if scope not in ("tenant", GLOBAL_SCOPE):
        err.print(f"[red]--scope must be tenant or {GLOBAL_SCOPE}[/red]")
        raise typer.Exit(2)
    try:
        pack = load_pack(file)
        label, start, end = resolve_window(window, None, None)
    except FaultlensError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    settings = Settings(database_url=db) if db else Settings()
    missing_sqlite_file(settings.database_url)
    # The live stack (the tenant's pack, the global pack or --rules, the default) decides what "moves" means.
    services = build_services(settings.model_copy(update={"start_jobs": False}), run_migrations=False)
    engine = services.engine
    try:
        candidate = candidate_for(services, pack, tenant=tenant, scope=scope)
        with engine.connect() as conn:
            result = preview(conn, tenant=tenant, window=Window(label, start, end), candidate=candidate)
    except SQLAlchemyError as exc:
        if unavailable_reason(exc) is not None or missing_database(exc) is not None:
            raise  # the command line's one-line report of an unreachable database
        err.print(f"[red]cannot read events: {getattr(exc, 'orig', None) or exc}[/red] (is the schema migrated?)")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    out = Console()
    table = Table(title=f"{result['candidate_version']} over the last {result['window']}")
    for name, justify in (("from", "left"), ("to", "left"), ("events", "right"), ("sample ids", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for move in result["moves"]:
        src, dst = move["from"], move["to"]
        table.add_row(
            f"{src['failure_class']} / {src['failure_kind']}",
            f"{dst['failure_class']} / {dst['failure_kind']}",
            f"{move['count']:,}",
            ", ".join(move["sample_ids"]),
        )
    out.print(table)
    out.print(f"{result['total_changed']:,} of {result['total_examined']:,} events would change")


def register(rules_app: typer.Typer) -> None:
    """Add `diff` to the `faultlens rules` group."""
    rules_app.command("diff")(diff)
