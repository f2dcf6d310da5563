"""Replay suites end to end against a real target served by uvicorn: outcomes judged on status class and latency
budget, failures classified with the tenant's rules, reports stored and listed per tenant (SQLite and PostgreSQL),
the allow-list, secret references (values never stored nor answered), bad suites, deadlines, and the rollback a
passing replay clears."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from faultlens.api.app import create_app
from faultlens.api.compat.release import REPLAY_PATH
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import replay_reports, rollbacks
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.live_server import LiveServer

REPLAYS = "/api/v1/releases/replays"
SECRET = "s3cr3t-replay-value-9f2c"  # what REPLAY_SECRET_TOKEN holds: must never reach a report or an answer
ENV_NAME = "REPLAY_SECRET_TOKEN"


async def _ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def _whoami(request: Request) -> Response:
    # 200 only when the referenced secret was sent; otherwise a 401 that echoes what it got (an echo must be masked).
    got = request.headers.get("authorization", "")
    if got == f"Bearer {SECRET}":
        return JSONResponse({"user": "replayer"})
    return PlainTextResponse(f"bad credentials: {got}", status_code=401)


async def _echo(request: Request) -> Response:
    return PlainTextResponse(f"refused, you sent {request.headers.get('authorization')}", status_code=403)


async def _boom(request: Request) -> Response:
    return PlainTextResponse("upstream db refused the connection", status_code=500)


async def _slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "0.3")))
    return JSONResponse({"slow": True})


async def _echo_body(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"type": request.headers.get("content-type"), "body": body.decode()}, status_code=201)


async def _redirect(request: Request) -> Response:
    return RedirectResponse("/ok", status_code=302)


def target_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/api/ok", _ok),
            Route("/api/whoami", _whoami),
            Route("/api/echo", _echo),
            Route("/api/boom", _boom),
            Route("/api/slow", _slow),
            Route("/api/items", _echo_body, methods=["POST"]),
            Route("/api/redirect", _redirect),
        ]
    )


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with LiveServer(target_app()) as server:
        yield server.url


def _services(db_url: str, target: str, **settings: Any) -> Services:
    settings.setdefault("replay_targets", f"{target}/api")
    return make_services(db_url, start_jobs=False, **settings)


def _key(services: Services, tenant: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _row, secret = keys.create_key(conn, tenant=tenant, scopes=["admin"])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NAME, SECRET)


def suite(*requests: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    return {"version": 1, "suite": "smoke", "suite_version": "7", "defaults": defaults, "requests": list(requests)}


MIXED = suite(
    {"name": "ok", "path": "/ok"},
    {"name": "whoami", "path": "/whoami", "headers": {"Authorization": {"env": ENV_NAME, "prefix": "Bearer "}}},
    {"name": "create", "method": "post", "path": "/items", "body": {"a": 1}, "expect_status": 201},
    {"name": "text", "method": "POST", "path": "/items", "body": "plain words", "expect_status": "2xx"},
    {"name": "boom", "path": "/boom"},
    {"name": "echo", "path": "/echo", "headers": {"Authorization": {"env": ENV_NAME}}, "expect_status": 200},
    {"name": "slow", "path": "/slow?s=0.3", "latency_budget_ms": 100},
    {"name": "redirect", "path": "/redirect"},
    {"name": "missing", "path": "/nothing-here", "expect_status": "4xx"},
)


def test_replay_judges_classifies_and_stores(db_url: str, target: str, env: None) -> None:
    services = _services(db_url, target)
    try:
        with TestClient(create_app(services)) as client:
            a, b = _key(services, "acme"), _key(services, "other")
            body = {"release": "v2", "environment": "staging", "target": f"{target}/api/", "suite": MIXED}
            r = client.post(REPLAYS, json=body, headers=a)
            assert r.status_code == 200, r.text
            report = r.json()
            assert SECRET not in r.text
            assert report["passed"] is False
            assert report["target"] == f"{target}/api"
            assert (report["suite"], report["suite_version"], report["total"]) == ("smoke", "7", 9)
            assert report["counts"]["passed"] == 5 and report["counts"]["failed"] == 4, report["failures"]
            assert report["counts"]["not_run"] == 0
            failures = {f["name"]: f for f in report["failures"]}
            assert set(failures) == {"boom", "echo", "slow", "redirect"}
            boom = failures["boom"]
            assert boom["status"] == 500 and boom["expected"] == "2xx"
            assert "upstream db refused the connection" in boom["reason"]
            assert boom["failure_class"] == "service_failure" and boom["is_actionable"] is True
            assert failures["slow"]["status"] == 200 and "latency budget of 100 ms" in failures["slow"]["reason"]
            assert failures["redirect"]["status"] == 302  # never followed
            assert failures["echo"]["status"] == 403 and "refused, you sent" in failures["echo"]["reason"]
            assert sum(report["counts"]["by_failure_class"].values()) == 4
            assert report["p95_ms"] is not None and report["p95_ms"] >= 100
            assert report["rule_version"] == services.classifier_for("acme").version
            results = {x["name"]: x for x in report["results"]}
            assert results["whoami"]["outcome"] == "passed"  # the referenced secret was sent
            assert results["create"]["status"] == 201 and results["missing"]["status"] == 404

            # Stored as answered; the stored document holds no secret; other tenants do not see it.
            again = client.get(f"{REPLAYS}/{report['id']}", headers=a)
            assert again.status_code == 200 and again.json() == report
            with services.engine.connect() as conn:
                stored = conn.execute(select(replay_reports).where(replay_reports.c.id == report["id"])).one()
            assert SECRET not in stored.report and stored.tenant == "acme" and stored.failed == 4
            listed = client.get(REPLAYS, params={"release": "v2"}, headers=a).json()["reports"]
            assert [x["id"] for x in listed] == [report["id"]] and listed[0]["failed"] == 4
            assert client.get(f"{REPLAYS}/{report['id']}", headers=b).status_code == 404
            assert client.get(REPLAYS, headers=b).json()["reports"] == []
            missing = client.get(f"{REPLAYS}/{uuid.uuid4()}", headers=a)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "replay_report_not_found"

            # The document-004 contract path: the same run, the same shape.
            contract = client.post(REPLAY_PATH, json=body, headers=a)
            assert contract.status_code == 200, contract.text
            assert set(contract.json()) == set(report) and contract.json()["counts"] == report["counts"]
            assert len(client.get(REPLAYS, headers=a).json()["reports"]) == 2
    finally:
        services.engine.dispose()


def test_allow_list(sqlite_url: str, target: str) -> None:
    ok = suite({"name": "ok", "path": "/ok"})
    services = _services(sqlite_url, target)
    with TestClient(create_app(services)) as client:
        # Another port, another path prefix (/apix is not under /api), another scheme: refused before any call.
        other_port = target.rsplit(":", 1)[0] + ":1"
        for refused in (
            f"{other_port}/api",
            f"{target}/apix",
            f"{target}/",
            target.replace("http:", "https:") + "/api",
        ):
            r = client.post(REPLAYS, json={"release": "v2", "target": refused, "suite": ok})
            assert r.status_code == 403, (refused, r.text)
            assert r.json()["error"]["code"] == "replay_target_not_allowed"
        for bad in (f"http://user:pw@{target[7:]}/api", f"{target}/api?x=1", "ftp://example.com/api", "not a url"):
            r = client.post(REPLAYS, json={"release": "v2", "target": bad, "suite": ok})
            assert r.status_code == 400, (bad, r.text)
            assert "pw" not in r.text or bad.count("pw") == 0
        assert (
            client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api/v1", "suite": ok}).status_code == 200
        )
    services.engine.dispose()
    off = _services(sqlite_url, target, replay_targets="")
    with TestClient(create_app(off)) as client:
        r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": ok})
        assert r.status_code == 403 and "FAULTLENS_REPLAY_TARGETS is empty" in r.json()["error"]["message"]
    off.engine.dispose()


def _refused(client: TestClient, target: str, the_suite: Any) -> dict[str, Any]:
    r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": the_suite})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_replay_suite"
    error: dict[str, Any] = r.json()["error"]
    return error


def test_bad_suites_and_secret_references(sqlite_url: str, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    services = _services(sqlite_url, target)
    with TestClient(create_app(services)) as client:
        # A secret written into the suite is refused, and the answer does not repeat it.
        for name in ("Authorization", "cookie", "X-Api-Key", "X-Session-Token", "X-Client-Secret"):
            error = _refused(client, target, suite({"name": "a", "path": "/ok", "headers": {name: SECRET}}))
            assert SECRET not in str(error) and "env" in error["message"]
        error = _refused(client, target, suite({"name": "a", "path": "/ok"}, headers={"Authorization": SECRET}))
        assert SECRET not in str(error)
        # A reference to a variable that is not set names it; one outside REPLAY_SECRET_* is refused.
        error = _refused(
            client, target, suite({"name": "a", "path": "/ok", "headers": {"Authorization": {"env": ENV_NAME}}})
        )
        assert ENV_NAME in error["message"] and error["details"]["variable"] == ENV_NAME
        _refused(
            client, target, suite({"name": "a", "path": "/ok", "headers": {"X-Db": {"env": "FAULTLENS_DATABASE_URL"}}})
        )
        # Malformed suites.
        _refused(client, target, {**suite({"name": "a", "path": "/ok"}), "version": 2})
        _refused(client, target, suite())
        _refused(client, target, suite(*({"name": f"r{i}", "path": "/ok"} for i in range(1001))))
        _refused(client, target, suite({"name": "a", "path": "/ok"}, {"name": "a", "path": "/ok"}))
        _refused(client, target, suite({"name": "a", "path": "/ok", "expect_status": "6xx"}))
        _refused(client, target, suite({"name": "a", "path": "/ok", "method": "BREW"}))
        _refused(client, target, suite({"name": "a", "path": "/ok", "surprise": 1}))
        for path in ("ok", "//evil.example/x", "/../admin", "/a/%2e%2e/b", "/a b", "/a#frag", "/a?api_token=x"):
            _refused(client, target, suite({"name": "a", "path": path}))
        _refused(client, target, "version: [1")
        # The suite as YAML text works as the parsed document does.
        text = "version: 1\nsuite: s\nsuite_version: 1\nrequests:\n  - {name: ok, path: /ok}\n"
        r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": text})
        assert r.status_code == 200 and r.json()["passed"] is True
        # A body field the API does not know is refused too.
        r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": text, "x": 1})
        assert r.status_code in (400, 422)
    services.engine.dispose()


def test_deadlines(sqlite_url: str, target: str) -> None:
    # Each request may take 0.2 s; the whole run 0.5 s, one request at a time: the first slow call times out, the
    # run's deadline passes during the next ones, and the rest are reported not run.
    services = _services(
        sqlite_url, target, replay_request_timeout_s=0.2, replay_run_timeout_s=0.5, replay_concurrency=1
    )
    slow = suite(*({"name": f"slow{i}", "path": "/slow?s=1"} for i in range(6)))
    with TestClient(create_app(services)) as client:
        started = time.monotonic()
        r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": slow})
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["passed"] is False
        assert report["failures"][0]["reason"].startswith("timed out after 200 ms")
        assert report["failures"][0]["status"] is None
        assert report["counts"]["not_run"] >= 3 and report["counts"]["failed"] >= 1
        assert report["counts"]["failed"] + report["counts"]["not_run"] == 6
        assert [x["outcome"] for x in report["results"]].count("not_run") == report["counts"]["not_run"]
        assert took < 3
    services.engine.dispose()


def test_passing_replay_clears_a_rollback(db_url: str, target: str) -> None:
    services = _services(db_url, target)
    decided = now_ms() - 60_000
    with services.engine.begin() as conn:
        conn.execute(
            rollbacks.insert().values(
                id=str(uuid.uuid4()),
                tenant="default",
                release="v2",
                environment="production",
                reason="actionable_failure_rate failed twice",
                drill=False,
                decided_at=decided,
                deadline_at=decided + 1_800_000,
                recovery_state="recovered",
                completed_at=decided + 60_000,
                created_by="test",
            )
        )
    try:
        with TestClient(create_app(services)) as client:
            failing = suite({"name": "boom", "path": "/boom"})
            r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": failing})
            assert r.status_code == 200 and r.json()["passed"] is False
            with services.engine.connect() as conn:
                row = conn.execute(select(rollbacks)).one()
            assert row.replay_passed is False and row.replay_report_id == r.json()["id"]
            passing = suite({"name": "ok", "path": "/ok"})
            r = client.post(REPLAYS, json={"release": "v2", "target": f"{target}/api", "suite": passing})
            assert r.status_code == 200 and r.json()["passed"] is True
            with services.engine.connect() as conn:
                row = conn.execute(select(rollbacks)).one()
            assert row.replay_passed is True and row.replay_report_id == r.json()["id"]
    finally:
        services.engine.dispose()


def test_example_suite_parses() -> None:
    from pathlib import Path

    import yaml

    from faultlens.releases import replay_suite

    path = Path(__file__).resolve().parents[2] / "examples" / "replay-suite.yaml"
    planned = replay_suite.plan(replay_suite.parse_suite(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert [p.name for p in planned][:2] == ["health", "list products"]
    assert planned[0].budget_ms == 200 and planned[1].budget_ms == 800 and planned[2].expect == 201
    headers = replay_suite.concrete_headers(planned[0], {"REPLAY_SECRET_STAGING_TOKEN": "t"})
    assert headers["Authorization"] == "Bearer t"
