"""Top-level job commands: `faultlens backfill` (enqueue, run or follow) and `faultlens fingerprint` (stdin)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from faultlens.cli import common
from faultlens.errors import FaultlensError

if TYPE_CHECKING:
    from faultlens.classify.fingerprint import Fingerprinter
    from faultlens.jobs.queue import Job
    from faultlens.services import Services
    from faultlens.settings import Settings

err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL or SQLite).")]


def _settings(db: str | None, **overrides: Any) -> Settings:
    from faultlens.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if db:
        values["database_url"] = db
    return Settings(**values)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def missing_sqlite_file(url: str) -> None:
    """Read-only commands refuse a SQLite path that does not exist, rather than create an empty database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _fail(f"{url!r} is not a database URL") from None
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path not in (None, "", ":memory:") and not Path(path).exists():
        raise _fail(f"no database at {path}")


def _services(settings: Settings) -> Services:
    """Services classifying with what the server would use: the global packs (an activated one included) and
    every tenant's own pack, all resolved by build_services."""
    from faultlens.services import build_services

    return build_services(settings)


def backfill(
    db: DbOption = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="A rule pack file layered before the default.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Run (or follow) the backfill until it ends.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Reclassify even if the rule version did not change.")] = False,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Events per transaction.")] = None,
    pause_ms: Annotated[
        float | None, typer.Option("--pause-ms", min=0, help="Pause between batches, to leave room for ingest.")
    ] = None,
) -> None:
    """Reclassify stored events with the active rules: enqueue the backfill if needed; --wait runs it here."""
    from faultlens.jobs.queue import job_to_api
    from faultlens.rulepacks.activation import sync_rule_version

    try:
        services = _services(_settings(db, rules_file=rules, backfill_batch_size=batch_size))
        version = services.pipeline.classifier.version
        job = sync_rule_version(services.engine, version, force=force)
    except FaultlensError as exc:
        raise _fail(exc.message) from None
    if job is None:
        typer.echo(
            json.dumps(
                {
                    "job": None,
                    "rule_version": version,
                    "message": "stored events are already classified with this rule version",
                }
            )
        )
        services.engine.dispose()
        return
    if not wait:
        typer.echo(json.dumps({"job": job_to_api(job)}))
        services.engine.dispose()
        return
    final = _follow(services, job, pause_s=None if pause_ms is None else pause_ms / 1000)
    services.engine.dispose()
    typer.echo(json.dumps({"job": job_to_api(final)}))
    if final.state != "done":
        raise _fail(f"backfill {final.id} {final.state}: {final.error or 'see the server log'}", code=1)


def _follow(services: Services, job: Job, *, pause_s: float | None) -> Job:
    """Work the job in this process when it can be claimed, otherwise watch whoever works it."""
    from faultlens.jobs import runner
    from faultlens.jobs.queue import get_job
    from faultlens.timeutil import now_ms

    owner = runner.make_owner()
    progress = common.progress()
    with progress:
        task = progress.add_task(f"backfill {job.rule_version}", total=job.total or None)

        def show(current: Job) -> None:
            progress.update(task, completed=current.done, total=max(current.total, current.done) or None)

        while True:
            with services.engine.connect() as conn:
                job = get_job(conn, job.id)
            show(job)
            if not job.active:
                return job
            if runner.claimable(job, now=now_ms(), stale_ms=int(runner.DEFAULT_STALE_S * 1000)):
                reason = runner.HANDLERS[job.kind].blocked(job, services)
                if reason is not None and job.state == "pending":
                    raise _fail(f"cannot run backfill {job.id}: {reason}; start it with the server's --rules", 1)
                claimed = runner.claim(services, job, owner) if reason is None else None
                if claimed is not None:
                    try:
                        job = runner.run_job(services, claimed, owner, pause_s=pause_s, on_progress=show)
                    except KeyboardInterrupt:
                        runner.release(services.engine, claimed.id, owner)
                        raise _fail("interrupted; run `faultlens backfill --wait` to resume", 130) from None
                    continue
            time.sleep(0.5)  # someone else works it: poll its progress


def fingerprint(
    source: Annotated[
        Path | None,
        typer.Argument(help="File of messages, one per line (default: stdin).", exists=True, dir_okay=False),
    ] = None,
    db: DbOption = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Whose saved templates to start from (with --db; default: the default tenant)."),
    ] = None,
) -> None:
    """Read messages from SOURCE or stdin, one per line; print `<template_id>\\t<template>` for each, in order."""
    from faultlens.classify.fingerprint import Fingerprinter, Template

    if tenant is not None and not db:
        raise _fail("--tenant names saved templates: give --db too")
    fingerprinter = _stored_fingerprinter(db, tenant) if db else Fingerprinter()
    add = fingerprinter.add
    write = sys.stdout.write
    # Output row per template object (kept alive here, so its id() is not reused): most lines
    # repeat a template, and the row then costs one lookup.
    rows: dict[int, tuple[Template, str]] = {}
    with source.open("rb") if source is not None else contextlib.nullcontext(sys.stdin.buffer) as lines:
        for raw in lines:
            template = add(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            row = rows.get(id(template))
            if row is None or row[0] is not template:
                if len(rows) >= 100_000:
                    rows.clear()
                text = template.text.replace("\t", " ").replace("\n", " ")
                row = rows[id(template)] = (template, f"{template.id}\t{text}\n")
            write(row[1])
    sys.stdout.flush()


def _stored_fingerprinter(db: str, tenant: str | None) -> Fingerprinter:
    """The tenant's saved fingerprinter, as the server loads it (the default tenant adopts a pre-tenant state)."""
    from sqlalchemy.exc import SQLAlchemyError

    from faultlens.classify.fingerprint import Fingerprinter
    from faultlens.fingerprinters import load_fingerprinter
    from faultlens.services import load_state
    from faultlens.store.db import engine_for

    missing_sqlite_file(db)
    settings = _settings(db)
    default_tenant = settings.default_tenant
    engine = engine_for(settings)
    try:
        saved, _ = load_fingerprinter(
            lambda key: load_state(engine, key), tenant or default_tenant, default_tenant=default_tenant
        )
    except SQLAlchemyError as exc:
        raise _fail(f"cannot read fingerprint state from the database: {getattr(exc, 'orig', None) or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(f"the saved fingerprint state does not load: {exc}") from None
    finally:
        engine.dispose()
    if saved is None:
        err.print(f"no saved fingerprint state for tenant {tenant or default_tenant!r} in the database; starting fresh")
        return Fingerprinter()
    return saved


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("backfill")(backfill)
    app.command("fingerprint")(fingerprint)
