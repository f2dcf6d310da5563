"""Query endpoints over HTTP on SQLite and PostgreSQL: filters, pagination, detail, stats, error body."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import ago, event


def _load(client: TestClient, events: list[dict[str, object]]) -> None:
    r = client.post("/api/v1/events", json=events)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def test_filters_and_newest_first(client: TestClient) -> None:
    _load(
        client,
        [
            event(id="old", occurred_at=ago(hours=3), error_message="failed_contact_upstream"),
            event(id="new", occurred_at=ago(minutes=1), error_message="downstream_closed"),
            event(id="other", source="billing-api", occurred_at=ago(minutes=30), error_message="deadlock detected"),
            event(id="ok", status="success", occurred_at=ago(minutes=2)),
            event(id="ancient", occurred_at=ago(days=3), error_message="downstream_closed"),
        ],
    )
    ids = [i["id"] for i in client.get("/api/v1/events").json()["items"]]
    assert ids == ["new", "ok", "other", "old"]
    assert [i["id"] for i in client.get("/api/v1/events", params={"window": "7d"}).json()["items"]][-1] == "ancient"
    get = client.get
    assert [i["id"] for i in get("/api/v1/events", params={"source": "billing-api"}).json()["items"]] == ["other"]
    assert [i["id"] for i in get("/api/v1/events", params={"failure_class": "client_abort"}).json()["items"]] == ["new"]
    assert [i["id"] for i in get("/api/v1/events", params={"is_actionable": "true"}).json()["items"]] == [
        "other",
        "old",
    ]
    assert [i["id"] for i in get("/api/v1/events", params={"q": "DEADLOCK"}).json()["items"]] == ["other"]
    assert [i["id"] for i in get("/api/v1/events", params={"q": "%"}).json()["items"]] == []
    assert [i["id"] for i in get("/api/v1/events", params={"status": "success"}).json()["items"]] == ["ok"]
    since = get("/api/v1/events", params={"since": ago(hours=4), "until": ago(minutes=20)}).json()["items"]
    assert [i["id"] for i in since] == ["other", "old"]


def test_cursor_pagination_visits_every_event_once(client: TestClient) -> None:
    same_time = ago(minutes=10)
    _load(client, [event(id=f"e{i:03d}", occurred_at=same_time if i % 2 else ago(minutes=i)) for i in range(57)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/events", params=params).json()
        seen += [i["id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 6 and len(seen) == 57 and len(set(seen)) == 57


def test_event_detail_with_related_and_404(client: TestClient) -> None:
    _load(
        client,
        [
            event(id="root", trace_id="t-1", error_message="upstream_stream_error"),
            event(id="child", trace_id="t-1", source="billing-api", status="success"),
            event(id="sibling", correlation_id="c-9", trace_id="t-2"),
            event(id="unrelated", trace_id="t-3"),
        ],
    )
    ev = client.get("/api/v1/events/root").json()
    assert ev["failure_kind"] == "upstream_stream_error" and ev["failure_class"] == "service_failure"
    assert ev["is_actionable"] is True and ev["rule_name"] and ev["rule_version"]
    assert [r["id"] for r in ev["related"]] == ["child"]
    r = client.get("/api/v1/events/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "event_not_found" and r.json()["request_id"]


def test_stats_summary_and_errors_by_scope(client: TestClient) -> None:
    _load(
        client,
        [
            event(error_message="failed_contact_upstream"),
            event(error_message="failed_contact_upstream"),
            event(error_message="request_body_read_timeout"),
            event(error_message="downstream_closed"),
            event(error_message="Invalid API key", http_status=401),
            event(status="success"),
            event(status="success"),
            event(status="success"),
        ],
    )
    s = client.get("/api/v1/stats/summary").json()
    assert s["total"] == 8 and s["success_count"] == 3 and s["failure_count"] == 5
    assert (s["service_failure_count"], s["client_failure_count"], s["client_abort_count"]) == (3, 1, 1)
    assert s["actionable_failure_count"] == 3 and s["actionable_failure_rate"] == 3 / 8
    service = client.get("/api/v1/stats/errors").json()
    assert service["scope"] == "service" and service["window"] == "24h" and service["total"] == 3
    assert service["items"] == [
        {"failure_kind": "failed_contact_upstream", "count": 2},
        {"failure_kind": "request_body_read_timeout", "count": 1},
    ]
    kinds = {i["failure_kind"] for i in client.get("/api/v1/stats/errors", params={"scope": "all"}).json()["items"]}
    assert "downstream_closed" in kinds and len(kinds) == 4
    abort = client.get("/api/v1/stats/errors", params={"scope": "abort"}).json()
    assert abort["items"] == [{"failure_kind": "downstream_closed", "count": 1}]


def test_empty_window_rate_is_zero(client: TestClient) -> None:
    s = client.get("/api/v1/stats/summary", params={"window": "1h"}).json()
    assert s["total"] == 0 and s["actionable_failure_rate"] == 0


def test_invocations_contract(client: TestClient) -> None:
    _load(client, [event(id="x1", error_message="downstream_closed"), event(id="x2", status="success")])
    before = client.get("/api/stats/failures/summary").json()
    items = client.get("/api/invocations").json()["items"]
    by_id = {i["id"]: i for i in items}
    assert by_id["x1"]["failureKind"] == "downstream_closed" and by_id["x1"]["failureClass"] == "client_abort"
    assert by_id["x1"]["isActionable"] is False and by_id["x2"]["failureClass"] == "none"
    assert client.get("/api/stats/errors").json()["items"] == []  # downstream_closed never under service
    _load(client, [event(id="x3", error_message="failed_contact_upstream")])
    after = client.get("/api/stats/failures/summary").json()
    assert after["serviceFailureCount"] == before["serviceFailureCount"] + 1
    assert after["actionableFailureCount"] == before["actionableFailureCount"] + 1
    assert after["clientAbortCount"] == 1 and after["clientFailureCount"] == 0
    assert after["actionableFailureRate"] == 1 / 3


def test_every_error_has_the_one_body(client: TestClient) -> None:
    bad = [
        client.get("/api/v1/events", params={"limit": 5000}),
        client.get("/api/v1/events", params={"window": "3y"}),
        client.get("/api/v1/events", params={"since": "not a time"}),
        client.get("/api/v1/events", params={"cursor": "!!!"}),
        client.get("/api/v1/stats/errors", params={"scope": "everything"}),
        client.get("/api/v1/events", params={"failure_class": "bogus"}),
        client.get("/api/v1/no-such-route"),
        client.delete("/api/v1/events"),
        client.get("/api/v1/events/missing"),
    ]
    for r in bad:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code)
        body = r.json()
        assert set(body) == {"error", "request_id", "correlation_id", "trace_id"}, body
        assert set(body["error"]) == {"code", "message", "details"} and body["error"]["message"]


def test_nul_characters_in_any_parameter_get_a_400_not_a_500(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: every GET route refuses it up front, in its contract's error shape."""
    spec = client.get("/openapi.json").json()
    routes = sorted(p for p, ops in spec["paths"].items() if "get" in ops)
    assert len(routes) > 20
    names = ("source", "operation", "site_id", "q", "failure_kind", "category", "cursor", "window", "level")
    for route in routes:
        path = route.split("{")[0] + "abc" if "{" in route else route
        for name in names:
            r = client.get(path, params={name: "a\x00b"})
            assert r.status_code == 400, (route, name, r.status_code, r.text[:200])
            body = r.json()
            if route.startswith("/codebase-embedder/"):
                assert body["Success"] is False and "NUL" in body["Message"], body
                continue
            code = "parallel_ops_invalid_request" if route.startswith("/api/v1/parallel-ops/") else "invalid_request"
            assert body["error"]["code"] == code, (route, body)
            assert body["error"]["details"]["params"][0]["name"] == name, (route, body)
        if "{" in route:
            r = client.get(route.split("{")[0] + "a%00b")
            assert r.status_code == 400 and "path" in r.text, (route, r.status_code)
    # The guard lets ordinary values through.
    assert client.get("/api/v1/overview", params={"site_id": "ü-7"}).status_code == 200
