"""The faultlens command line: thin Typer commands that parse, call a service and print."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import sys
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.exceptions import TyperException

from faultlens.cli import jobs as jobs_cli
from faultlens.cli import rollups as rollups_cli
from faultlens.cli import rules as rules_cli
from faultlens.cli import tasks as tasks_cli
from faultlens.errors import FaultlensError, RulePackError
from faultlens.settings import LOOPBACK_HOSTS, Settings

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # the click Typer bundles


class _ReportingGroup(typer.core.TyperGroup):
    """Every command's expected failures (database unreachable, bad rule pack...) end as one line, no traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        argv = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exit statuses and usage errors: Typer reports them
            raise
        except RulePackError as exc:
            rules_cli.report_pack_error(exc)
            raise typer.Exit(2) from None
        except FaultlensError as exc:
            _say(f"{exc.code}: {exc.message}")
            raise typer.Exit(2 if exc.http_status < 500 else 1) from None
        except Exception as exc:
            url = _db_url_of(argv)
            line = _database_failure(exc, url)
            if line is not None:
                _say(line)
                raise typer.Exit(1) from None
            expected = _expected_failure(exc, url, _option_of(argv, "--redis-url"))
            if expected is not None:
                _say(expected[0])
                raise typer.Exit(expected[1]) from None
            if _debugging():
                raise
            _say(f"unexpected error: {type(exc).__name__}: {_scrub(_first_line(str(exc)))} ({DEBUG_HINT})")
            raise typer.Exit(1) from None


DEBUG_HINT = "run with FAULTLENS_LOG_LEVEL=DEBUG for details"
# user:password@ in any URL a message quotes; the password is replaced before the line is printed.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^@\s]*@")


def _scrub(text: str) -> str:
    """The text with every URL password masked."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "no message"


def _debugging() -> bool:
    try:
        return Settings().log_level.upper() == "DEBUG"
    except Exception:
        return False


def _option_of(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _expected_failure(exc: BaseException, db_url: str, redis_url: str | None) -> tuple[str, int] | None:
    """One line and an exit status (2: fix the command or its settings, 1: the environment failed) for a
    failure a user can cause; None for anything else."""
    from pydantic import ValidationError
    from redis.exceptions import RedisError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from faultlens.store.db import mask_url

    if isinstance(exc, ValidationError):
        # Names and reasons only: a value may be a secret (a database URL with its password).
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return f"a setting is not valid ({problems})", 2
    if isinstance(exc, NoSuchModuleError):
        return (
            f"{mask_url(db_url)} names a database faultlens does not support ({exc}); use sqlite:/// or postgresql://",
            2,
        )
    if isinstance(exc, ArgumentError):
        return f"the database URL is not valid ({_scrub(_first_line(str(exc)))}); use sqlite:/// or postgresql://", 2
    if isinstance(exc, ImportError) and _driver_missing(db_url):
        return (
            f"{mask_url(db_url)} needs a database driver that is not installed ({exc}); "
            "use sqlite:/// or postgresql:// (psycopg 3)",
            2,
        )
    redis_shown = _scrub(redis_url) if redis_url else "the configured Redis"
    if isinstance(exc, ValueError) and str(exc).startswith("Redis URL must"):
        return f"{redis_shown} is not a Redis URL ({_first_line(str(exc))})", 2
    if isinstance(exc, RedisError):
        return f"Redis at {redis_shown} failed ({_scrub(_first_line(str(exc)))})", 1
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where} ({exc.strerror or _scrub(_first_line(str(exc)))})", 1
    return None


def _driver_missing(url: str) -> bool:
    """Whether the URL's database driver cannot be imported (asyncpg, MySQLdb...)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect().import_dbapi()
    except ImportError:
        return True
    except (ArgumentError, NoSuchModuleError, AttributeError):
        return False
    return False


app = typer.Typer(
    cls=_ReportingGroup,
    help="faultlens: failure triage for requests, tasks and jobs.",
    no_args_is_help=True,
    # A traceback's locals would print the database URL, password included.
    pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(rules_cli.app, name="rules")
app.add_typer(rollups_cli.app, name="rollups")
app.add_typer(tasks_cli.app, name="tasks")
jobs_cli.register(app)
err = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: FAULTLENS_DATABASE_URL or SQLite).")]
RulesOption = Annotated[Path | None, typer.Option("--rules", help="A rule pack file layered before the default.")]


def _say(line: str) -> None:
    err.print(f"faultlens: {line}", style="red", markup=False, highlight=False, soft_wrap=True)


def _db_url_of(argv: list[str]) -> str:
    """The database URL a command was given (--db), else the configured default."""
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--db="):
            return arg.split("=", 1)[1]
    try:
        return Settings().database_url
    except Exception:  # a bad environment is reported by the command itself
        return "(the configured database)"


def _database_failure(exc: BaseException, url: str) -> str | None:
    """One line for a database that cannot be reached or does not exist; None for any other error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from faultlens.store.db import connect_failure_reason, mask_url, missing_database, unavailable_reason

    shown = mask_url(url)
    name = missing_database(exc)
    if name is not None:
        try:
            parsed = make_url(url)
            where = f" -h {parsed.host or 'localhost'} -p {parsed.port or 5432} -U {parsed.username or 'postgres'}"
        except ArgumentError:
            where = ""
        return f"the database {name!r} does not exist at {shown}; create it with: createdb{where} {name}"
    reason = unavailable_reason(exc)
    if reason is None:
        return None
    orig = getattr(exc, "orig", exc)
    if reason in ("the statement timed out", "a lock was not granted in time"):
        return f"the database at {shown} did not answer in time: {reason} (see docs/limits.md)"
    if "timed out" in reason:
        try:
            waited = Settings().database_connect_timeout_s
        except Exception:
            waited = None
        within = f" (no answer within {waited:g} s)" if waited else ""
        return f"cannot reach the database at {shown}{within}: {connect_failure_reason(orig)}"
    return f"cannot reach the database at {shown}: {reason}"


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

    from faultlens.api import header_deadline
    from faultlens.api.app import create_app
    from faultlens.services import build_services
    from faultlens.store import keys
    from faultlens.store.db import mask_url

    settings = _settings(db, host=host, port=port, rules_file=rules)
    _configure_logging(settings.log_level)
    _check_bind(settings.host, settings.port)
    services = build_services(settings)
    logging.getLogger("faultlens.cli").info("database %s", mask_url(settings.database_url))
    with services.engine.connect() as conn:
        anonymous = keys.anonymous_allowed(conn)
    if anonymous and not _is_loopback(settings.host):
        err.print(
            f"[red]refusing to bind {settings.host}: no API key is active, so the API would be open.[/red]\n"
            "Create one with: faultlens keys create --tenant T --scope admin"
        )
        raise typer.Exit(2)
    if not _is_loopback(settings.host) and not settings.allowed_hosts:
        # Requests are answered only when their Host is a loopback name or the bind address (api/guard.py).
        err.print(
            f"faultlens: FAULTLENS_ALLOWED_HOSTS is unset, so requests addressed to names other than loopback "
            f"and {settings.host} answer 400 host_not_allowed",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    uvicorn.run(
        create_app(services),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # faultlens.access logs each request without its query string (api/access_log.py); uvicorn's would not.
        access_log=False,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        http=header_deadline.protocol(settings.header_timeout_s),
    )


# An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _check_bind(host: str, port: int) -> None:
    """Refuse a port outside 0-65535 (0: any free port) or a host that is neither an address nor a host name
    that resolves, with one line and exit status 2, before anything is opened."""
    if not 0 <= port <= 65535:
        raise _usage(f"--port {port} is not a TCP port (use 1-65535, or 0 for any free port)")
    name = host.strip("[]")
    if not name:  # every interface, like 0.0.0.0
        return
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    labels = name.removesuffix(".").split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise _usage(f"--host {host!r} is not an IP address or host name")
    try:
        socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _usage(f"--host {host!r} does not resolve to an address ({exc})") from None


def _configure_logging(level: str) -> None:
    """faultlens.* log lines (archive, sync, jobs) on stderr beside uvicorn's, at FAULTLENS_LOG_LEVEL."""
    logger = logging.getLogger("faultlens")
    if not any(getattr(h, "_faultlens", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._faultlens = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    try:
        logger.setLevel(level.upper())
    except ValueError:
        raise _usage(f"FAULTLENS_LOG_LEVEL={level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)") from None
    logger.propagate = False


def _usage(line: str) -> typer.Exit:
    _say(line)
    return typer.Exit(2)


@app.command()
def migrate(db: DbOption = None) -> None:
    """Bring the database schema to the latest migration."""
    from faultlens.store.db import current_revision, engine_for
    from faultlens.store.db import migrate as run

    engine = engine_for(_settings(db))
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
    from faultlens.ingest import UTF8_BOM, _BadLine
    from faultlens.services import build_services

    services = build_services(_settings(db))
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

    with _progress() as progress:
        task = progress.add_task(f"importing {file.name}", total=lines)
        for result in services.pipeline.ingest_iter(values(), tenant=tenant, batch_size=2000):
            accepted += result.accepted
            duplicates += result.duplicates
            rejected.extend(result.rejected)
            progress.advance(task, result.accepted + result.duplicates + len(result.rejected))
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


@app.command()
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
        raise _usage(f"--status {status!r} is not a status; use one of: {', '.join(s.value for s in Status)}")
    if http_status is not None and not 100 <= http_status <= 599:
        # The range ingest accepts for an event's http_status.
        raise _usage(f"--http-status {http_status} is not an HTTP status (use 100-599)")
    classifier = Classifier(load_packs(_settings(rules_file=rules)))
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


def _existing_sqlite(url: str, *, may_create: bool = False) -> None:
    """A keys command on a SQLite file that does not exist says so and exits 1, creating nothing; with
    `may_create` a new file is fine when its directory exists (no directory is ever created)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)  # a bad URL is reported by the group handler
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:") or Path(path).exists():
        return
    if may_create and Path(path).parent.is_dir():
        return
    if may_create:
        _say(f"no database at {path}, and its directory {Path(path).parent} does not exist (create it first)")
    else:
        _say(f"no database at {path} (the file does not exist; `faultlens migrate` creates one)")
    raise typer.Exit(1)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            help="ingest, read, admin or operator (changes the global rule pack; admin never implies it); repeatable.",
        ),
    ],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    db: DbOption = None,
) -> None:
    """Create an API key; the secret is printed once."""
    from faultlens.store import keys
    from faultlens.store.db import engine_for
    from faultlens.store.db import migrate as run

    if not keys.TENANT_NAME.fullmatch(tenant):
        raise _usage(f"--tenant {tenant!r} is not a tenant name (1-64 characters of A-Z, a-z, 0-9, '.', '_', '-')")
    settings = _settings(db)
    _existing_sqlite(settings.database_url, may_create=True)
    engine = engine_for(settings)
    run(engine)
    with engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=scope, name=name)
    typer.echo(json.dumps({"id": key.id, "tenant": key.tenant, "scopes": sorted(key.scopes), "key": secret}))


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List API keys (never their secrets)."""
    from faultlens.store import keys
    from faultlens.store.db import engine_for
    from faultlens.store.db import migrate as run
    from faultlens.timeutil import ms_to_rfc3339

    settings = _settings(db)
    _existing_sqlite(settings.database_url)
    engine = engine_for(settings)
    run(engine)
    with engine.connect() as conn:
        for row in keys.list_keys(conn):
            # Times print as RFC 3339 (UTC), like the API's, not as the stored epoch milliseconds.
            shown = {k: ms_to_rfc3339(v) if k.endswith("_at") and isinstance(v, int) else v for k, v in row.items()}
            typer.echo(json.dumps(shown, ensure_ascii=False))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id.")], db: DbOption = None) -> None:
    """Revoke an API key."""
    from faultlens.store import keys
    from faultlens.store.db import engine_for

    settings = _settings(db)
    _existing_sqlite(settings.database_url)
    engine = engine_for(settings)
    with engine.begin() as conn:
        keys.revoke_key(conn, key_id=key_id)
    typer.echo(f"revoked {key_id}")


@keys_app.command("open-mode")
def keys_open_mode(
    enable: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Serve loopback callers without a key, or stop; omit to show."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Show or set anonymous access. A database that has had a key refuses callers without one, even after its
    last key is revoked, until --enable; creating a key turns it off again."""
    from faultlens.errors import Conflict
    from faultlens.store import keys
    from faultlens.store.db import engine_for
    from faultlens.store.db import migrate as run

    settings = _settings(db)
    _existing_sqlite(settings.database_url)
    engine = engine_for(settings)
    run(engine)
    try:
        with engine.begin() as conn:
            if enable is not None:
                keys.set_open_mode(conn, enabled=enable)
            status = keys.open_mode_status(conn)
    except Conflict as exc:
        err.print(f"faultlens: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(status))


def main() -> None:
    app()
