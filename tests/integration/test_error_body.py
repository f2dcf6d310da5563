"""The one error body over many error paths: details is always an object, parameter problems one documented list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.errors import FaultlensError, InvalidRequest
from faultlens.store import keys
from tests.conftest import make_services
from tests.helpers import event

LOCATIONS = {"query", "path", "body", "header", "cookie", "request"}


def check_shape(r: Any) -> dict[str, Any]:
    """The documented shape; returns the error object."""
    assert 400 <= r.status_code < 600, (r.request.method, r.request.url, r.status_code)
    body = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and isinstance(body["request_id"], str), (
        body
    )
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, body
    assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict), (r.request.url, err)
    if "params" in err["details"]:
        params = err["details"]["params"]
        assert isinstance(params, list) and params, err
        for p in params:
            assert set(p) == {"name", "location", "message"}, err
            assert all(isinstance(v, str) and v for v in p.values()), err
            assert p["location"] in LOCATIONS, err
    return dict(err)


def _param(err: dict[str, Any]) -> tuple[str, str]:
    first = err["details"]["params"][0]
    return first["name"], first["location"]


@pytest.fixture
def small(db_url: str) -> Iterator[TestClient]:
    """A server with small limits, so the limit errors are cheap to reach; and one route that fails."""
    services = make_services(db_url, max_body_bytes=2_000, max_batch_events=2)
    app = create_app(services)

    @app.get("/api/v1/zz-broken")
    def broken() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    services.engine.dispose()


JSON = {"Content-Type": "application/json"}


def test_parameter_problems_name_the_parameter_and_where_it_was_sent(small: TestClient) -> None:
    get = small.get
    cases: list[tuple[Any, str, str, str]] = [
        (get("/api/v1/events", params={"limit": 5000}), "invalid_request", "limit", "query"),
        (get("/api/v1/events", params={"window": "3y"}), "invalid_request", "window", "query"),
        (get("/api/v1/events", params={"since": "not a time"}), "invalid_request", "since", "query"),
        (get("/api/v1/events", params={"until": "2026-13-01T00:00:00Z"}), "invalid_request", "until", "query"),
        (
            get("/api/v1/events", params={"window": "7d", "since": "2026-11-01T00:00:00Z"}),
            "invalid_request",
            "window",
            "query",
        ),
        (get("/api/v1/events", params={"cursor": "!!!"}), "invalid_request", "cursor", "query"),
        (get("/api/v1/events", params={"failure_class": "bogus"}), "invalid_request", "failure_class", "query"),
        (get("/api/v1/events", params={"soruce": "x"}), "invalid_request", "soruce", "query"),
        (get("/api/v1/events", params={"source": "a\x00b"}), "invalid_request", "source", "query"),
        (get("/api/v1/events/a%00b"), "invalid_request", "path", "path"),
        (get("/api/v1/stats/errors", params={"scope": "everything"}), "invalid_request", "scope", "query"),
        (get("/api/v1/overview", params={"window_days": 5}), "invalid_request", "window_days", "query"),
        (get("/api/v1/trends", params={"window": "24h", "bucket": "7d"}), "invalid_request", "bucket", "query"),
        (get("/api/v1/alerts", params={"level": "loud"}), "invalid_request", "level", "query"),
        (get("/api/v1/overview/export", params={"format": "xlsx"}), "invalid_request", "format", "query"),
        (get("/api/v1/failures", params={"page": 0}), "invalid_request", "page", "query"),
        (
            get("/api/v1/parallel-ops/summary", params={"window_days": 2}),
            "parallel_ops_invalid_request",
            "window_days",
            "query",
        ),
        (
            get("/api/v1/parallel-ops/trends", params={"bucket_days": 30}),
            "parallel_ops_invalid_request",
            "bucket_days",
            "query",
        ),
        (get("/api/v1/parallel-ops/alerts", params={"level": "x"}), "parallel_ops_invalid_request", "level", "query"),
        (
            get("/api/v1/parallel-ops/summary/export", params={"export_format": "x"}),
            "parallel_ops_invalid_request",
            "export_format",
            "query",
        ),
        (
            get("/api/v1/parallel-ops/doc-sync/failures", params={"page_size": 0}),
            "parallel_ops_invalid_request",
            "page_size",
            "query",
        ),
        (get("/api/v1/parallel-ops/summary", params={"x": 1}), "parallel_ops_invalid_request", "x", "query"),
        (get("/api/invocations", params={"limit": 0}), "invalid_request", "limit", "query"),
        (get("/api/stats/errors", params={"scope": "x"}), "invalid_request", "scope", "query"),
        # A body that is not JSON: the problem is the body, not a field named after the offset where parsing stopped.
        (
            small.post("/api/v1/releases/rollouts", content=b'{"release": ', headers=JSON),
            "invalid_request",
            "body",
            "body",
        ),
        (
            small.post(
                "/api/v1/releases/rollouts", json={"release": "v2", "baseline": "v1", "environment": "p", "ratio": 2}
            ),
            "invalid_request",
            "ratio",
            "body",
        ),
    ]
    for r, code, name, location in cases:
        err = check_shape(r)
        assert r.status_code == 400 and err["code"] == code, (r.request.url, err)
        assert _param(err) == (name, location), (r.request.url, err)


def test_other_errors_carry_named_keys_or_an_empty_object(small: TestClient) -> None:
    not_found = check_shape(small.get("/api/v1/no-such-route"))
    assert not_found["code"] == "not_found" and not_found["details"] == {}
    missing = check_shape(small.get("/api/v1/events/missing"))
    assert missing["code"] == "event_not_found" and missing["details"] == {"id": "missing"}
    job = check_shape(small.get("/api/v1/jobs/nope"))
    assert job["code"] == "job_not_found" and job["details"] == {"id": "nope"}
    wrong_method = small.delete("/api/v1/events")
    err = check_shape(wrong_method)
    # HEAD is served wherever GET is (api/head.py), so a 405 names it too.
    assert err["details"] == {"allowed_methods": ["GET", "HEAD", "POST"]}
    assert wrong_method.headers["allow"] == "GET, HEAD, POST"

    too_big = small.post(
        "/api/v1/events", content=b"[" + b" " * 3_000 + b"]", headers={"content-type": "application/json"}
    )
    err = check_shape(too_big)
    assert too_big.status_code == 413 and err["details"] == {"limit_bytes": 2_000}, err
    too_many = small.post("/api/v1/events", json=[event(), event(), event()])
    err = check_shape(too_many)
    assert too_many.status_code == 413 and err["details"] == {"limit_events": 2}, err
    not_json = small.post("/api/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    err = check_shape(not_json)
    assert not_json.status_code == 400 and err["code"] == "invalid_json" and err["details"] == {}

    broken = small.get("/api/v1/zz-broken")
    err = check_shape(broken)
    assert broken.status_code == 500 and err == {
        "code": "internal_error",
        "message": "an unexpected error occurred; see the server log",
        "details": {},
    }


def test_auth_errors_have_the_shape(db_url: str) -> None:
    services = make_services(db_url)
    with services.engine.begin() as conn:
        _key, secret = keys.create_key(conn, tenant="t1", scopes=["read"])
    try:
        with TestClient(create_app(services)) as client:
            anonymous = client.get("/api/v1/events")
            assert anonymous.status_code == 401 and check_shape(anonymous)["details"] == {}
            wrong = client.get("/api/v1/events", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and check_shape(wrong)["code"] == "unauthorized"
            reader = {"Authorization": f"Bearer {secret}"}
            forbidden = client.post("/api/v1/events", json=[event()], headers=reader)
            err = check_shape(forbidden)
            assert forbidden.status_code == 403 and err["details"] == {"required_scope": "ingest"}, err
            unknown = client.get("/api/v1/events", params={"tenant": "t2"}, headers=reader)
            assert _param(check_shape(unknown)) == ("tenant", "query")
    finally:
        services.engine.dispose()


def test_details_is_an_object_whatever_the_raise_site_passes() -> None:
    assert FaultlensError("x").details == {}
    assert InvalidRequest("x", details=None).details == {}
    assert InvalidRequest("x", details={"limit_bytes": 1}).details == {"limit_bytes": 1}


def test_body_validation_problems_name_the_field_path() -> None:
    from faultlens.api.errors import _validation_problems

    exc = RequestValidationError(
        [
            {"loc": ("body", "events", 0, "source"), "msg": "Field required", "type": "missing"},
            {"loc": ("query", "limit"), "msg": "Input should be less than 1000", "type": "less_than"},
            {"loc": (), "msg": "bad", "type": "x"},
        ]
    )
    assert _validation_problems(exc) == [
        {"name": "events.0.source", "location": "body", "message": "Field required"},
        {"name": "limit", "location": "query", "message": "Input should be less than 1000"},
        {"name": "request", "location": "request", "message": "bad"},
    ]
