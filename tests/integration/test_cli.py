"""The command line: classify, import, demo, keys, and serve's refusal to open an unauthenticated API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from faultlens.cli import app
from tests.conftest import make_services
from tests.helpers import ago, event

runner = CliRunner()


def test_classify_prints_json() -> None:
    result = runner.invoke(app, ["classify", "downstream_closed"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["failure_class"] == "client_abort" and out["is_actionable"] is False
    result = runner.invoke(app, ["classify", "", "--http-status", "503"])
    assert json.loads(result.output)["failure_class"] == "service_failure"
    result = runner.invoke(app, ["classify", "boom", "--error-code", "invalid_api_key", "--http-status", "401"])
    assert json.loads(result.output)["category"] == "authorization"


def test_import_jsonl_reports_and_keeps_valid_lines(tmp_path: Path, sqlite_url: str) -> None:
    lines = [orjson.dumps(event(id=f"i{i}", error_message="deadlock detected")) for i in range(5)]
    lines.insert(2, b"{broken json")
    lines.append(orjson.dumps(event(id="bad", status="nope")))
    lines.append(orjson.dumps(event(id="i0")))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(app, ["import", str(path), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"accepted": 5, "duplicates": 1, "rejected": 2}
    assert "line 3: invalid_json" in result.stderr and "line 7: invalid_status" in result.stderr


def test_demo_loads_a_realistic_mix(sqlite_url: str) -> None:
    result = runner.invoke(app, ["demo", "--db", sqlite_url, "--events", "3000", "--days", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["accepted"] == 3000
    svc = make_services(sqlite_url)
    from faultlens.store.events import EventFilter, count_raw

    with svc.engine.connect() as conn:
        rows = count_raw(conn, tenant="default", flt=EventFilter(0, 2**62), by=("source", "failure_class"))
    svc.engine.dispose()
    sources = {r["source"] for r in rows}
    classes = {r["failure_class"] for r in rows}
    assert len(sources) >= 5
    assert classes == {"none", "service_failure", "client_failure", "client_abort"}
    # Same seed, same ids: loading again only finds duplicates.
    again = runner.invoke(app, ["demo", "--db", sqlite_url, "--events", "3000", "--days", "2"])
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"accepted": 0, "duplicates": 3000}


def test_keys_create_list_revoke(sqlite_url: str) -> None:
    result = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "read", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["key"].startswith("flk_") and created["scopes"] == ["read"]
    listed = runner.invoke(app, ["keys", "list", "--db", sqlite_url]).stdout
    assert created["id"] in listed and created["key"] not in listed
    assert runner.invoke(app, ["keys", "revoke", created["id"], "--db", sqlite_url]).exit_code == 0
    bad = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "root", "--db", sqlite_url])
    assert bad.exit_code != 0


def test_serve_refuses_public_bind_without_keys(sqlite_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "faultlens.cli", "serve", "--host", "0.0.0.0", "--port", "0", "--db", sqlite_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "refusing to bind 0.0.0.0" in proc.stderr


def test_rollups_verify_finds_a_wrong_row_and_rebuild_repairs_it(db_url: str) -> None:
    from sqlalchemy import update

    from faultlens.store.tables import rollups

    services = make_services(db_url, start_jobs=False)
    batch = [
        event(
            id=f"r{i}", occurred_at=ago(hours=3), error_message="deadlock detected", attributes={"site_id": f"s{i % 3}"}
        )
        for i in range(40)
    ]
    batch += [
        event(id=f"ok{i}", occurred_at=ago(hours=3), status="success", attributes={"site_id": "s1"}) for i in range(20)
    ]
    assert services.pipeline.ingest(batch, tenant="default").accepted == 60
    result = runner.invoke(app, ["rollups", "verify", "--db", db_url, "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "site_id=s1" in result.output and "rollups match" in result.output
    with services.engine.begin() as conn:  # one wrong attribute row and one wrong per-source row
        conn.execute(update(rollups).where(rollups.c.shape.in_([1, 3])).values(count=rollups.c["count"] + 1))
    result = runner.invoke(app, ["rollups", "verify", "--db", db_url, "--days", "2"])
    assert result.exit_code == 1 and "differ from the raw events" in result.output, result.output
    result = runner.invoke(app, ["rollups", "rebuild", "--db", db_url])
    assert result.exit_code == 0 and "rebuilt from 60 events" in result.output, result.output
    result = runner.invoke(app, ["rollups", "verify", "--db", db_url, "--days", "2"])
    assert result.exit_code == 0, result.output
    services.engine.dispose()


def _faultlens(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real entry point, as a user would: what reaches the terminal is what is asserted."""
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "faultlens.cli", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_classify_refuses_an_unknown_status_in_one_line() -> None:
    result = runner.invoke(app, ["classify", "boom", "--status", "bogus"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'bogus' is not a status" in lines[0] and "dead_letter" in lines[0]
    ok = runner.invoke(app, ["classify", "boom", "--status", "retry"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["failure_class"] == "service_failure"


def test_import_skips_blank_lines_and_numbers_rejections_by_file_line(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        orjson.dumps(event(id="b1"))
        + b"\n\n   \n"
        + orjson.dumps(event(id="b2", status="nope"))
        + b"\n"
        + orjson.dumps(event(id="b3"))
        + b"\n\n"
    )
    result = runner.invoke(app, ["import", str(path), "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"accepted": 2, "duplicates": 0, "rejected": 1}
    assert result.stderr.strip().splitlines() == [line for line in result.stderr.strip().splitlines() if "line" in line]
    assert "line 4: invalid_status" in result.stderr and "empty" not in result.stderr


def test_keys_list_prints_rfc3339_times(sqlite_url: str) -> None:
    import time

    from faultlens.timeutil import parse_rfc3339_ms

    args = ["keys", "create", "--tenant", "t", "--scope", "read", "--db", sqlite_url]
    created = json.loads(runner.invoke(app, args).stdout)
    listed = runner.invoke(app, ["keys", "list", "--db", sqlite_url]).stdout.splitlines()
    row = next(r for r in map(json.loads, listed) if r["id"] == created["id"])
    assert isinstance(row["created_at"], str) and row["created_at"].endswith("Z"), row
    assert abs(parse_rfc3339_ms(row["created_at"]) - time.time() * 1000) < 600_000
    assert row.get("revoked_at") is None


def test_a_bad_rule_pack_is_reported_once(tmp_path: Path) -> None:
    pack = tmp_path / "bad.yaml"
    pack.write_text('id: x\nrules:\n  - id: a\n    match: {message: "("}\n')
    for args in (["rules", "check", str(pack)], ["classify", "boom", "--rules", str(pack)]):
        result = runner.invoke(app, args)
        assert result.exit_code in (1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stderr.count("Field required") == 6, result.stderr  # six missing fields, each named once
        assert result.stderr.count("must look like name@YYYY-MM-DD") == 1
        assert "Traceback" not in result.output


def test_a_missing_postgres_database_is_one_line_saying_how_to_create_it(postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(database="faultlens_no_such_db", password="hunter2")
    proc = _faultlens("keys", "list", "--db", url.render_as_string(hide_password=False))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'faultlens_no_such_db' does not exist" in lines[0] and "createdb" in lines[0]
    assert "hunter2" not in proc.stderr + proc.stdout


def test_serve_against_a_refused_database_prints_one_line(postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(port=_free_port(), password="hunter2").render_as_string(hide_password=False)
    proc = _faultlens("serve", "--port", "0", "--db", url)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"faultlens: cannot reach the database at {make_url(url).render_as_string()}: connection refused"
    ]
    assert "hunter2" not in proc.stderr + proc.stdout


def test_serve_against_a_black_holed_database_gives_up_within_the_connect_timeout() -> None:
    import socket
    import time

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        url = f"postgresql://faultlens:hunter2@127.0.0.1:{hole.getsockname()[1]}/faultlens"
        started = time.monotonic()
        proc = _faultlens("serve", "--port", "0", "--db", url, env={"FAULTLENS_DATABASE_CONNECT_TIMEOUT_S": "2"})
        elapsed = time.monotonic() - started
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "(no answer within 2 s): connection timed out" in lines[0], proc.stderr
    assert "faultlens:***@127.0.0.1" in lines[0] and "hunter2" not in proc.stderr
    assert elapsed < 30, f"gave up after {elapsed:.1f} s"


def test_every_command_shares_one_default_database_and_serve_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time
    import urllib.request

    from faultlens.settings import Settings

    # Without FAULTLENS_DATABASE_URL every command's default is the same file, and `make run` serves it.
    monkeypatch.delenv("FAULTLENS_DATABASE_URL", raising=False)
    assert Settings().database_url == "sqlite:///data/faultlens.db"
    make = subprocess.run(
        ["make", "-n", "run"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        env={k: v for k, v in os.environ.items() if k not in ("FAULTLENS_DATABASE_URL", "DB")},
    )
    serve_line = [line for line in make.stdout.splitlines() if " serve" in line]
    assert serve_line and serve_line[-1].split(" serve")[1].strip() == "", make.stdout
    assert "demo.db" not in make.stdout

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {"FAULTLENS_DATABASE_URL": url, "FAULTLENS_TASK_SYNC_INTERVAL_S": "0"}
    created = json.loads(_faultlens("keys", "create", "--tenant", "t", "--scope", "admin", env=env).stdout)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "faultlens.cli", "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}, **env},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the server did not start"
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/events", headers={"Authorization": f"Bearer {created['key']}"}
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200  # the key created without --db is the one the server knows
                break
            except OSError:
                time.sleep(0.1)
    finally:
        server.terminate()
        _out, stderr = server.communicate(timeout=30)
    # The database is named at start, through faultlens' own logging: its INFO lines reach the server's output
    # (JSON lines, as stderr is no terminal; tests/integration/test_logs.py).
    assert f'"level": "INFO", "logger": "faultlens.cli", "msg": "database {url}"' in stderr, stderr
    # The served process settles its interpreter once the app is built (process_tuning.py): the defaults apply.
    tuned = [json.loads(line)["msg"] for line in stderr.splitlines() if '"faultlens.process_tuning"' in line]
    assert len(tuned) == 1, stderr
    frozen = re.fullmatch(r"interpreter: switch interval 1 ms; (\d+) objects held at start frozen out of .*", tuned[0])
    assert frozen is not None and int(frozen.group(1)) > 10_000, tuned


def test_serve_logging_shows_faultlens_info_lines_at_the_configured_level(capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    from faultlens.cli.serve import configure_logging

    root = logging.getLogger()
    logger = logging.getLogger("faultlens")
    saved = (logger.level, logger.propagate, list(logger.handlers), root.level, list(root.handlers))
    try:
        configure_logging("INFO", "text")
        configure_logging("INFO", "text")  # a second call adds no second handler
        logging.getLogger("faultlens.connectors.retention").info("archived %d failed task(s) past retention", 3)
        logging.getLogger("faultlens.connectors.sync").debug("not at INFO")
        lines = capfd.readouterr().err.splitlines()
        expected = " INFO faultlens.connectors.retention: archived 3 failed task(s) past retention"
        assert len(lines) == 1 and lines[0].endswith(expected), lines
        configure_logging("warning")
        logging.getLogger("faultlens.jobs").info("quiet now")
        assert capfd.readouterr().err == ""
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]
        root.setLevel(saved[3])
        root.handlers[:] = saved[4]
