"""`faultlens rollups verify|rebuild`: check rollups against a scan of the raw events, or rebuild them."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from faultlens.cli.jobs import DbOption, _fail, _settings, missing_sqlite_file

app = typer.Typer(help="Check or rebuild the rollups that window queries read.", no_args_is_help=True)
out = Console()


@app.command("verify")
def verify(
    db: DbOption = None,
    tenant: Annotated[str, typer.Option(help="Tenant to check.")] = "default",
    days: Annotated[float, typer.Option(min=0.01, max=3660, help="Window: the last N days up to now.")] = 7,
    attribute_values: Annotated[
        int, typer.Option(min=0, help="Attribute rows: how many of the most frequent values to check.")
    ] = 20,
) -> None:
    """Compare every rollup shape with a GROUP BY over the raw events of the window, in one snapshot.

    Exits 1 when any group differs. Costs a scan of the window's events per shape (minutes on 10M events).
    """
    from faultlens.store import rollup_reads, rollup_shapes
    from faultlens.store.db import engine_for, without_deadlines
    from faultlens.store.rollup_checks import frequent_attribute_values, read_snapshot
    from faultlens.timeutil import now_ms

    settings = _settings(db)
    missing_sqlite_file(settings.database_url)
    # A verification scans every event of the window once per shape: longer than any request may take.
    engine = without_deadlines(engine_for(settings))
    end = now_ms() + 1
    start = end - int(days * rollup_shapes.DAY_MS)
    table = Table("shape", "question", "groups", "events", "differing groups")
    bad = 0
    with read_snapshot(engine) as conn:  # both sides of each comparison see the same events
        questions: list[tuple[int, str, dict[str, Any]]] = [
            (shape, ", ".join(rollup_shapes.SHAPES[shape]), {}) for shape in range(rollup_shapes.ATTRIBUTE_SHAPE)
        ]
        if rollup_reads.release_rollups_ready(conn):
            release = rollup_shapes.RELEASE_SHAPE
            questions.append((release, ", ".join(rollup_shapes.SHAPES[release]), {}))
        if rollup_reads.group_rollups_ready(conn):
            group = rollup_shapes.GROUP_SHAPE
            questions.append((group, ", ".join(rollup_shapes.SHAPES[group]), {}))
        if rollup_reads.attribute_rollups_ready(conn):
            frequent = frequent_attribute_values(conn, tenant=tenant, start=start, end=end, limit=attribute_values)
            for name, value in frequent:
                questions.append(
                    (rollup_shapes.ATTRIBUTE_SHAPE, f"{name}={value}", {"attr_name": name, "attr_value": value})
                )
        for shape, label, where in questions:
            by = [d for d in rollup_shapes.SHAPES[shape] if d not in rollup_shapes.ATTRIBUTE_DIMENSIONS]
            answered = rollup_reads.aggregate(conn, tenant=tenant, start=start, end=end, by=by, where=where)
            scanned = rollup_reads.aggregate_events(conn, tenant=tenant, start=start, end=end, by=by, where=where)
            differing = sum(1 for k in answered.keys() | scanned.keys() if answered.get(k) != scanned.get(k))
            bad += differing
            events = sum(n for n, _a in scanned.values())
            table.add_row(str(shape), label, f"{len(scanned):,}", f"{events:,}", str(differing))
    engine.dispose()
    out.print(table)
    if bad:
        raise _fail(f"{bad} group(s) differ from the raw events: run `faultlens rollups rebuild`", code=1)
    out.print(f"rollups match the raw events of the last {days:g} day(s) for tenant {tenant}")


@app.command("rebuild")
def rebuild(
    db: DbOption = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Run the rebuild here and wait for it.")] = True,
) -> None:
    """Recompute every rollup from the events (the rollup_rebuild job; ingest may go on meanwhile)."""
    from faultlens.jobs.rollup_rebuild import request_rollup_rebuild
    from faultlens.jobs.runner import run_until_idle
    from faultlens.services import build_services

    settings = _settings(db, start_jobs=False)
    missing_sqlite_file(settings.database_url)
    services = build_services(settings)
    job = request_rollup_rebuild(services.engine)
    if job is None:
        out.print("no events: the rollups are empty and complete")
        return
    if not wait:
        out.print(f"rollup rebuild {job.id} queued; a running server's job runner will work it")
        return
    ended = run_until_idle(services, pause_s=0)
    mine = [j for j in ended if j.id == job.id]
    if not mine or mine[0].state != "done":
        raise _fail(f"the rebuild did not finish here: {[(j.kind, j.state, j.error) for j in ended]}")
    out.print(f"rollups rebuilt from {mine[0].done:,} events")
