"""Commands that set up and fill the database or try the classifier: migrate, demo, import, classify."""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from faultlens.cli.common import DbOption, RulesOption, err, progress, settings_for, usage


def migrate(db: DbOption = None) -> None:
    """Bring the database schema to the latest migration."""
    from faultlens.store.db import current_revision, engine_for
    from faultlens.store.db import migrate as run

    engine = engine_for(settings_for(db))
    run(engine)
    typer.echo(f"schema at {current_revision(engine)}")


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

    services = build_services(settings_for(db))
    accepted = duplicates = 0
    with progress() as bar:
        task = bar.add_task("demo events", total=events)
        for result in services.pipeline.ingest_iter(
            demo_data.generate(events, days=days, seed=seed), tenant=tenant, batch_size=5000
        ):
            accepted += result.accepted
            duplicates += result.duplicates
            bar.advance(task, result.accepted + result.duplicates + len(result.rejected))
    services.close()
    typer.echo(json.dumps({"accepted": accepted, "duplicates": duplicates}))


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON Lines file of events.")],
    db: DbOption = None,
    tenant: Annotated[str, typer.Option(help="Tenant to import into.")] = "default",
) -> None:
    """Import events from a JSONL file with the API's validation; prints a summary."""
    from faultlens.ingest import UTF8_BOM, _BadLine
    from faultlens.services import build_services

    services = build_services(settings_for(db))
    accepted = duplicates = 0
    rejected: list[dict[str, Any]] = []
    with file.open("rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    # The file's line number of each value handed to the pipeline: blank lines are skipped, not rejected.
    line_numbers = array("Q")

    def values() -> Any:
        with file.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if number == 1:
                    line = line.removeprefix(UTF8_BOM)  # some Windows tools start a UTF-8 file with one
                if not line.strip():
                    continue
                line_numbers.append(number)
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield _BadLine(str(exc))

    with progress() as bar:
        task = bar.add_task(f"importing {file.name}", total=lines)
        for result in services.pipeline.ingest_iter(values(), tenant=tenant, batch_size=2000):
            accepted += result.accepted
            duplicates += result.duplicates
            rejected.extend(result.rejected)
            bar.advance(task, result.accepted + result.duplicates + len(result.rejected))
    services.close()
    for item in rejected[:20]:
        err.print(
            f"line {line_numbers[item['index']]}: {item['error']['code']}: {item['error']['message']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    typer.echo(json.dumps({"accepted": accepted, "duplicates": duplicates, "rejected": len(rejected)}))
    if rejected and not accepted:
        raise typer.Exit(1)


def classify(
    message: Annotated[str, typer.Argument(help="The error message.")] = "",
    http_status: Annotated[int | None, typer.Option("--http-status", help="HTTP status code.")] = None,
    error_code: Annotated[str | None, typer.Option("--error-code", help="Error code.")] = None,
    status: Annotated[
        str, typer.Option(help="Event status: success, failure, retry, dead_letter, cancelled.")
    ] = "failure",
    source: Annotated[str | None, typer.Option(help="The event's source (rules may match on it).")] = None,
    operation: Annotated[str | None, typer.Option(help="The event's operation (rules may match on it).")] = None,
    rules: RulesOption = None,
) -> None:
    """Print the classification of one message as JSON."""
    from dataclasses import asdict

    from faultlens.classify.engine import Classifier
    from faultlens.classify.redact import redact
    from faultlens.model import Status
    from faultlens.services import load_packs

    if status not in {s.value for s in Status}:
        raise usage(f"--status {status!r} is not a status; use one of: {', '.join(s.value for s in Status)}")
    if http_status is not None and not 100 <= http_status <= 599:
        # The range ingest accepts for an event's http_status.
        raise usage(f"--http-status {http_status} is not an HTTP status (use 100-599)")
    classifier = Classifier(load_packs(settings_for(rules_file=rules)))
    # The same redacted fields ingest stores and classifies.
    result = classifier.classify(
        status=status,
        http_status=http_status,
        error_code=redact(error_code) if error_code else error_code,
        error_message=redact(message),
        source=source,
        operation=redact(operation) if operation else operation,
    )
    typer.echo(json.dumps(asdict(result), ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(migrate)
    app.command()(demo)
    app.command("import")(import_file)
    app.command()(classify)
