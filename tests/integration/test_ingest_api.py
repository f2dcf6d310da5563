"""POST /api/v1/events over HTTP on SQLite and PostgreSQL: formats, duplicates, rejections, limits, redaction."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from tests.conftest import make_services
from tests.helpers import ago, event


def _ingest(client: TestClient, body: object) -> dict[str, object]:
    r = client.post("/api/v1/events", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_array_object_and_ndjson_bodies(client: TestClient) -> None:
    assert _ingest(client, [event(id="a1")])["accepted"] == 1
    assert _ingest(client, {"events": [event(id="a2"), event(id="a3")]})["accepted"] == 2
    nd = b"\n".join(orjson.dumps(event(id=f"n{i}")) for i in range(3)) + b"\n"
    r = client.post("/api/v1/events", content=nd, headers={"content-type": "application/x-ndjson"})
    assert r.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    items = client.get("/api/v1/events", params={"limit": 100}).json()["items"]
    assert sorted(i["id"] for i in items) == ["a1", "a2", "a3", "n0", "n1", "n2"]


def test_same_id_is_a_duplicate_never_a_second_row(client: TestClient) -> None:
    assert _ingest(client, [event(id="dup"), event(id="dup")]) == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert _ingest(client, [event(id="dup")]) == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert len(client.get("/api/v1/events").json()["items"]) == 1
    assert client.get("/api/v1/stats/summary").json()["total"] == 1


def test_valid_events_stored_when_others_rejected(client: TestClient) -> None:
    body = [
        event(id="ok1"),
        event(id="bad-status", status="exploded"),
        event(id="bad-time", occurred_at="yesterday"),
        event(id="naive-time", occurred_at="2026-11-20T10:00:00"),
        {"status": "failure", "occurred_at": ago(minutes=1)},
        event(id="bad-type", http_status="five hundred"),
        event(id="nul", error_message="bad\x00byte"),
        event(id="extra", colour="red"),
        "not an object",
        event(id="ok2", status="success"),
    ]
    result = _ingest(client, body)
    assert result["accepted"] == 2
    codes = {r["index"]: r["error"]["code"] for r in result["rejected"]}  # type: ignore[union-attr]
    assert codes == {
        1: "invalid_status",
        2: "invalid_timestamp",
        3: "invalid_timestamp",
        4: "missing_field",
        5: "invalid_field",
        6: "invalid_field",
        7: "unknown_field",
        8: "invalid_event",
    }
    for item in result["rejected"]:  # type: ignore[union-attr]
        assert item["error"]["message"]


def test_body_that_is_not_json_is_400_and_stores_nothing(client: TestClient) -> None:
    for body, ctype in [
        (b"{not json", "application/json"),
        (b"\xff\xfe\xfa", "application/json"),
        (b"garbage\nmore garbage", "application/x-ndjson"),
        (b'{"x": 1}', "application/json"),
    ]:
        r = client.post("/api/v1/events", content=body, headers={"content-type": ctype})
        assert r.status_code == 400, body
        err = r.json()["error"]
        assert err["code"] in ("invalid_json", "invalid_body") and err["message"]
    assert client.get("/api/v1/stats/summary").json()["total"] == 0


def test_oversize_batch_and_body_are_413(db_url: str) -> None:
    from faultlens.api.app import create_app

    svc = make_services(db_url, max_batch_events=5, max_body_bytes=4096)
    with TestClient(create_app(svc)) as c:
        r = c.post("/api/v1/events", json=[event(id=str(i)) for i in range(6)])
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = c.post("/api/v1/events", json=[event(id="big", error_message="x" * 5000)])
        assert r.status_code == 413
        assert c.get("/api/v1/stats/summary").json()["total"] == 0
    svc.engine.dispose()


def test_over_long_ids_are_rejected_per_event(client: TestClient) -> None:
    result = _ingest(client, [event(id="x" * 200), event(id="fine", trace_id="t" * 600)])
    assert result["accepted"] == 0
    assert [r["error"]["code"] for r in result["rejected"]] == ["field_too_long", "field_too_long"]  # type: ignore[union-attr]


def test_secrets_are_masked_before_storage(client: TestClient) -> None:
    secret = "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"
    _ingest(
        client,
        [
            event(
                id="s1",
                error_message=f"Incorrect API key provided: {secret}",
                attributes={"url": "https://bob:hunter22@api.example.com/v1?api_key=abcdef123"},
            )
        ],
    )
    ev = client.get("/api/v1/events/s1").json()
    assert secret not in ev["error_message"] and "[REDACTED]" in ev["error_message"]
    assert "hunter22" not in ev["attributes"]["url"] and "abcdef123" not in ev["attributes"]["url"]
    assert ev["failure_class"] == "client_failure" and ev["category"] == "authorization"


def test_generated_ids_and_derived_fields(client: TestClient) -> None:
    _ingest(client, [event(error_message="downstream_closed"), event(status="success", http_status=200)])
    items = client.get("/api/v1/events").json()["items"]
    assert len({i["id"] for i in items}) == 2 and all(len(i["id"]) == 32 for i in items)
    by_status = {i["status"]: i for i in items}
    assert by_status["failure"]["failure_class"] == "client_abort"
    assert by_status["failure"]["is_actionable"] is False
    assert by_status["success"]["failure_class"] == "none"
    assert by_status["failure"]["rule_version"].startswith("default@")
