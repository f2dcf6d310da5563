"""CLI probe regressions: one-line errors, no created SQLite files, tenant names, BOMs, and serve's connection
handling (HEAD, the access log without query strings, the header deadline, the connection limit)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from faultlens.cli import app
from faultlens.errors import InvalidRequest
from tests.helpers import event
from tests.integration.test_cli import _faultlens, _free_port

runner = CliRunner()
SECRET = "Sup3rSecretPw"


def _one_line(proc: subprocess.CompletedProcess[str], status: int) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faultlens: "), proc.stderr[-2000:]
    assert SECRET not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["serve", "--port", "99999"], 2, "--port 99999 is not a TCP port"),
        (["serve", "--port", "-5"], 2, "is not a TCP port"),
        (["serve", "--host", "evil..com"], 2, "'evil..com' is not an IP address or host name"),
        (["serve", "--host", "nosuch.invalid"], 2, "'nosuch.invalid' does not resolve"),
        (["serve", "--db", f"bogus://u:{SECRET}@h/x"], 2, "bogus://u:***@h/x names a database"),
        (["migrate", "--db", f"postgresql+asyncpg://u:{SECRET}@h/x"], 2, "driver that is not installed"),
        (["keys", "list", "--db", f"mysql://u:{SECRET}@h/x"], 2, "mysql://u:***@h/x needs a database driver"),
        (["migrate", "--db", "not a url"], 2, "the database URL is not valid"),
        (["tasks", "list", "--redis-url", f"http://u:{SECRET}@x"], 2, "http://u:***@x is not a Redis URL"),
    ],
)
def test_expected_failures_are_one_line(tmp_path: Path, args: list[str], status: int, says: str) -> None:
    env = {"FAULTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}", "FAULTLENS_TASK_SYNC_INTERVAL_S": "0"}
    line = _one_line(_faultlens(*args, env=env, timeout=60), status)
    assert says in line, line


def test_a_file_system_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faultlens.connectors import retention

    blocker = tmp_path / "notadir"
    blocker.write_text("a file")

    def archive(*_args: object, **_kwargs: object) -> None:
        (blocker / "sub").mkdir(parents=True, exist_ok=True)  # what writing an archive file does first

    monkeypatch.setattr(retention, "archive_failed_tasks", archive)
    result = runner.invoke(
        app,
        ["tasks", "archive", "--db", f"sqlite:///{tmp_path / 'f.db'}", "--archive-dir", str(blocker / "sub")],
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"faultlens: cannot use {blocker / 'sub'} (Not a directory)"


def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    from faultlens.classify import engine

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"cannot talk to postgresql://svc:{SECRET}@db/x\nsecond line")

    monkeypatch.setattr(engine.Classifier, "classify", broken)
    monkeypatch.setenv("FAULTLENS_LOG_LEVEL", "INFO")
    result = runner.invoke(app, ["classify", "boom"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "faultlens: unexpected error: RuntimeError: cannot talk to postgresql://svc:***@db/x "
        "(run with FAULTLENS_LOG_LEVEL=DEBUG for details)"
    )
    monkeypatch.setenv("FAULTLENS_LOG_LEVEL", "DEBUG")
    result = runner.invoke(app, ["classify", "boom"])
    assert isinstance(result.exception, RuntimeError)  # the traceback is shown


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "revoke", "abc"],
        ["keys", "open-mode"],
        ["keys", "create", "--tenant", "t", "--scope", "read"],
    ],
)
def test_keys_commands_create_no_database_or_directory(tmp_path: Path, args: list[str]) -> None:
    target = tmp_path / "no" / "such" / "x.db"
    result = runner.invoke(app, [*args, "--db", f"sqlite:///{target}"])
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and f"faultlens: no database at {target}" in result.stderr
    assert not (tmp_path / "no").exists()


def test_keys_create_makes_a_database_in_an_existing_directory_only(tmp_path: Path) -> None:
    target = tmp_path / "fresh.db"
    result = runner.invoke(app, ["keys", "create", "--tenant", "t", "--scope", "read", "--db", f"sqlite:///{target}"])
    assert result.exit_code == 0, result.output
    assert target.exists()
    listed = runner.invoke(app, ["keys", "list", "--db", f"sqlite:///{target}"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["tenant"] == "t"
    missing = runner.invoke(app, ["keys", "list", "--db", f"sqlite:///{tmp_path / 'other.db'}"])
    assert missing.exit_code == 1 and not (tmp_path / "other.db").exists()


@pytest.mark.parametrize("tenant", ["a\nb", "", "x" * 65, "has space", "tab\there", "ünï", "a/b"])
def test_tenant_names_are_refused_outside_the_charset(tmp_path: Path, tenant: str) -> None:
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine, migrate

    target = tmp_path / "t.db"
    result = runner.invoke(
        app, ["keys", "create", "--tenant", tenant, "--scope", "read", "--db", f"sqlite:///{target}"]
    )
    assert result.exit_code == 2 and "is not a tenant name" in result.stderr, result.output
    assert not target.exists()
    engine = create_db_engine(f"sqlite:///{target}")
    migrate(engine)
    with pytest.raises(InvalidRequest) as caught, engine.begin() as conn:
        keys.create_key(conn, tenant=tenant, scopes=["read"])
    assert caught.value.code == "invalid_tenant"
    with engine.begin() as conn:
        for good in ("acme", "ops-team", "a.b_c-9", "x" * 64):
            assert keys.create_key(conn, tenant=good, scopes=["read"])[0].tenant == good
    engine.dispose()


def test_classify_refuses_an_http_status_outside_100_599() -> None:
    for bad in ("99999", "99", "600", "-1"):
        result = runner.invoke(app, ["classify", "boom", "--http-status", bad])
        assert result.exit_code == 2 and result.stdout == "", (bad, result.output)
        assert "is not an HTTP status (use 100-599)" in result.stderr
    assert runner.invoke(app, ["classify", "boom", "--http-status", "599"]).exit_code == 0


def test_import_ignores_a_leading_bom(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(event(id="bom1")) + b"\n" + orjson.dumps(event(id="bom2")) + b"\n")
    result = runner.invoke(app, ["import", str(path), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"accepted": 2, "duplicates": 0, "rejected": 0}


# --- a real server -------------------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}
    env.update(
        {
            "FAULTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "FAULTLENS_TASK_SYNC_INTERVAL_S": "0",
            "FAULTLENS_HEADER_TIMEOUT_S": "1",
            "FAULTLENS_MAX_CONNECTIONS": "3",
            "FAULTLENS_LOG_FORMAT": "text",  # the access log lines are read as text below
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "faultlens.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the server did not start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield port, proc
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _request(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_serve_head_access_log_header_deadline_and_connection_limit(
    server: tuple[int, subprocess.Popen[str]],
) -> None:
    port, proc = server
    status, got_headers, got = _request(port, "GET", "/healthz")
    status_head, headers, body = _request(port, "HEAD", "/healthz")
    assert (status, status_head, body) == (200, 200, b"")
    assert headers["content-length"] == got_headers["content-length"] == str(len(got))
    status, headers, _ = _request(port, "PUT", "/healthz")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert _request(port, "GET", "/api/v1/events?q=password%3DQuerySecret42")[0] == 200

    # A client that never finishes its headers is cut off at the header deadline (1 s here).
    with socket.create_connection(("127.0.0.1", port), timeout=15) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed by the server, with no answer
        assert time.monotonic() - started < 10

    # Connections past FAULTLENS_MAX_CONNECTIONS answer 503 instead of taking a worker.
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        assert _request(port, "GET", "/healthz")[0] == 503
    finally:
        for sock in idle:
            sock.close()

    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert "QuerySecret42" not in out + err
    access = [line for line in err.splitlines() if " faultlens.access: " in line]
    assert any(" GET /api/v1/events 200 " in line for line in access), err[-3000:]
    assert any(" HEAD /healthz 200 " in line for line in access), err[-3000:]
    assert "uvicorn.access" not in err and '"GET /' not in out + err  # uvicorn's own access log is off
