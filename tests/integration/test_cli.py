"""The command line: classify, import, demo, keys, and serve's refusal to open an unauthenticated API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
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
