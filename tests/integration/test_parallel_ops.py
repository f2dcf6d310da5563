"""The parallel-ops contract over HTTP on SQLite and PostgreSQL: shapes, filters, downloads and its 400s."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fastapi.testclient import TestClient

from faultlens.api.compat.parallel_ops import OTHER_PARTITIONS
from faultlens.store.rollup_shapes import DAY_MS
from faultlens.timeutil import parse_rfc3339_ms
from tests.helpers import ago, event
from tests.integration.test_metrics import promtool_check, samples, value

BASE = "/api/v1/parallel-ops"
CODE = "parallel_ops_invalid_request"


def _load(client: TestClient, events: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/events", json=events)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _data(client: TestClient) -> None:
    """doc_sync: 10 ok + 10 dead-lettered (s1 holds 4 of those); workflow_actions: 12 ok + 8 failed; noise."""
    doc_sync = [
        event(
            source="doc_sync",
            status="success",
            attempt=1,
            occurred_at=ago(hours=3),
            attributes={"site_id": "s2", "target_object": "page"},
        )
        for _ in range(10)
    ]
    doc_sync += [
        event(
            source="doc_sync",
            status="dead_letter",
            error_message="failed_contact_upstream",
            error_code="timeout",
            attempt=5,
            occurred_at=ago(hours=2, minutes=i),
            attributes={"site_id": "s1" if i < 4 else "s2", "target_object": "page"},
        )
        for i in range(10)
    ]
    workflow = [
        event(
            source="workflow_actions",
            status="success",
            occurred_at=ago(days=2),
            attributes={"target_object": "approval"},
        )
        for _ in range(12)
    ]
    workflow += [
        event(
            source="workflow_actions",
            error_message="Invalid API key",
            http_status=401,
            error_code="RETRY_EXHAUSTED",
            occurred_at=ago(days=1, minutes=i),
            attributes={"target_object": "approval" if i % 2 else "workflow"},
        )
        for i in range(8)
    ]
    noise = [event(source="codex-proxy", error_message="failed_contact_upstream") for _ in range(30)]
    _load(client, doc_sync + workflow + noise)


def test_summary_partitions_hints_and_filters(client: TestClient) -> None:
    _data(client)
    body = client.get(f"{BASE}/summary").json()
    assert body["window_days"] == 7
    since, until = parse_rfc3339_ms(body["window_since"]), parse_rfc3339_ms(body["window_until"])
    assert until - since == 7 * DAY_MS + 1
    assert body["filters"] == {"site_id": None, "target_object": None, "template_key": None}
    ds, wf = body["doc_sync"], body["workflow_actions"]
    assert ds["total"] == 20 and ds["by_status"]["dead_letter"] == 10 and ds["by_status"]["success"] == 10
    assert (ds["dead_letter_total"], ds["dead_letter_rate"], ds["success_rate"]) == (10, 0.5, 0.5)
    assert ds["avg_attempts"] == (10 * 1 + 10 * 5) / 20 and ds["by_result_code"] == {"timeout": 10}
    assert (wf["total"], wf["failed_total"], wf["failed_rate"]) == (20, 8, 0.4)
    assert wf["by_result_code"] == {"RETRY_EXHAUSTED": 8}
    codes = {h["code"]: h for h in body["slo_hints"]}
    assert codes["doc_sync_dead_letter_rate_high"]["level"] == "critical"
    assert codes["workflow_action_failed_rate_high"]["level"] == "critical"
    assert codes["workflow_action_success_rate_low"]["source"] == "workflow_actions"
    assert {h["source"] for h in body["slo_hints"]} == {"doc_sync", "workflow_actions"}  # codex-proxy is no partition

    s1 = client.get(f"{BASE}/summary", params={"site_id": "s1", "window_days": "1"}).json()
    assert (s1["doc_sync"]["total"], s1["workflow_actions"]["total"]) == (4, 0)
    assert s1["filters"]["site_id"] == "s1" and s1["window_days"] == 1
    approval = client.get(f"{BASE}/summary", params={"target_object": "approval"}).json()
    assert (approval["doc_sync"]["total"], approval["workflow_actions"]["total"]) == (0, 16)
    assert client.get(f"{BASE}/summary", params={"template_key": "none"}).json()["doc_sync"]["total"] == 0


def test_trends_alerts_and_exports(client: TestClient) -> None:
    _data(client)
    trends = client.get(f"{BASE}/trends").json()
    assert trends["bucket_days"] == 1 and len(trends["points"]) == 8
    assert all(parse_rfc3339_ms(p["bucket_start"]) % DAY_MS == 0 for p in trends["points"])
    assert trends["totals"]["doc_sync"] == {
        "total": 20,
        "failed_total": 10,
        "dead_letter_total": 10,
        "success_rate": 0.5,
        "failed_rate": 0.5,
        "dead_letter_rate": 0.5,
    }
    assert sum(p["workflow_actions"]["failed_total"] for p in trends["points"]) == 8
    weekly = client.get(f"{BASE}/trends", params={"window_days": "30", "bucket_days": "14"}).json()
    assert weekly["bucket_days"] == 14 and len(weekly["points"]) in (3, 4)
    assert weekly["totals"]["workflow_actions"]["total"] == 20

    alerts = client.get(f"{BASE}/alerts").json()
    assert alerts["status"] == "critical" and alerts["total"] == len(alerts["hints"])
    assert alerts["by_code"]["doc_sync_dead_letter_rate_high"] == 1
    critical = client.get(f"{BASE}/alerts", params={"level": "critical"}).json()
    assert {h["level"] for h in critical["hints"]} == {"critical"} and critical["filters"]["level"] == "critical"
    nowhere = client.get(f"{BASE}/alerts", params={"site_id": "nowhere"}).json()
    assert (nowhere["status"], nowhere["total"], nowhere["by_code"], nowhere["hints"]) == ("ok", 0, {}, [])

    media = {"json": "application/json", "csv": "text/csv", "md": "text/markdown"}
    for fmt, media_type in media.items():
        r = client.get(f"{BASE}/summary/export", params={"export_format": fmt})
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == media_type
        assert re.fullmatch(
            rf'attachment; filename="parallel-ops-summary-7d-\d{{8}}\.{fmt}"', r.headers["content-disposition"]
        )
    default = client.get(f"{BASE}/summary/export")
    assert default.headers["content-type"] == "application/json" and default.json()["doc_sync"]["total"] == 20
    rows = list(csv.DictReader(io.StringIO(client.get(f"{BASE}/summary/export", params={"export_format": "csv"}).text)))
    assert [r["partition"] for r in rows] == ["doc_sync", "workflow_actions", *OTHER_PARTITIONS]
    assert rows[0]["dead_letter_total"] == "10" and rows[1]["by_result_code"] == "RETRY_EXHAUSTED: 8"
    md = client.get(f"{BASE}/summary/export", params={"export_format": "md"}).text
    assert "| doc_sync | 20 |" in md and "doc_sync_dead_letter_rate_high" in md


def test_failure_pages_and_metrics(client: TestClient) -> None:
    _data(client)
    page = client.get(f"{BASE}/doc-sync/failures", params={"site_id": "s1", "page_size": "3"}).json()
    assert page["total"] == 4 and page["pagination"] == {"page": 1, "page_size": 3, "pages": 2, "total": 4}
    assert all(i["source"] == "doc_sync" and i["attributes"]["site_id"] == "s1" for i in page["items"])
    times = [parse_rfc3339_ms(i["occurred_at"]) for i in page["items"]]
    assert times == sorted(times, reverse=True) and len(times) == 3
    second = client.get(f"{BASE}/doc-sync/failures", params={"site_id": "s1", "page_size": "3", "page": "2"}).json()
    assert len(second["items"]) == 1
    default = client.get(f"{BASE}/doc-sync/failures").json()
    assert default["pagination"] == {"page": 1, "page_size": 20, "pages": 1, "total": 10}
    wf = client.get(f"{BASE}/workflow/failures", params={"target_object": "approval"}).json()
    assert wf["total"] == 4 and {i["error_code"] for i in wf["items"]} == {"RETRY_EXHAUSTED"}
    assert client.get(f"{BASE}/workflow/failures", params={"window_days": "1"}).json()["total"] == 0

    r = client.get(f"{BASE}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(r.text)
    assert value(found, "faultlens_parallel_ops_events", window="7d", partition="doc_sync", status="dead_letter") == 10
    assert value(found, "faultlens_parallel_ops_failure_ratio", window="7d", partition="workflow_actions") == 0.4
    assert (
        value(
            found,
            "faultlens_parallel_ops_result_code_events",
            window="7d",
            partition="workflow_actions",
            result_code="RETRY_EXHAUSTED",
        )
        == 8
    )
    assert (value(found, "faultlens_parallel_ops_slo_hints", window="7d", level="critical") or 0) >= 2
    promtool_check(r.text)


BAD: list[tuple[str, dict[str, str], str]] = [
    ("summary", {"window_days": "10"}, "window_days"),
    ("summary", {"window_days": "abc"}, "window_days"),
    ("summary", {"window_days": "7.0"}, "window_days"),
    ("summary", {"window_days": ""}, "window_days"),
    ("summary", {"window_days": "-7"}, "window_days"),
    ("summary", {"site_id": "x" * 2000}, "site_id"),
    ("trends", {"bucket_days": "2"}, "bucket_days"),
    ("trends", {"bucket_days": "one"}, "bucket_days"),
    ("trends", {"window_days": "7", "bucket_days": "14"}, "bucket_days"),
    ("trends", {"window_days": "3"}, "window_days"),
    ("alerts", {"level": "oops"}, "level"),
    ("alerts", {"level": "WARN"}, "level"),
    ("alerts", {"window_days": "100"}, "window_days"),
    ("summary/export", {"export_format": "xlsx"}, "export_format"),
    ("summary/export", {"window_days": "x"}, "window_days"),
    ("doc-sync/failures", {"page": "0"}, "page"),
    ("doc-sync/failures", {"page": "first"}, "page"),
    ("doc-sync/failures", {"page_size": "0"}, "page_size"),
    ("doc-sync/failures", {"page_size": "501"}, "page_size"),
    ("workflow/failures", {"page_size": "ten"}, "page_size"),
    ("workflow/failures", {"target_object": "y" * 1025}, "target_object"),
    ("metrics", {"window_days": "2"}, "window_days"),
    ("metrics", {"template_key": "z" * 1025}, "template_key"),
]


def test_every_invalid_parameter_is_a_contract_400(client: TestClient) -> None:
    for path, params, param in BAD:
        r = client.get(f"{BASE}/{path}", params=params)
        assert r.status_code == 400, (path, params, r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error", "request_id", "correlation_id", "trace_id"} and set(body["error"]) == {
            "code",
            "message",
            "details",
        }
        assert body["error"]["code"] == CODE, (path, params, body)
        assert body["error"]["message"].startswith(param), body
        assert body["error"]["details"] == {
            "params": [{"name": param, "location": "query", "message": body["error"]["message"]}]
        }, body
