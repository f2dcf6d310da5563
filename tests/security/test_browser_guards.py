"""Browser guards: cross-site writes, DNS rebinding (the Host allow-list) and nosniff on every response."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.api.guard import HostAllowList, split_host
from faultlens.services import Services
from faultlens.settings import Settings
from faultlens.store import keys
from tests.conftest import make_services
from tests.helpers import event

EVENTS = "/api/v1/events"
EMBEDDER = "/codebase-embedder/api/v1/tasks/failed"


@pytest.fixture
def local(sqlite_url: str) -> Iterator[tuple[Services, TestClient]]:
    """A loopback server in open mode addressed as localhost:8000, the way a browser on the machine calls it."""
    services = make_services(sqlite_url, start_jobs=False, allowed_hosts="")
    try:
        with TestClient(create_app(services), base_url="http://localhost:8000") as client:
            yield services, client
    finally:
        services.engine.dispose()


def stored(client: TestClient) -> int:
    r = client.get("/api/v1/stats/summary")
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def one_body(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and body["request_id"], body
    assert body["error"]["code"] == code and body["error"]["message"], body
    assert isinstance(body["error"]["details"], dict)
    assert r.headers["x-request-id"] == body["request_id"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_simple_cross_site_bodies_are_refused_and_store_nothing(local: tuple[Services, TestClient]) -> None:
    _, client = local
    body = b'[{"id": "csrf", "source": "api", "status": "failure", "error_message": "forged"}]'
    for ctype in (
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        r = client.post(EVENTS, content=body, headers={"content-type": ctype})
        one_body(r, 415, "unsupported_media_type")
        assert "application/json" in r.json()["error"]["details"]["accepted"]
    r = client.post(EVENTS, content=body)  # a body with no Content-Type at all
    one_body(r, 415, "unsupported_media_type")
    r = client.post(
        "/api/v1/rules/preview", content=b'{"id": "x@1", "rules": []}', headers={"content-type": "text/plain"}
    )
    one_body(r, 415, "unsupported_media_type")
    assert stored(client) == 0


def test_write_media_types_that_are_accepted(local: tuple[Services, TestClient]) -> None:
    _, client = local
    for i, ctype in enumerate(
        ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-ndjson; charset=utf-8")
    ):
        line = orjson.dumps(event(id=f"n{i}")) + b"\n"
        r = client.post(EVENTS, content=line, headers={"content-type": ctype})
        assert r.status_code == 200 and r.json()["accepted"] == 1, (ctype, r.text)
    r = client.post(EVENTS, json=[event(id="j1")])
    assert r.json()["accepted"] == 1
    assert stored(client) == 5
    # A write without a body needs no Content-Type: it reaches the route, which judges the (empty) body.
    r = client.post(EVENTS)
    one_body(r, 400, "invalid_json")


def test_foreign_origin_writes_are_refused_and_store_nothing(local: tuple[Services, TestClient]) -> None:
    _, client = local
    for origin in (
        "https://evil.example",
        "http://localhost:9999",  # another local app on another port
        "http://localhost",  # port 80 is another origin than :8000
        "null",  # sandboxed frames and file: pages
    ):
        r = client.post(EVENTS, json=[event(id="x")], headers={"origin": origin})
        one_body(r, 403, "cross_origin_refused")
    r = client.delete(EVENTS, headers={"origin": "https://evil.example"})
    one_body(r, 403, "cross_origin_refused")
    assert stored(client) == 0


def test_same_origin_writes_and_foreign_origin_reads_pass(local: tuple[Services, TestClient]) -> None:
    _, client = local
    r = client.post(EVENTS, json=[event(id="same")], headers={"origin": "http://localhost:8000"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    # A read answers (without CORS headers the foreign page cannot see it); the Host check stops rebinding.
    r = client.get(EVENTS, headers={"origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert stored(client) == 1


def test_a_foreign_host_is_refused_everywhere(local: tuple[Services, TestClient]) -> None:
    _, client = local
    for method, path in (
        ("GET", EVENTS),
        ("GET", "/api/v1/stats/summary"),
        ("GET", "/"),
        ("GET", "/static/app.js"),
        ("GET", "/metrics"),
        ("GET", "/no/such/page"),
        ("POST", EVENTS),
    ):
        r = client.request(method, path, headers={"host": "evil.example"}, json=[event(id="rebind")])
        one_body(r, 400, "host_not_allowed")
        assert r.json()["error"]["details"]["host"] == "evil.example"
    for host in ("evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io", "[::1", "localhost:x", ""):
        r = client.get(EVENTS, headers={"host": host})
        assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed", host
    for host in ("localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:8000", "LOCALHOST."):
        assert client.get(EVENTS, headers={"host": host}).status_code == 200, host
    # Probes address a pod by its IP: liveness answers whatever the Host and shows no event data.
    assert client.get("/healthz", headers={"host": "10.1.2.3:8000"}).status_code == 200
    assert stored(client) == 0


def test_the_codebase_embedder_contract_keeps_its_envelope(local: tuple[Services, TestClient]) -> None:
    _, client = local
    r = client.get(EMBEDDER, headers={"host": "evil.example"})
    assert r.status_code == 400
    assert r.json() == {"Code": 400, "Message": r.json()["Message"], "Success": False, "Data": None}
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-request-id"]
    r = client.post(EMBEDDER, content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["Code"] == 415 and r.json()["Success"] is False


def test_allowed_hosts_setting() -> None:
    default = HostAllowList(Settings(allowed_hosts="", host="127.0.0.1"))
    assert [default.allows(h) for h in ("localhost", "127.0.0.1", "::1", "127.0.0.2")] == [True] * 4
    assert [default.allows(h) for h in ("testserver", "evil.example", "0.0.0.0", "10.0.0.5")] == [False] * 4
    bound = HostAllowList(Settings(allowed_hosts="", host="10.0.0.5"))
    assert bound.allows("10.0.0.5") and not bound.allows("10.0.0.6")
    wildcard_bind = HostAllowList(Settings(allowed_hosts="", host="0.0.0.0"))
    assert not wildcard_bind.allows("0.0.0.0") and not wildcard_bind.allows("evil.example")
    listed = HostAllowList(Settings(allowed_hosts=" faultlens.example ,*.corp.example,[fd00::1]", host="0.0.0.0"))
    assert listed.allows("faultlens.example") and listed.allows("a.corp.example") and listed.allows("fd00::1")
    assert not listed.allows("corp.example") and not listed.allows("evilcorp.example")
    assert HostAllowList(Settings(allowed_hosts="*")).allows("anything.example")
    assert split_host("[::1]:8000") == ("::1", 8000) and split_host("Example.COM.") == ("example.com", None)
    assert split_host("a:b:c") is None and split_host("host:99999999") is None


def test_nosniff_on_every_response(local: tuple[Services, TestClient]) -> None:
    services, client = local
    _, secret = _admin_key(services)
    keyed = {"Authorization": f"Bearer {secret}"}
    answers = {
        "json": client.get(EVENTS, headers=keyed),
        "401": client.get(EVENTS),
        "404": client.get("/no/such/page", headers=keyed),
        "405": client.put(EVENTS, json=[], headers=keyed),
        "400": client.get(EVENTS, params={"window": "5y"}, headers=keyed),
        "metrics": client.get("/metrics", headers=keyed),
        "static": client.get("/static/app.js"),
        "dashboard": client.get("/"),
        "health": client.get("/healthz"),
    }
    for name, r in answers.items():
        assert r.headers.get("x-content-type-options") == "nosniff", (name, r.status_code)
    assert [answers[n].status_code for n in ("json", "401", "404", "405", "400", "metrics")] == [
        200,
        401,
        404,
        405,
        400,
        200,
    ]


def test_nosniff_on_an_unexpected_500(sqlite_url: str) -> None:
    services = make_services(sqlite_url, start_jobs=False)
    app = create_app(services)

    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/explode", explode)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/explode")
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert r.headers["x-content-type-options"] == "nosniff"
    finally:
        services.engine.dispose()


def _admin_key(services: Services) -> tuple[str, str]:
    with services.engine.begin() as conn:
        key, secret = keys.create_key(conn, tenant="default", scopes=["admin"])
    return key.id, secret
