"""The faultlens command line: the Typer app assembled from thin commands that parse, call a service and print."""

from __future__ import annotations

import logging

import typer

from faultlens.cli import alerts as alerts_cli
from faultlens.cli import data as data_cli
from faultlens.cli import drills as drills_cli
from faultlens.cli import gate as gate_cli
from faultlens.cli import groups as groups_cli
from faultlens.cli import jobs as jobs_cli
from faultlens.cli import keys as keys_cli
from faultlens.cli import rollouts as rollouts_cli
from faultlens.cli import rollups as rollups_cli
from faultlens.cli import rules as rules_cli
from faultlens.cli import serve as serve_cli
from faultlens.cli import tasks as tasks_cli
from faultlens.cli.errors import ReportingGroup

app = typer.Typer(
    cls=ReportingGroup,
    help="faultlens: failure triage for requests, tasks and jobs.",
    no_args_is_help=True,
    # A traceback's locals would print the database URL, password included.
    pretty_exceptions_show_locals=False,
)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(rules_cli.app, name="rules")
app.add_typer(rollups_cli.app, name="rollups")
app.add_typer(tasks_cli.app, name="tasks")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(gate_cli.app, name="gate")
app.add_typer(rollouts_cli.app, name="rollout")
app.add_typer(drills_cli.app, name="drill")
app.add_typer(groups_cli.app, name="groups")
jobs_cli.register(app)
serve_cli.register(app)
data_cli.register(app)


def main() -> None:
    _setup_logs()
    app()


def _setup_logs() -> None:
    """Warnings and errors any command logs come out formatted like the server's (serve then sets its own level).

    A bad FAULTLENS_* value is reported by the command itself, in one line; logging then keeps Python's default.
    """
    from faultlens import logs
    from faultlens.classify.redact import redact
    from faultlens.settings import Settings

    try:
        settings = Settings()
        level = max(logs.parse_level(settings.log_level), logging.WARNING)
    except ValueError:  # pydantic's ValidationError is one
        return
    logs.setup(logging.getLevelName(level), settings.log_format, redact=redact)
