"""Ingest keeps its promises on hostile and unusual input: a bad field costs one event, long text is kept cut,
timestamps are strict RFC 3339, and any id that was accepted can be fetched back."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from faultlens.ingest import truncate
from tests.helpers import event


def _ingest(client: TestClient, body: object) -> dict[str, Any]:
    r = client.post("/api/v1/events", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "bad",
    [
        {"status": ["failure"]},
        {"status": {"x": 1}},
        {"status": 3},
        {"item_type": {}},
        {"item_type": ["task"]},
        {"source": ["a"]},
        {"operation": {"GET": 1}},
        {"error_code": 42},
        {"error_message": ["boom"]},
        {"release": True},
        {"occurred_at": ["2026-11-22T10:00:00Z"]},
        {"occurred_at": 1764000000},
        {"http_status": [500]},
        {"duration_ms": {"v": 1}},
        {"attributes": ["a", "b"]},
        {"attributes": {"k": {"nested": 1}}},
        {"attributes": {"k": [1, 2]}},
        {"id": {"a": 1}},
    ],
)
def test_a_wrongly_typed_field_rejects_one_event_and_keeps_the_rest(client: TestClient, bad: dict[str, Any]) -> None:
    body = [event(id="before"), event(**{"id": "bad", **bad}), event(id="after", status="success")]
    result = _ingest(client, body)
    assert result["accepted"] == 2, result
    assert [r["index"] for r in result["rejected"]] == [1]
    assert result["rejected"][0]["error"]["code"] in {"invalid_field", "invalid_status", "invalid_timestamp"}
    ids = sorted(i["id"] for i in client.get("/api/v1/events").json()["items"])
    assert ids == ["after", "before"]


def test_a_long_stack_trace_is_stored_cut_with_its_head_tail_and_length(client: TestClient) -> None:
    frames = "".join(f"\tat com.acme.orders.Service.step{i}(Service.java:{i})\n" for i in range(2000))
    trace = (
        "java.lang.IllegalStateException: deadlock detected\n" + frames + "Caused by: java.net.SocketTimeoutException"
    )
    assert len(trace) > 60_000
    result = _ingest(client, [event(id="long", error_message=trace, operation="GET /" + "p" * 2000)])
    assert result == {"accepted": 1, "duplicates": 0, "rejected": []}
    stored = client.get("/api/v1/events/long").json()
    message = stored["error_message"]
    assert len(message) <= 16_384
    assert message.startswith("java.lang.IllegalStateException: deadlock detected")
    assert message.endswith("Caused by: java.net.SocketTimeoutException")
    assert f"{len(trace)} characters in all" in message
    assert stored["attributes"]["truncated.error_message"] == len(trace)
    assert stored["attributes"]["truncated.operation"] == 2005
    assert len(stored["operation"]) <= 512 and stored["operation"].startswith("GET /ppp")
    # the classifier read the stored (cut) text like any other message
    assert stored["failure_kind"] != "unknown" or stored["failure_class"] == "service_failure"


def test_a_long_attribute_value_is_stored_cut() -> None:
    assert truncate("abc", 10) == "abc"
    cut = truncate("H" * 3000 + "T" * 3000, 1024)
    assert len(cut) <= 1024 and cut.startswith("HHH") and cut.endswith("TTT") and "6000 characters in all" in cut


def test_secrets_are_masked_before_text_is_cut(client: TestClient) -> None:
    secret = "hunter2-very-secret-value"
    message = "x" * 12_280 + f" password={secret} " + "y" * 10_000
    _ingest(client, [event(id="cut-secret", error_message=message)])
    stored = client.get("/api/v1/events/cut-secret").json()["error_message"]
    assert "hunter2" not in stored and "very-secret" not in stored


@pytest.mark.parametrize(
    "value",
    [
        "2026-W49-1T00:00:00Z",
        "2026-330T10:00:00Z",
        "20261122T100000Z",
        "2026-11-22T10:00Z",
        "2026-11-22T10:00:00",
        "2026-11-22",
        "2026-02-30T10:00:00Z",
        "2026-11-22T10:00:00+25:00",
        "２０２６-11-22T10:00:00Z",
    ],
)
def test_timestamps_must_be_strict_rfc3339(client: TestClient, value: str) -> None:
    result = _ingest(client, [event(id="t", occurred_at=value)])
    assert result["accepted"] == 0
    assert result["rejected"][0]["error"]["code"] == "invalid_timestamp"


def test_rfc3339_variants_that_are_valid_are_accepted(client: TestClient) -> None:
    base = event()["occurred_at"]  # e.g. 2026-12-06T06:10:00.123Z
    date, time = base[:10], base[11:19]
    variants = [f"{date}T{time}Z", f"{date}t{time}z", f"{date} {time}+00:00", f"{date}T{time}.123456789-00:00"]
    result = _ingest(client, [event(id=f"v{i}", occurred_at=v) for i, v in enumerate(variants)])
    assert result["accepted"] == len(variants), result


@pytest.mark.parametrize("event_id", ["a/b", "orders/2026/11/22/x", "with space", "q?x=1", "100% done", "../up"])
def test_every_accepted_id_can_be_fetched(client: TestClient, event_id: str) -> None:
    assert _ingest(client, [event(id=event_id)])["accepted"] == 1
    r = client.get(f"/api/v1/events/{quote(event_id, safe='')}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == event_id
    page = client.get(f"/events/{quote(event_id, safe='')}")
    assert page.status_code == 200
    listed = client.get("/api/v1/events").json()["items"]
    assert [i["id"] for i in listed] == [event_id]


def test_ndjson_with_a_wrongly_typed_line_keeps_the_others(client: TestClient) -> None:
    lines = [event(id="n1"), event(id="n2", status=["x"]), event(id="n3", item_type={})]
    body = b"\n".join(orjson.dumps(x) for x in lines) + b"\n\n"
    r = client.post("/api/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1, 2]


@pytest.mark.parametrize("event_id", ["zz-1\n", "zz\n2", "tab\there", "\x7f", ".", ".."])
def test_ids_a_url_cannot_carry_are_rejected(client: TestClient, event_id: str) -> None:
    result = _ingest(client, [event(id=event_id), event(id="zz-1")])
    assert result["accepted"] == 1
    assert [r["index"] for r in result["rejected"]] == [0]
    assert result["rejected"][0]["error"]["code"] == "invalid_field"


def test_a_credential_in_the_source_is_masked(client: TestClient) -> None:
    _ingest(client, [event(id="s1", source="src password=SrcSecret11")])
    body = client.get("/api/v1/events/s1").text
    assert "SrcSecret11" not in body and "src password=" in body
