"""The `faultlens tasks` commands: list, sync, archive and retry failed tasks of the Redis sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from faultlens.errors import FaultlensError
from faultlens.settings import Settings

if TYPE_CHECKING:  # the services load the whole server: only the commands that need them import them
    from faultlens.services import Services

app = typer.Typer(
    help="Failed tasks in Redis (native layout, RQ, Celery): list, sync, archive, retry.", no_args_is_help=True
)
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL or SQLite).")]
RedisOption = Annotated[str | None, typer.Option("--redis-url", help="Redis URL (default: FAULTLENS_REDIS_URL).")]
PrefixOption = Annotated[str | None, typer.Option("--prefix", help="Native layout key prefix.")]

T = TypeVar("T")


def _services(db: str | None, redis_url: str | None, prefix: str | None, **extra: Any) -> Services:
    from faultlens.services import build_services

    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if db:
        values["database_url"] = db
    if redis_url:
        values["redis_url"] = redis_url
    if prefix:
        values["redis_prefix"] = prefix
    return build_services(Settings(**values))


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


def _run(services: Services, call: Callable[[], T]) -> T:
    try:
        with _reported():
            return call()
    finally:
        services.close()


@app.command("list")
def list_tasks(
    db: DbOption = None,
    redis_url: RedisOption = None,
    prefix: PrefixOption = None,
    source: Annotated[str | None, typer.Option(help="native|rq|celery or a source such as rq:default.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
) -> None:
    """Print failed tasks as JSON lines, newest fail time first."""
    from faultlens.connectors import service

    services = _services(db, redis_url, prefix)
    views = _run(services, lambda: service.list_failed_tasks(services))
    shown = [v for v in views if source is None or source in (v.task.kind, v.task.source)][:limit]
    for view in shown:
        typer.echo(json.dumps(view.as_dict(), ensure_ascii=False))
    err.print(f"{len(shown)} of {len(views)} failed task(s)", highlight=False)


@app.command("sync")
def sync_tasks(db: DbOption = None, redis_url: RedisOption = None, prefix: PrefixOption = None) -> None:
    """Ingest every failed task (and recorded retry) as events, once; safe to repeat."""
    from faultlens.connectors import sync

    services = _services(db, redis_url, prefix)
    result = _run(services, lambda: sync.sync_failed_tasks(services))
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    if result.errors:
        raise typer.Exit(1)


@app.command("archive")
def archive_tasks(
    db: DbOption = None,
    redis_url: RedisOption = None,
    prefix: PrefixOption = None,
    older_than_days: Annotated[
        float | None,
        typer.Option(
            "--older-than-days",
            min=0,
            help="Archive failures older than N days (default: FAULTLENS_TASK_RETENTION_DAYS).",
        ),
    ] = None,
    archive_dir: Annotated[
        str | None,
        typer.Option("--archive-dir", help="Archive to JSON Lines files here (default: FAULTLENS_TASK_ARCHIVE_TO)."),
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option(
            "--store",
            help="native|rq|celery, repeatable: the stores to archive and delete from "
            "(default: those with FAULTLENS_TASK_RETENTION_<STORE>=true; none by default).",
        ),
    ] = None,
) -> None:
    """Archive old failed tasks of the chosen stores to JSON Lines (fsync'ed), then delete them from Redis."""
    from faultlens.connectors import retention

    # A directory given on the command line is where the archive goes, on PostgreSQL too (else: task_archive_to).
    services = _services(
        db, redis_url, prefix, task_archive_dir=archive_dir, task_archive_to="directory" if archive_dir else None
    )
    result = _run(
        services,
        lambda: retention.archive_failed_tasks(services, older_than_days=older_than_days, stores=store or None),
    )
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    if result.errors:
        raise typer.Exit(1)


@app.command("retry")
def retry_task(
    task_id: Annotated[str, typer.Argument(help="The task id (or kind:id, as `tasks list` prints it).")],
    db: DbOption = None,
    redis_url: RedisOption = None,
    prefix: PrefixOption = None,
    kind: Annotated[str | None, typer.Option(help="native|rq|celery, when the id alone is ambiguous.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Retry even when the policy says not to.")] = False,
) -> None:
    """Requeue a failed task through its source; refused when the retry policy says it is not retryable."""
    from faultlens.connectors import retries

    services = _services(db, redis_url, prefix)
    result = _run(services, lambda: retries.retry_task(services, task_id, kind=kind, enforce_policy=not force))
    typer.echo(json.dumps(result, ensure_ascii=False))
