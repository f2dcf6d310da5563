"""Canary analysis end to end on SQLite and PostgreSQL: seeded releases judged pass / fail / inconclusive through
the API, stored and listed per tenant, the Argo gate (blocked after a rollback), and `faultlens gate` exit codes
against a live server."""

from __future__ import annotations

import json
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.cli import app as cli
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import rollbacks
from faultlens.timeutil import ms_to_rfc3339, now_ms
from tests.conftest import make_services
from tests.live_server import LiveServer

ANALYZE = "/api/v1/releases/canary/analyze"
ARGO = "/api/v1/releases/canary/argo"
ANALYSES = "/api/v1/releases/canary/analyses"
ENV = "production"
runner = CliRunner()


def _seed(
    services: Services,
    release: str,
    n: int,
    *,
    actionable: int = 0,
    aborts: int = 0,
    client_errors: int = 0,
    slower: float = 1.0,
    environment: str = ENV,
    tenant: str = "default",
    now: int,
) -> None:
    """n outcomes of `release` spread over the 20 minutes before `now`: the first `actionable` answered 500, the
    next `aborts` 499, the next `client_errors` 404, the rest 200; every one with a duration."""
    rng = random.Random(f"{release}-{environment}-{n}")
    batch: list[dict[str, Any]] = []
    for i in range(n):
        status, code = ("success", 200)
        if i < actionable:
            status, code = ("failure", 500)
        elif i < actionable + aborts:
            status, code = ("failure", 499)
        elif i < actionable + aborts + client_errors:
            status, code = ("failure", 404)
        batch.append(
            {
                "id": f"{release}-{environment}-{i}",
                "source": "web",
                "status": status,
                "http_status": code,
                "release": release,
                "environment": environment,
                "duration_ms": round(slower * rng.lognormvariate(4.0, 0.3), 2),
                "occurred_at": ms_to_rfc3339(now - 60_000 - (i * 1_140_000) // max(n, 1)),
            }
        )
    for result in services.pipeline.ingest_iter(batch, tenant=tenant):
        assert not result.rejected, result.rejected


def _body(canary: str, now: int, **extra: Any) -> dict[str, Any]:
    return {"baseline": "v1", "canary": canary, "environment": ENV, "since": now - 30 * 60_000, "until": now, **extra}


@pytest.fixture
def seeded(quiet: Services) -> int:
    now = now_ms()
    _seed(quiet, "v1", 2000, actionable=10, aborts=2, client_errors=30, now=now)  # the baseline
    _seed(quiet, "v2", 1000, actionable=5, client_errors=15, now=now)  # as good
    _seed(quiet, "v3", 1000, actionable=60, aborts=1, slower=1.5, now=now)  # worse and slower
    _seed(quiet, "v4", 40, actionable=0, now=now)  # too little traffic
    # Neither another environment nor another tenant counts in v2's production arm.
    _seed(quiet, "v2", 300, actionable=200, environment="staging", now=now)
    _seed(quiet, "v2", 300, actionable=200, tenant="other", now=now)
    return now


def test_pass_fail_inconclusive_stored_and_listed(api: TestClient, seeded: int) -> None:
    now = seeded
    good = api.post(ANALYZE, json=_body("v2", now))
    assert good.status_code == 200, good.text
    g = good.json()
    assert g["verdict"] == "pass" and g["score"] == 1.0
    assert [m["name"] for m in g["metrics"]] == [
        "actionable_failure_rate",
        "latency_p95",
        "latency_p99",
        "client_abort_rate",
    ]
    assert g["arms"]["baseline"] == {
        "release": "v1",
        "total": 2000,
        "actionable": 10,
        "client_aborts": 2,
        "durations": 2000,
    }
    assert g["arms"]["canary"] == {
        "release": "v2",
        "total": 1000,
        "actionable": 5,
        "client_aborts": 0,
        "durations": 1000,
    }
    assert g["metrics"][0]["baseline"] == pytest.approx(0.005) and g["metrics"][0]["canary"] == pytest.approx(0.005)
    assert g["since"] == ms_to_rfc3339(now - 30 * 60_000) and g["until"] == ms_to_rfc3339(now)
    assert g["requested_by"] == "anonymous" and g["rollout_id"] is None and g["source"] is None
    # A third of the outcomes where RELEASE_CANARY_RATIO expects a tenth: said, not judged.
    assert g["expected"]["sample_ratio_mismatch"] is True and g["expected"]["ratio"] == 0.1
    assert any(r.startswith("sample ratio mismatch") for r in g["reasons"])

    bad = api.post(ANALYZE, json=_body("v3", now, source="web")).json()
    assert bad["verdict"] == "fail" and bad["source"] == "web"
    failing = {m["name"] for m in bad["metrics"] if m["verdict"] == "fail"}
    assert failing == {"actionable_failure_rate", "latency_p95", "latency_p99"}
    assert any("actionable failure rate is higher" in r for r in bad["reasons"])

    tiny = api.post(ANALYZE, json=_body("v4", now)).json()
    assert tiny["verdict"] == "inconclusive" and tiny["score"] == 0.0
    assert {m["verdict"] for m in tiny["metrics"]} == {"inconclusive"}
    assert any("too little data" in r for r in tiny["reasons"])

    none = api.post(ANALYZE, json=_body("v9", now)).json()
    assert none["verdict"] == "inconclusive" and none["reasons"][0].startswith("no data")

    # The window form (ending now) sees the same events.
    assert (
        api.post(ANALYZE, json={"baseline": "v1", "canary": "v2", "environment": ENV, "window": "30m"}).json()[
            "verdict"
        ]
        == "pass"
    )

    listed = api.get(ANALYSES).json()["items"]
    assert len(listed) == 5 and {a["canary"] for a in listed} == {"v2", "v3", "v4", "v9"}
    only = api.get(ANALYSES, params={"canary": "v3"}).json()["items"]
    assert [a["id"] for a in only] == [bad["id"]]
    assert api.get(f"{ANALYSES}/{bad['id']}").json() == bad
    missing = api.get(f"{ANALYSES}/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "canary_analysis_not_found"


def test_argo_gate_and_blocked_after_a_rollback(api: TestClient, quiet: Services, seeded: int) -> None:
    now = seeded
    passed = api.post(ARGO, json=_body("v2", now)).json()
    assert passed["passed"] is True and passed["failed"] is False and passed["inconclusive"] is False
    assert passed["verdict"] == "pass" and passed["blocked"] is False
    assert api.get(f"{ANALYSES}/{passed['analysis_id']}").json()["verdict"] == "pass"
    failed = api.post(ARGO, json=_body("v3", now)).json()
    assert (failed["passed"], failed["failed"], failed["verdict"]) == (False, True, "fail")
    unsure = api.post(ARGO, json=_body("v4", now)).json()
    assert (unsure["passed"], unsure["failed"], unsure["inconclusive"]) == (False, False, True)
    # v2 was rolled back in production and no replay has passed since: the gate fails it whatever its traffic.
    with quiet.engine.begin() as conn:
        conn.execute(
            rollbacks.insert().values(
                id=str(uuid.uuid4()),
                tenant="default",
                release="v2",
                baseline="v1",
                environment=ENV,
                reason="actionable_failure_rate failed twice",
                drill=False,
                decided_at=now - 5 * 60_000,
                deadline_at=now + 25 * 60_000,
                recovery_state="pending",
                created_by="test",
            )
        )
    blocked = api.post(ARGO, json=_body("v2", now)).json()
    assert blocked["verdict"] == "fail" and blocked["failed"] is True and blocked["blocked"] is True
    assert blocked["reasons"][0].startswith("blocked: rolled back")
    # The stored analysis is still the traffic's judgement.
    assert api.get(f"{ANALYSES}/{blocked['analysis_id']}").json()["verdict"] == "pass"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"window": "3d"}, "window"),
        ({"window": "25h"}, "window"),
        ({"window": "30m", "since": 0}, "window"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-03T00:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": -5}, "until"),
        ({"canary": "v1"}, "canary"),
        ({"canary": "v\x002"}, "canary"),
        ({"environment": ""}, "environment"),
        ({"since": 1.5}, "since"),
        ({"ratio": 0.5}, "ratio"),
    ],
)
def test_bad_bodies_answer_400(api: TestClient, change: dict[str, Any], param: str) -> None:
    body = {"baseline": "v1", "canary": "v2", "environment": ENV, **change}
    r = api.post(ANALYZE, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert param in json.dumps(error["details"]), error


def test_missing_fields_and_tenants(services: Services, client: TestClient) -> None:
    r = client.post(ANALYZE, json={"baseline": "v1", "canary": "v2"})
    assert r.status_code == 400 and "environment" in r.text
    with services.engine.begin() as conn:
        _, alpha = keys.create_key(conn, tenant="alpha", scopes=["admin"])
        _, beta = keys.create_key(conn, tenant="beta", scopes=["admin"])
        key = keys.create_key(conn, tenant="beta", scopes=["read"])
    a = {"Authorization": f"Bearer {alpha}"}
    b = {"Authorization": f"Bearer {beta}"}
    b_read = {"Authorization": f"Bearer {key[1]}"}
    made = client.post(ANALYZE, json={"baseline": "v1", "canary": "v2", "environment": ENV}, headers=a).json()
    assert made["requested_by"] != "anonymous"
    other = client.get(f"{ANALYSES}/{made['id']}", headers=b)
    assert other.status_code == 404 and other.json()["error"]["code"] == "canary_analysis_not_found"
    assert client.get(ANALYSES, headers=b).json()["items"] == []
    assert [x["id"] for x in client.get(ANALYSES, headers=a).json()["items"]] == [made["id"]]
    # Reading is a read key's; analysing (which stores) is an admin's.
    assert client.get(ANALYSES, headers=b_read).status_code == 200
    assert (
        client.post(ANALYZE, json={"baseline": "v1", "canary": "v2", "environment": ENV}, headers=b_read).status_code
        == 403
    )


# `faultlens gate` against a real server.


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    services = make_services(f"sqlite:///{tmp_path / 'gate.db'}", start_jobs=False)
    now = now_ms()
    _seed(services, "v1", 2000, actionable=10, aborts=2, now=now)
    _seed(services, "v2", 1000, actionable=5, now=now)
    _seed(services, "v3", 1000, actionable=60, slower=1.5, now=now)
    _seed(services, "v4", 40, now=now)
    with LiveServer(create_app(services)) as server:
        yield server, now
    services.engine.dispose()


def _gate(*args: str) -> Any:
    return runner.invoke(cli, ["gate", *args])


def test_gate_canary_exit_codes_against_a_live_server(live: tuple[LiveServer, int]) -> None:
    server, _now = live
    common = ["--baseline", "v1", "--environment", ENV, "--window", "30m", "--url", server.url]
    ok = _gate("canary", "--canary", "v2", *common)
    assert ok.exit_code == 0, ok.output
    assert "latency_p95" in ok.stdout and "verdict: pass" in ok.stdout
    failed = _gate("canary", "--canary", "v3", *common, "--json")
    assert failed.exit_code == 1, failed.output
    doc = json.loads(failed.stdout)
    assert doc["verdict"] == "fail" and doc["canary"] == "v3"
    unsure = _gate("canary", "--canary", "v4", *common)
    assert unsure.exit_code == 2, unsure.output
    assert "inconclusive" in unsure.stdout
    # No judgement: an error body, or no server at all.
    refused = _gate("canary", "--canary", "v1", *common)
    assert refused.exit_code == 2 and "invalid_request" in refused.stderr
    gone = _gate(
        "canary",
        "--canary",
        "v2",
        "--baseline",
        "v1",
        "--environment",
        ENV,
        "--url",
        f"http://127.0.0.1:{_closed_port()}",
    )
    assert gone.exit_code == 2 and "could not be reached" in gone.stderr


def _stub_server() -> Starlette:
    """The replay and readiness routes answering from the request (their real ones are tested elsewhere)."""

    async def replays(request: Request) -> JSONResponse:
        body = await request.json()
        passed = body["release"] == "good"
        failures = [] if passed else [{"name": "home", "method": "GET", "path": "/", "reason": "500, 2xx expected"}]
        counts = {"passed": 1 if passed else 0, "failed": 0 if passed else 1, "not_run": 0}
        return JSONResponse(
            {"id": "r1", "passed": passed, "total": 1, "counts": counts, "failures": failures, "echo": body}
        )

    async def readiness(request: Request) -> JSONResponse:
        body = await request.json()
        if body["release"] == "broken":
            return JSONResponse({"error": {"code": "internal", "message": "boom"}}, status_code=500)
        admitted = body["release"] == "good"
        failed = [] if admitted else ["quality", "replay"]
        checks = {"quality": {"passed": admitted, "reason": "actionable failure rate 4% > objective 1%"}}
        return JSONResponse({"id": "e1", "admitted": admitted, "failed_checks": failed, "checks": checks, "echo": body})

    return Starlette(
        routes=[
            Route("/api/v1/releases/replays", replays, methods=["POST"]),
            Route("/api/v1/releases/readiness", readiness, methods=["POST"]),
        ]
    )


def test_gate_replay_and_readiness_exit_codes(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: 1\nsuite: smoke\nrequests:\n  - {name: home, method: GET, path: /}\n")
    with LiveServer(_stub_server()) as server:
        url = ["--url", server.url]
        ok = _gate("replay", "--suite", str(suite), "--target", "http://t", "--release", "good", "--json", *url)
        assert ok.exit_code == 0, ok.output
        sent = json.loads(ok.stdout)["echo"]
        assert sent["suite"]["requests"][0]["path"] == "/" and sent["environment"] == "staging"
        bad = _gate("replay", "--suite", str(suite), "--target", "http://t", "--release", "bad", *url)
        assert bad.exit_code == 1 and "home" in bad.stdout
        nofile = _gate("replay", "--suite", str(tmp_path / "none.yaml"), "--target", "x", "--release", "good", *url)
        assert nofile.exit_code == 2
        admitted = _gate("readiness", "--release", "good", "--environment", "staging", *url)
        assert admitted.exit_code == 0 and "admitted" in admitted.stdout
        refused = _gate("readiness", "--release", "bad", *url)
        assert refused.exit_code == 1 and "quality, replay" in refused.stdout
        broken = _gate("readiness", "--release", "broken", *url)
        assert broken.exit_code == 2 and "internal: boom" in broken.stderr
