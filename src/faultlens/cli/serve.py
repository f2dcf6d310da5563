"""`faultlens serve`: checks the bind address and the key policy, then runs the app under uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from typing import Annotated

import typer

from faultlens import logs
from faultlens.cli.common import DbOption, RulesOption, err, settings_for, usage
from faultlens.logs import LogFormat
from faultlens.settings import LOOPBACK_HOSTS


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    db: DbOption = None,
    rules: RulesOption = None,
) -> None:
    """Serve the API and dashboard; brings the schema to head first."""
    import uvicorn

    from faultlens import process_tuning
    from faultlens.api import header_deadline
    from faultlens.api.app import create_app
    from faultlens.services import build_services
    from faultlens.store import keys
    from faultlens.store.db import mask_url

    settings = settings_for(db, host=host, port=port, rules_file=rules)
    configure_logging(settings.log_level, settings.log_format)
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
    app = create_app(services)
    process_tuning.settle(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # uvicorn's own loggers keep no handlers of their own: their lines go through faultlens.logs.
        log_config=None,
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
        raise usage(f"--port {port} is not a TCP port (use 1-65535, or 0 for any free port)")
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
        raise usage(f"--host {host!r} is not an IP address or host name")
    try:
        socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise usage(f"--host {host!r} does not resolve to an address ({exc})") from None


def configure_logging(level: str, log_format: LogFormat = "auto") -> None:
    """Every log line of the server (faultlens', uvicorn's) on stderr at FAULTLENS_LOG_LEVEL, as JSON lines or text
    (FAULTLENS_LOG_FORMAT), secrets masked in exception texts and warnings (faultlens.classify.redact)."""
    from faultlens.classify.redact import redact

    try:
        logs.setup(level, log_format, redact=redact)
    except ValueError:
        raise usage(f"FAULTLENS_LOG_LEVEL={level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)") from None


def register(app: typer.Typer) -> None:
    """Add `serve` to the main app."""
    app.command()(serve)
