"""Anonymous open mode: closed for good once a database has had a key, loopback only, and revocation at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.cli import app as cli
from faultlens.errors import Conflict
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import events
from tests.conftest import make_services
from tests.helpers import event

EVENTS = "/api/v1/events"


@contextmanager
def served(url: str, **settings: object) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(url, start_jobs=False, **settings)
    try:
        with TestClient(create_app(services)) as client:
            yield services, client
    finally:
        services.engine.dispose()


@contextmanager
def other_process(url: str) -> Iterator[Services]:
    """Services on an engine of their own: what the CLI or another replica sees of the same database."""
    services = make_services(url, start_jobs=False)
    try:
        yield services
    finally:
        services.engine.dispose()


def create(services: Services, *scopes: str, tenant: str = "acme") -> tuple[str, dict[str, str]]:
    with services.engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return key.id, {"Authorization": f"Bearer {secret}"}


def revoke(services: Services, key_id: str) -> None:
    with services.engine.begin() as conn:
        keys.revoke_key(conn, key_id=key_id)


def stored(services: Services) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def refused(r: httpx.Response, reason: str | None = None) -> bool:
    """A 401 in the one error body (with the refusal's reason when one is named)."""
    body = r.json()
    ok = r.status_code == 401 and body["error"]["code"] == "unauthorized" and body["request_id"]
    return bool(ok and (reason is None or body["error"]["details"].get("reason") == reason))


def test_revoking_the_last_key_keeps_the_api_closed(db_url: str) -> None:
    # A TTL of 0 looks at the database on every anonymous request: what is asserted is the state, not a cache.
    with served(db_url, anonymous_check_ttl_s=0) as (services, client):
        assert client.get(EVENTS).status_code == 200, "a database that never had a key serves loopback anonymously"
        key_id, headers = create(services, "admin")
        assert refused(client.get(EVENTS))
        assert client.get(EVENTS, headers=headers).status_code == 200

        with other_process(db_url) as cli_side:
            revoke(cli_side, key_id)
        assert refused(client.get(EVENTS, headers=headers)), "a revoked key is refused at once"
        assert refused(client.get(EVENTS)), "revoking the last key must not reopen the API"
        r = client.post(EVENTS, json=[event(id="after-revoke")])
        assert refused(r)
        r = client.post(EVENTS, json=[event(id="revoked-key")], headers=headers)
        assert refused(r)
    assert stored(services) == 0


def test_a_server_started_after_the_last_revocation_stays_closed(db_url: str) -> None:
    with other_process(db_url) as cli_side:
        key_id, headers = create(cli_side, "admin")
        revoke(cli_side, key_id)
    # Default TTL: nothing cached yet, so the first look decides.
    with served(db_url) as (_, client):
        assert refused(client.get(EVENTS))
        assert refused(client.get(EVENTS, headers=headers))
        assert refused(client.get("/api/v1/stats/summary"))


def test_a_key_created_by_another_process_closes_open_mode_within_the_ttl(db_url: str) -> None:
    ttl = 0.3
    with served(db_url, anonymous_check_ttl_s=ttl) as (_, client):
        assert client.get(EVENTS).status_code == 200
        with other_process(db_url) as cli_side:
            _, headers = create(cli_side, "read")
        created = time.monotonic()
        # The key itself works at once: presented keys are never answered from the cache.
        assert client.get(EVENTS, headers=headers).status_code == 200
        deadline = created + ttl + 5
        while client.get(EVENTS).status_code == 200:
            assert time.monotonic() < deadline, "anonymous access stayed open after a key was created"
            time.sleep(0.02)  # polling a deadline, not synchronising
        closed_after = time.monotonic() - created
        assert closed_after <= ttl + 1.0, closed_after
        assert refused(client.get(EVENTS))


def test_a_wrong_key_is_refused_even_in_open_mode(sqlite_url: str) -> None:
    with served(sqlite_url) as (_, client):
        assert client.get(EVENTS).status_code == 200
        assert refused(client.get(EVENTS, headers={"X-API-Key": "flk_nothing_here"}))
        assert refused(client.get(EVENTS, headers={"Authorization": "Bearer flk_nothing_here"}))


def test_operator_reopens_anonymous_access_explicitly(db_url: str) -> None:
    with served(db_url, anonymous_check_ttl_s=0) as (services, client):
        key_id, _ = create(services, "admin")
        with services.engine.begin() as conn, pytest.raises(Conflict):
            keys.set_open_mode(conn, enabled=True)  # not while an active key exists
        revoke(services, key_id)
        assert refused(client.get(EVENTS))
        with services.engine.begin() as conn:
            keys.set_open_mode(conn, enabled=True)
        assert client.get(EVENTS).status_code == 200
        # A new key closes it again; the explicit opening does not outlive it.
        new_id, _ = create(services, "read")
        assert refused(client.get(EVENTS))
        revoke(services, new_id)
        assert refused(client.get(EVENTS))
        with services.engine.begin() as conn:
            status = keys.open_mode_status(conn)
        assert status == {"anonymous_allowed": False, "active_keys": 0, "open_mode_enabled": False}


def test_cli_open_mode_command(sqlite_url: str) -> None:
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--scope", "read", "--db", sqlite_url])
    key_id = json.loads(created.stdout)["id"]
    refused_enable = runner.invoke(cli, ["keys", "open-mode", "--enable", "--db", sqlite_url])
    assert refused_enable.exit_code == 2 and "revoke" in refused_enable.output
    assert runner.invoke(cli, ["keys", "revoke", key_id, "--db", sqlite_url]).exit_code == 0
    shown = runner.invoke(cli, ["keys", "open-mode", "--db", sqlite_url])
    assert json.loads(shown.stdout) == {"anonymous_allowed": False, "active_keys": 0, "open_mode_enabled": False}
    enabled = runner.invoke(cli, ["keys", "open-mode", "--enable", "--db", sqlite_url])
    assert enabled.exit_code == 0, enabled.output
    assert json.loads(enabled.stdout)["anonymous_allowed"] is True
    with served(sqlite_url) as (_, client):
        assert client.get(EVENTS).status_code == 200
    disabled = runner.invoke(cli, ["keys", "open-mode", "--disable", "--db", sqlite_url])
    assert json.loads(disabled.stdout)["anonymous_allowed"] is False
    with served(sqlite_url) as (_, client):
        assert refused(client.get(EVENTS))


def test_non_loopback_bind_refuses_anonymous_callers_at_request_time(db_url: str) -> None:
    with served(db_url, host="0.0.0.0") as (services, client):
        assert refused(client.get(EVENTS), "non_loopback_bind")
        assert refused(client.post(EVENTS, json=[event(id="x")]), "non_loopback_bind")
        _, headers = create(services, "admin")
        assert client.get(EVENTS, headers=headers).status_code == 200
    assert stored(services) == 0


def test_open_mode_serves_loopback_clients_only(sqlite_url: str) -> None:
    services = make_services(sqlite_url, start_jobs=False)
    app = create_app(services)
    try:
        with TestClient(app, client=("203.0.113.7", 40000)) as remote:
            assert refused(remote.get(EVENTS), "non_loopback_client")
        for address in ("127.0.0.1", "::1", "127.8.0.1"):
            with TestClient(app, client=(address, 40000)) as local:
                assert local.get(EVENTS).status_code == 200, address
                # A reverse proxy on the same machine connects from loopback for a remote caller.
                for header in ("Forwarded", "X-Forwarded-For", "X-Real-IP"):
                    r = local.get(
                        EVENTS, headers={header: "for=198.51.100.4" if header == "Forwarded" else "198.51.100.4"}
                    )
                    assert refused(r, "proxied_request"), header
    finally:
        services.engine.dispose()


def test_serve_refuses_a_public_bind_while_anonymous_access_is_open(sqlite_url: str) -> None:
    runner = CliRunner()
    created = json.loads(
        runner.invoke(cli, ["keys", "create", "--tenant", "a", "--scope", "read", "--db", sqlite_url]).stdout
    )
    assert runner.invoke(cli, ["keys", "revoke", created["id"], "--db", sqlite_url]).exit_code == 0
    assert runner.invoke(cli, ["keys", "open-mode", "--enable", "--db", sqlite_url]).exit_code == 0
    # Refused before uvicorn runs; were it not, the server would start and the timeout would fail the test.
    proc = subprocess.run(
        [sys.executable, "-m", "faultlens.cli", "serve", "--host", "0.0.0.0", "--port", "0", "--db", sqlite_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "refusing to bind 0.0.0.0" in proc.stderr, proc.stderr
