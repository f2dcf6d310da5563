"""The faultlens command line: thin Typer commands that parse, call a service and print."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faultlens.cli import jobs as jobs_cli
from faultlens.cli import rollups as rollups_cli
from faultlens.cli import rules as rules_cli
from faultlens.cli import tasks as tasks_cli
from faultlens.settings import LOOPBACK_HOSTS, Settings

app = typer.Typer(help="faultlens: failure triage for requests, tasks and jobs.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(rules_cli.app, name="rules")
app.add_typer(rollups_cli.app, name="rollups")
app.add_typer(tasks_cli.app, name="tasks")
jobs_cli.register(app)
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL or SQLite).")]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="A rule pack file layered before the default.")]


def _settings(db: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if db:
        values["database_url"] = db
    return Settings(**values)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    db: DbOption = None,
    rules: RulesOption = None,
) -> None:
    """Serve the API and dashboard; brings the schema to head first."""
    import uvicorn

    from faultlens.api.app import create_app
    from faultlens.services import build_services
    from faultlens.store import keys

    settings = _settings(db, host=host, port=port, rules_file=rules)
    services = build_services(settings)
    with services.engine.connect() as conn:
        has_keys = keys.any_keys(conn)
    if not has_keys and not _is_loopback(settings.host):
        err.print(
            f"[red]refusing to bind {settings.host}: no API key exists, so the API would be open.[/red]\n"
            "Create one with: faultlens keys create --tenant T --scope admin"
        )
        raise typer.Exit(2)
    uvicorn.run(create_app(services), host=settings.host, port=settings.port, log_level="info")


@app.command()
def migrate(db: DbOption = None) -> None:
    """Bring the database schema to the latest migration."""
    from faultlens.store.db import create_db_engine, current_revision
    from faultlens.store.db import migrate as run

    engine = create_db_engine(_settings(db).database_url)
    run(engine)
    typer.echo(f"schema at {current_revision(engine)}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    )


@app.command()
def demo(
    db: DbOption = None,
    events: Annotated[int, typer.Option("--events", min=1, help="How many events to generate.")] = 50_000,
    days: Annotated[float, typer.Option("--days", min=0.01, max=90, help="Spread over the last D days.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    tenant: Annotated[str, typer.Option(help="Tenant to load the data into.")] = "default",
) -> None:
    """Load a realistic demo data set through the ingest pipeline."""
    from faultlens import demo as demo_data
    from faultlens.services import build_services

    services = build_services(_settings(db))
    accepted = duplicates = 0
    with _progress() as progress:
        task = progress.add_task("demo events", total=events)
        for result in services.pipeline.ingest_iter(
            demo_data.generate(events, days=days, seed=seed), tenant=tenant, batch_size=5000
        ):
            accepted += result.accepted
            duplicates += result.duplicates
            progress.advance(task, result.accepted + result.duplicates + len(result.rejected))
    services.close()
    typer.echo(json.dumps({"accepted": accepted, "duplicates": duplicates}))


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON Lines file of events.")],
    db: DbOption = None,
    tenant: Annotated[str, typer.Option(help="Tenant to import into.")] = "default",
) -> None:
    """Import events from a JSONL file with the API's validation; prints a summary."""
    from faultlens.ingest import _BadLine
    from faultlens.services import build_services

    services = build_services(_settings(db))
    accepted = duplicates = 0
    rejected: list[dict[str, Any]] = []
    lines = sum(1 for _ in file.open("rb"))

    def values() -> Any:
        with file.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    yield _BadLine("empty line")
                    continue
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield _BadLine(str(exc))

    with _progress() as progress:
        task = progress.add_task(f"importing {file.name}", total=lines)
        for result in services.pipeline.ingest_iter(values(), tenant=tenant, batch_size=2000):
            accepted += result.accepted
            duplicates += result.duplicates
            rejected.extend(result.rejected)
            progress.advance(task, result.accepted + result.duplicates + len(result.rejected))
    services.close()
    for item in rejected[:20]:
        err.print(f"line {item['index'] + 1}: {item['error']['code']}: {item['error']['message']}")
    typer.echo(json.dumps({"accepted": accepted, "duplicates": duplicates, "rejected": len(rejected)}))
    if rejected and not accepted:
        raise typer.Exit(1)


@app.command()
def classify(
    message: Annotated[str, typer.Argument(help="The error message.")] = "",
    http_status: Annotated[int | None, typer.Option("--http-status", help="HTTP status code.")] = None,
    error_code: Annotated[str | None, typer.Option("--error-code", help="Error code.")] = None,
    status: Annotated[str, typer.Option(help="Event status.")] = "failure",
    rules: RulesOption = None,
) -> None:
    """Print the classification of one message as JSON."""
    from dataclasses import asdict

    from faultlens.classify.engine import Classifier
    from faultlens.classify.redact import redact
    from faultlens.services import load_packs

    classifier = Classifier(load_packs(_settings(rules_file=rules)))
    result = classifier.classify(
        status=status, http_status=http_status, error_code=error_code, error_message=redact(message)
    )
    typer.echo(json.dumps(asdict(result), ensure_ascii=False))


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to.")],
    scope: Annotated[list[str], typer.Option("--scope", help="ingest, read or admin; repeatable.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    db: DbOption = None,
) -> None:
    """Create an API key; the secret is printed once."""
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine
    from faultlens.store.db import migrate as run

    engine = create_db_engine(_settings(db).database_url)
    run(engine)
    with engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=scope, name=name)
    typer.echo(json.dumps({"id": key.id, "tenant": key.tenant, "scopes": sorted(key.scopes), "key": secret}))


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List API keys (never their secrets)."""
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine
    from faultlens.store.db import migrate as run

    engine = create_db_engine(_settings(db).database_url)
    run(engine)
    with engine.connect() as conn:
        for row in keys.list_keys(conn):
            typer.echo(json.dumps(row))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id.")], db: DbOption = None) -> None:
    """Revoke an API key."""
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine

    engine = create_db_engine(_settings(db).database_url)
    with engine.begin() as conn:
        keys.revoke_key(conn, key_id=key_id)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    app()
