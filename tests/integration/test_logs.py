"""faultlens serve's own log lines on stderr, from a real server process: JSON lines with the context keys (request,
tenant, error code, job), or text when FAULTLENS_LOG_FORMAT=text."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultlens import logs
from faultlens.api.deps import Reader
from faultlens.logs import KEYS
from tests.helpers import event

_CLI = [sys.executable, "-m", "faultlens.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}
    env.update({"FAULTLENS_DATABASE_URL": db_url, "FAULTLENS_TASK_SYNC_INTERVAL_S": "0", **extra})
    return env


class Server:
    def __init__(self, db_url: str, **env: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [*_CLI, "serve", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(db_url, **env),
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)

    def request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=all_headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _out, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'logs.db'}"


@pytest.fixture
def api_key(db_url: str) -> str:
    created = subprocess.run(
        [*_CLI, "keys", "create", "--tenant", "acme", "--scope", "admin", "--db", db_url],
        capture_output=True,
        text=True,
        env=_env(db_url),
        timeout=60,
        check=True,
    )
    key: str = json.loads(created.stdout)["key"]
    return key


@pytest.fixture
def server(db_url: str, api_key: str) -> Iterator[Server]:
    srv = Server(db_url)
    try:
        yield srv
    finally:
        srv.stop()


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    out = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object, uvicorn's too
        assert isinstance(record, dict), line
        out.append(record)
    return out


def _access(records: list[dict[str, Any]], method: str, path: str, status: int) -> dict[str, Any]:
    found = [
        r
        for r in records
        if r["logger"] == "faultlens.access" and (r["method"], r["path"], r["status"]) == (method, path, status)
    ]
    assert len(found) == 1, records
    return found[0]


def test_every_line_is_json_with_the_context_keys(server: Server, api_key: str) -> None:
    auth = {"X-API-Key": api_key}
    status, _ = server.request(
        "POST", "/api/v1/events", body=[event(id="ev-logs-1")], headers={**auth, "X-Request-ID": "req-logs-42"}
    )
    assert status == 200
    assert server.request("GET", "/api/v1/events/no-such-event", headers=auth)[0] == 404
    assert server.request("POST", "/api/v1/events", body=b"{not json", headers=auth)[0] == 400
    assert server.request("GET", "/api/v1/events", headers={"X-API-Key": "flk_wrong"})[0] == 401
    assert server.request("GET", "/healthz")[0] == 200
    records = _json_lines(server.stop())

    for record in records:
        assert list(record)[: len(KEYS)] == list(KEYS), record
        assert record["ts"].endswith("Z") and record["ts"][10] == "T", record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
        assert "message" not in record and "color_message" not in record, record
    assert any(r["logger"].startswith("uvicorn") for r in records), records  # uvicorn's lines come through too
    assert any(r["logger"] == "faultlens.cli" and r["msg"].startswith("database ") for r in records), records

    ingested = _access(records, "POST", "/api/v1/events", 200)
    assert (ingested["request_id"], ingested["tenant_id"], ingested["error_code"]) == ("req-logs-42", "acme", None)
    assert isinstance(ingested["duration_ms"], float) and ingested["duration_ms"] >= 0

    missing = _access(records, "GET", "/api/v1/events/no-such-event", 404)
    assert (missing["tenant_id"], missing["error_code"]) == ("acme", "event_not_found")
    assert len(missing["request_id"]) == 32  # the id the server made up, as in the response

    bad_body = _access(records, "POST", "/api/v1/events", 400)
    assert (bad_body["tenant_id"], bad_body["error_code"]) == ("acme", "invalid_json")
    refused = _access(records, "GET", "/api/v1/events", 401)
    assert (refused["tenant_id"], refused["error_code"]) == (None, "unauthorized")
    health = _access(records, "GET", "/healthz", 200)
    assert (health["tenant_id"], health["error_code"]) == (None, None)
    assert "flk_" not in json.dumps(records)


def test_text_format_on_request(db_url: str, api_key: str) -> None:
    srv = Server(db_url, FAULTLENS_LOG_FORMAT="text")
    try:
        assert (
            srv.request("GET", "/api/v1/events/nope", headers={"X-API-Key": api_key, "X-Request-ID": "r-7"})[0] == 404
        )
    finally:
        err = srv.stop()
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and not any(line.startswith("{") for line in lines), lines
    access = [line for line in lines if " INFO faultlens.access: " in line]
    assert len(access) == 1, lines
    assert " GET /api/v1/events/nope 404 " in access[0]
    assert access[0].count("request_id=r-7") == 1, access[0]
    assert access[0].endswith(" tenant_id=acme error_code=event_not_found"), access[0]


def test_a_background_job_logs_with_its_job_id(server: Server, api_key: str, db_url: str) -> None:
    auth = {"X-API-Key": api_key}
    assert (
        server.request("POST", "/api/v1/events", body=[event(id=f"ev-job-{i}") for i in range(5)], headers=auth)[0]
        == 200
    )
    queued = subprocess.run(
        [*_CLI, "rollups", "rebuild", "--no-wait", "--db", db_url],
        capture_output=True,
        text=True,
        env=_env(db_url),
        timeout=60,
        check=True,
    )
    job_id = queued.stdout.split()[2]
    deadline = time.monotonic() + 60
    while True:
        status, job = server.request("GET", f"/api/v1/jobs/{job_id}", headers=auth)
        assert status == 200, job
        if job["state"] == "done":
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    records = _json_lines(server.stop())
    jobs = [r for r in records if r["logger"] == "faultlens.jobs" and job_id in r["msg"]]
    assert jobs and all(r["job_id"] == job_id for r in jobs), records
    assert all(r["request_id"] is None for r in jobs), jobs


def test_the_tenant_reaches_a_sync_endpoint_s_log_lines(sqlite_url: str) -> None:
    """FastAPI runs sync endpoints and dependencies in worker threads: the tenant bound once the caller is known
    must reach the endpoint's own lines, not only the access log."""
    from fastapi.testclient import TestClient

    from faultlens.api.app import create_app
    from tests.conftest import make_services

    services = make_services(sqlite_url, start_jobs=False)
    app = create_app(services)
    logger = logging.getLogger("faultlens.test_endpoint")

    @app.get("/test-only/log")
    def log_something(principal: Reader) -> dict[str, str]:
        logger.warning("inside the endpoint")
        return {"tenant": principal.tenant}

    out = io.StringIO()
    logger.addHandler(logs.make_handler("json", stream=out))
    try:
        with TestClient(app) as client:
            answer = client.get("/test-only/log", headers={"X-Request-ID": "r-sync"})
    finally:
        logger.handlers.clear()
        services.engine.dispose()
    assert answer.json() == {"tenant": services.settings.default_tenant}
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert (line["msg"], line["tenant_id"]) == ("inside the endpoint", services.settings.default_tenant)
