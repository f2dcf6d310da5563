"""What every faultlens command shares: the stderr console, the --db/--rules options, settings and progress."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faultlens.settings import Settings

err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL or SQLite).")]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="A rule pack file layered before the default.")]


def say(line: str) -> None:
    """One red `faultlens: ...` line on stderr, printed verbatim."""
    err.print(f"faultlens: {line}", style="red", markup=False, highlight=False, soft_wrap=True)


def usage(line: str) -> typer.Exit:
    """Say `line`; the exit (status 2: fix the command) for the caller to raise."""
    say(line)
    return typer.Exit(2)


def settings_for(db: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with the options a command was given (None: not given)."""
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if db:
        values["database_url"] = db
    return Settings(**values)


def progress() -> Progress:
    """A progress bar on stderr, shown only when stderr is a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
    )
