"""How a command's failure ends: one line on stderr and an exit status, with every URL password masked."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import typer
from typer.exceptions import TyperException

from faultlens.cli import rules as rules_cli
from faultlens.cli.common import say
from faultlens.errors import FaultlensError, RulePackError
from faultlens.settings import Settings

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # the click Typer bundles


class ReportingGroup(typer.core.TyperGroup):
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
            say(f"{exc.code}: {exc.message}")
            raise typer.Exit(2 if exc.http_status < 500 else 1) from None
        except Exception as exc:
            url = _db_url_of(argv)
            line = _database_failure(exc, url)
            if line is not None:
                say(line)
                raise typer.Exit(1) from None
            expected = _expected_failure(exc, url, _option_of(argv, "--redis-url"))
            if expected is not None:
                say(expected[0])
                raise typer.Exit(expected[1]) from None
            if _debugging():
                raise
            say(f"unexpected error: {type(exc).__name__}: {scrub(first_line(str(exc)))} ({DEBUG_HINT})")
            raise typer.Exit(1) from None


DEBUG_HINT = "run with FAULTLENS_LOG_LEVEL=DEBUG for details"
# user:password@ in any URL a message quotes; the password is replaced before the line is printed.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)[^@\s]*@")


def scrub(text: str) -> str:
    """The text with every URL password masked."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)


def first_line(text: str) -> str:
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
        return f"the database URL is not valid ({scrub(first_line(str(exc)))}); use sqlite:/// or postgresql://", 2
    if isinstance(exc, ImportError) and _driver_missing(db_url):
        return (
            f"{mask_url(db_url)} needs a database driver that is not installed ({exc}); "
            "use sqlite:/// or postgresql:// (psycopg 3)",
            2,
        )
    redis_shown = scrub(redis_url) if redis_url else "the configured Redis"
    if isinstance(exc, ValueError) and str(exc).startswith("Redis URL must"):
        return f"{redis_shown} is not a Redis URL ({first_line(str(exc))})", 2
    if isinstance(exc, RedisError):
        return f"Redis at {redis_shown} failed ({scrub(first_line(str(exc)))})", 1
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where} ({exc.strerror or scrub(first_line(str(exc)))})", 1
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
