"""Query parameters over HTTP: unknown ones refused on every API route, one window vocabulary, a deprecated alias."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from fastapi import Query, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.api.params import DEPRECATION_HEADERS, any_query
from faultlens.services import Services
from faultlens.store.rollup_shapes import DAY_MS, HOUR_MS
from faultlens.timeutil import WINDOWS_MS, parse_rfc3339_ms
from tests.helpers import ago, event

WINDOW_DAYS_ROUTES = (
    "/api/v1/overview",
    "/api/v1/overview/export",
    "/api/v1/trends",
    "/api/v1/alerts",
    "/api/v1/failures",
)
OVERVIEW_FAMILY = {"/api/v1/overview", "/api/v1/alerts", "/api/v1/trends"}


def _problem(r: Any, name: str, code: str = "invalid_request") -> dict[str, Any]:
    assert r.status_code == 400, (r.request.url, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and body["error"]["code"] == code, body
    params = body["error"]["details"]["params"]
    assert [p["name"] for p in params] == [name] and params[0]["location"] == "query", body
    assert name in body["error"]["message"], body
    return dict(body["error"])


def _get_routes(client: TestClient) -> list[str]:
    spec = client.get("/openapi.json").json()
    paths = sorted(re.sub(r"\{[^}]+\}", "abc", p) for p, ops in spec["paths"].items() if "get" in ops)
    assert len(paths) > 20
    return [*paths, "/ui/sources"]


def test_every_api_route_refuses_an_unknown_parameter_by_name(client: TestClient) -> None:
    for path in _get_routes(client):
        r = client.get(path, params={"zz_unknown": "1"})
        if path.startswith("/codebase-embedder/"):
            body = r.json()  # that contract's own envelope
            assert r.status_code == 400 and body["Success"] is False and "zz_unknown" in body["Message"], body
            continue
        code = "parallel_ops_invalid_request" if path.startswith("/api/v1/parallel-ops/") else "invalid_request"
        err = _problem(r, "zz_unknown", code)
        assert isinstance(err["details"]["accepted"], list), err


def test_the_issue_examples_are_refused_not_ignored(client: TestClient) -> None:
    err = _problem(client.get("/api/v1/events", params={"soruce": "orders"}), "soruce")
    assert "did you mean 'source'" in err["details"]["params"][0]["message"]
    _problem(client.get("/api/v1/events", params={"http_status": "499"}), "http_status")
    err = _problem(client.get("/api/v1/stats/summary", params={"window_days": "7"}), "window_days")
    assert "window" in err["details"]["accepted"] and "window_days" not in err["details"]["accepted"]
    # Several unknown names are all reported, known ones are not.
    r = client.get("/api/v1/events", params={"source": "a", "foo": "1", "bar": "2"})
    assert r.status_code == 400 and [p["name"] for p in r.json()["error"]["details"]["params"]] == ["foo", "bar"]
    # The parallel-ops contract keeps window_days: window is not one of its parameters.
    _problem(
        client.get("/api/v1/parallel-ops/summary", params={"window": "7d"}), "window", "parallel_ops_invalid_request"
    )
    assert client.get("/api/v1/parallel-ops/summary", params={"window_days": "14"}).json()["window_days"] == 14


def test_pages_and_static_files_keep_their_own_query_strings(client: TestClient) -> None:
    r = client.get("/", params={"window": "7d", "scope": "all", "utm_source": "mail"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert client.get("/events/abc", params={"from": "alert"}).status_code == 200
    assert client.get("/static/app.js", params={"v": "1"}).status_code == 200


def test_a_new_route_is_covered_without_an_edit(services: Services) -> None:
    app = create_app(services)

    @app.api_route("/api/v1/zz-new", methods=["POST"])
    @any_query
    def refuse(request: Request) -> JSONResponse:
        return JSONResponse({"refused": request.method}, status_code=405, headers={"Allow": "GET"})

    @app.get("/api/v1/zz-new")
    def new_route(a: int = 0, tag: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        return {"a": a, "tag": tag}

    with TestClient(app) as client:
        assert client.get("/api/v1/zz-new", params={"a": "3"}).json() == {"a": 3, "tag": None}
        _problem(client.get("/api/v1/zz-new", params={"b": "3"}), "b")
        # A list parameter takes repeats; a single-valued one given twice is refused, not half read.
        assert client.get("/api/v1/zz-new?tag=x&tag=y").json() == {"a": 0, "tag": ["x", "y"]}
        err = _problem(client.get("/api/v1/zz-new?a=1&a=2"), "a")
        assert "more than once" in err["details"]["params"][0]["message"]
        # An endpoint marked any_query (a method shim) answers whatever the query string holds.
        assert client.post("/api/v1/zz-new?b=1").status_code == 405


def test_a_single_valued_parameter_given_twice_is_refused(client: TestClient) -> None:
    err = _problem(client.get("/api/v1/events?source=a&source=b"), "source")
    assert err["message"] == "query parameter(s) given more than once: source"
    _problem(
        client.get("/api/v1/parallel-ops/summary?window_days=7&window_days=14"),
        "window_days",
        "parallel_ops_invalid_request",
    )


def test_overview_window_follows_window_not_a_default(client: TestClient) -> None:
    client.post("/api/v1/events", json=[event(occurred_at=ago(hours=3)), event(occurred_at=ago(days=3))])
    day = client.get("/api/v1/overview", params={"window": "24h"})
    assert day.status_code == 200 and "deprecation" not in day.headers
    body = day.json()
    start, end = parse_rfc3339_ms(body["window"]["from"]), parse_rfc3339_ms(body["window"]["to"])
    assert body["window"]["label"] == "24h" and end - start == DAY_MS + 1 and body["totals"]["total"] == 1
    assert client.get("/api/v1/overview", params={"window": "7d"}).json()["totals"]["total"] == 2
    assert client.get("/api/v1/overview").json()["window"]["label"] == "7d"  # the overview's default is a week
    custom = client.get("/api/v1/overview", params={"since": ago(hours=4), "until": ago(hours=2)}).json()
    assert custom["window"]["label"] == "custom" and custom["totals"]["total"] == 1
    trends = client.get("/api/v1/trends", params={"window": "6h", "bucket": "1h"}).json()
    assert trends["window"]["label"] == "6h" and sum(b["total"] for b in trends["buckets"]) == 1
    alerts = client.get("/api/v1/alerts", params={"window": "1h"}).json()
    assert parse_rfc3339_ms(alerts["window"]["to"]) - parse_rfc3339_ms(alerts["window"]["from"]) == HOUR_MS + 1
    failures = client.get("/api/v1/failures", params={"window": "24h"}).json()
    assert failures["pagination"]["total"] == 1
    # A years-long since/until window gets no point per hour, only per week.
    old = {"since": "2016-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    _problem(client.get("/api/v1/trends", params={**old, "bucket": "1h"}), "bucket")
    weekly = client.get("/api/v1/trends", params={**old, "bucket": "7d"})
    week = 7 * DAY_MS
    first = parse_rfc3339_ms(old["since"]) // week
    last = (parse_rfc3339_ms(old["until"]) - 1) // week
    assert weekly.status_code == 200 and len(weekly.json()["buckets"]) == last - first + 1 == 522
    assert client.get("/api/v1/trends", params={"window": "90d", "bucket": "1h"}).status_code == 200


def test_every_window_label_is_accepted_everywhere(client: TestClient) -> None:
    routes = ["/api/v1/events", "/api/v1/stats/summary", "/api/v1/stats/errors", "/api/v1/fingerprints"]
    routes += [*WINDOW_DAYS_ROUTES, "/api/invocations", "/api/stats/failures/summary", "/ui/sources"]
    for label, span in WINDOWS_MS.items():
        for path in routes:
            params = {"window": label}
            if path == "/api/v1/trends":
                params["bucket"] = "1h"
            r = client.get(path, params=params)
            assert r.status_code == 200, (path, label, r.text[:300])
            window = r.json().get("window") if "json" in r.headers["content-type"] else None
            if isinstance(window, dict):
                assert window["label"] == label, (path, window)
                got = parse_rfc3339_ms(window["to"]) - parse_rfc3339_ms(window["from"])
                assert got == span + 1, (path, label, got)
        _problem(client.get("/api/v1/overview", params={"window": "2d"}), "window")
        _problem(client.get("/api/v1/stats/summary", params={"window": "7"}), "window")


def test_window_days_is_a_deprecated_alias_on_the_overview_family(client: TestClient) -> None:
    client.post("/api/v1/events", json=[event(occurred_at=ago(days=10))])
    for path in WINDOW_DAYS_ROUTES:
        r = client.get(path, params={"window_days": "14"})
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["deprecation"] == DEPRECATION_HEADERS["Deprecation"], (path, r.headers)
        assert r.headers["deprecation"].startswith("@") and int(r.headers["deprecation"][1:]) > 0
        fresh = client.get(path, params={"window": "14d"})
        assert fresh.status_code == 200 and "deprecation" not in fresh.headers, path
        if path in OVERVIEW_FAMILY:
            assert r.json()["window"]["days"] == 14
    assert client.get("/api/v1/overview", params={"window_days": 14}).json()["totals"]["total"] == 1
    assert client.get("/api/v1/overview", params={"window_days": 7}).json()["totals"]["total"] == 0
    for bad in ("5", "abc", "0"):
        _problem(client.get("/api/v1/overview", params={"window_days": bad}), "window_days")
    _problem(client.get("/api/v1/trends", params={"window_days": "7", "window": "7d"}), "window_days")
    _problem(client.get("/api/v1/alerts", params={"window_days": "7", "since": ago(hours=1)}), "window_days")
    # Routes that never took window_days do not start now: they name it as unknown.
    for path in ("/api/v1/events", "/api/v1/fingerprints", "/api/v1/stats/errors", "/api/invocations"):
        _problem(client.get(path, params={"window_days": "7"}), "window_days")


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    # HEAD is served wherever GET is (api/head.py), so Allow names it beside GET.
    cases = {
        ("DELETE", "/api/v1/events"): "GET, HEAD, POST",
        ("PUT", "/api/v1/events"): "GET, HEAD, POST",
        ("POST", "/api/v1/stats/summary"): "GET, HEAD",
        ("DELETE", "/api/v1/overview"): "GET, HEAD",
        ("POST", "/api/v1/parallel-ops/summary"): "GET, HEAD",
        ("POST", "/metrics"): "GET, HEAD",
        ("POST", "/healthz"): "GET, HEAD",
    }
    for (method, path), allow in cases.items():
        r = client.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.status_code, r.headers)
        body = r.json()
        assert body["error"]["code"] == "method_not_allowed"
        assert body["error"]["details"] == {"allowed_methods": allow.split(", ")}, body
    # Every path the schema lists: a 405 carries an Allow header naming exactly the methods the schema gives.
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "abc", path)
        methods = {m.upper() for m in ops if m in ("get", "post", "put", "patch", "delete")}
        absent = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in methods)
        r = client.request(absent, concrete)
        if path.startswith("/codebase-embedder/"):
            assert r.status_code == 405 and r.headers["allow"] == "GET", (path, r.headers)
            continue
        assert r.status_code == 405, (absent, path, r.status_code)
        assert set(r.headers["allow"].split(", ")) >= methods, (path, r.headers["allow"], methods)


@pytest.mark.parametrize(
    "query",
    [
        {"until": "0001-01-02T00:00:00Z"},
        {"since": "1969-12-31T23:30:00Z", "until": "1970-01-01T01:00:00Z", "bucket": "1h"},
        {"since": "0001-01-01T00:00:00Z"},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/trends", "/api/v1/overview", "/api/v1/events", "/api/v1/stats/summary"])
def test_windows_before_1970_are_a_400_not_a_500(api: TestClient, path: str, query: dict[str, str]) -> None:
    params = {k: v for k, v in query.items() if k != "bucket" or path.endswith("trends")}
    r = api.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_a_window_starting_at_the_epoch_is_answered(api: TestClient) -> None:
    r = api.get(
        "/api/v1/trends", params={"since": "1970-01-01T00:00:00Z", "until": "1970-01-03T00:00:00Z", "bucket": "1h"}
    )
    assert r.status_code == 200, r.text
