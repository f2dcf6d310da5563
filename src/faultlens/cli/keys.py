"""`faultlens keys`: create, list and revoke API keys, and show or set anonymous (open) mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from faultlens.cli.common import DbOption, err, say, settings_for, usage

app = typer.Typer(help="Manage API keys.", no_args_is_help=True)


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
        say(f"no database at {path}, and its directory {Path(path).parent} does not exist (create it first)")
    else:
        say(f"no database at {path} (the file does not exist; `faultlens migrate` creates one)")
    raise typer.Exit(1)


@app.command("create")
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
        raise usage(f"--tenant {tenant!r} is not a tenant name (1-64 characters of A-Z, a-z, 0-9, '.', '_', '-')")
    settings = settings_for(db)
    _existing_sqlite(settings.database_url, may_create=True)
    engine = engine_for(settings)
    run(engine)
    with engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=scope, name=name)
    typer.echo(json.dumps({"id": key.id, "tenant": key.tenant, "scopes": sorted(key.scopes), "key": secret}))


@app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List API keys (never their secrets)."""
    from faultlens.store import keys
    from faultlens.store.db import engine_for
    from faultlens.store.db import migrate as run
    from faultlens.timeutil import ms_to_rfc3339

    settings = settings_for(db)
    _existing_sqlite(settings.database_url)
    engine = engine_for(settings)
    run(engine)
    with engine.connect() as conn:
        for row in keys.list_keys(conn):
            # Times print as RFC 3339 (UTC), like the API's, not as the stored epoch milliseconds.
            shown = {k: ms_to_rfc3339(v) if k.endswith("_at") and isinstance(v, int) else v for k, v in row.items()}
            typer.echo(json.dumps(shown, ensure_ascii=False))


@app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id.")], db: DbOption = None) -> None:
    """Revoke an API key."""
    from faultlens.store import keys
    from faultlens.store.db import engine_for

    settings = settings_for(db)
    _existing_sqlite(settings.database_url)
    engine = engine_for(settings)
    with engine.begin() as conn:
        keys.revoke_key(conn, key_id=key_id)
    typer.echo(f"revoked {key_id}")


@app.command("open-mode")
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

    settings = settings_for(db)
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
