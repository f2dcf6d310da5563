"""The parallel-ops partitions that are not sources, on SQLite and PostgreSQL, from real data: breakages (failure
groups with a lifecycle and an alert), consumption_templates (rule versions and replica heartbeats) and
overlay_cache (this process' caches), in summary, trends, alerts, export and metrics."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.jobs import group_lifecycle
from faultlens.rulepacks.follower import Heartbeat
from faultlens.services import Services
from faultlens.timeutil import now_ms
from tests.conftest import make_services
from tests.helpers import ago, event
from tests.integration.test_metrics import promtool_check, samples, value

BASE = "/api/v1/parallel-ops"
RECEIVER = "http://127.0.0.1:9/hook"  # never called: alerts are evaluated, not delivered, here
TEMPLATES = {
    "frob": "frob engine {i} exploded in sector {j}",
    "widget": "widget pipeline {i} went sideways near gate {j}",
    "ledger": "ledger shard {i} rejected checksum for batch {j}",
    "cache": "cache warmer {i} gave up on keyspace {j}",
}
SLO = """
partitions:
  breakage_open_rate_max: 0.4
  breakage_min_groups: 2
  cache_hit_rate_min: 1.0
  cache_min_requests: 1
"""


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Services]:
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(SLO)
    s = make_services(db_url, start_jobs=False, obs_alert_webhook=RECEIVER, slo_file=str(slo_file))
    yield s
    s.engine.dispose()


@pytest.fixture
def http(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(svc)) as c:
        yield c


def _post(http: TestClient, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _group_ids(http: TestClient) -> dict[str, str]:
    items = http.get("/api/v1/groups", params={"window": "7d"}).json()["items"]
    return {g["title"].split(" ")[0].rstrip(":"): g["id"] for g in items}


def _seed(http: TestClient, svc: Services) -> dict[str, str]:
    """Four groups: frob resolved then seen again (regressed, with a fired P1 alert), widget resolved, ledger
    ignored, cache assigned (new). 6 + 3 + 4 + 2 failures, plus successes."""
    counts = {"frob": 6, "widget": 3, "ledger": 4, "cache": 2}
    batch = [
        event(id=f"{name}{i}", error_message=text.format(i=i, j=i * 7), occurred_at=ago(hours=2, minutes=i))
        for name, text in TEMPLATES.items()
        for i in range(counts[name])
    ]
    batch += [event(id=f"ok{i}", status="success", occurred_at=ago(hours=1)) for i in range(5)]
    _post(http, batch)
    ids = _group_ids(http)
    assert set(ids) == set(TEMPLATES), ids
    for name, body in (
        ("frob", {"status": "resolved"}),
        ("widget", {"status": "resolved"}),
        ("ledger", {"status": "ignored"}),
    ):
        assert http.post(f"/api/v1/groups/{ids[name]}/status", json=body).status_code == 200
    assert http.put(f"/api/v1/groups/{ids['cache']}/assignee", json={"assignee": "payments-team"}).status_code == 200
    again = TEMPLATES["frob"].format(i=99, j=3)
    time.sleep(0.01)  # after the resolve, and inside the windows read next
    _post(http, [event(id="frob-again", error_message=again, occurred_at=ago(seconds=0))])
    assert group_lifecycle.run_pass(svc).regressed == [("default", ids["frob"])]
    assert svc.alerting is not None
    now = now_ms()
    for at in (now, now + 3_600_000):  # past any `for` of the condition
        svc.alerting.evaluate_once(now=at)
    return ids


def test_summary_breakages_templates_and_cache(http: TestClient, svc: Services) -> None:
    before = svc.cache_stats("default")
    _seed(http, svc)
    Heartbeat(svc).beat_if_due()
    body = http.get(f"{BASE}/summary", params={"window_days": 7}).json()

    broken = body["breakages"]
    assert broken["total"] == 4
    assert broken["by_status"] == {"new": 1, "ongoing": 0, "resolved": 1, "ignored": 1, "regressed": 1}
    assert broken["open_total"] == 2 and broken["open_rate"] == 0.5
    assert broken["resolved_ever_total"] == 2 and broken["regressed_total"] == 1 and broken["repeat_rate"] == 0.5
    assert broken["by_severity"] == {"P0": 0, "P1": 1, "P2": 0, "none": 3}
    assert broken["by_owner"] == {"unassigned": 3, "payments-team": 1}
    assert broken["assigned_total"] == 1
    assert broken["failed_total"] == 6 + 3 + 4 + 2 + 1

    templates = body["consumption_templates"]
    assert templates["active_version"] == svc.pipeline.classifier.version
    assert templates["active_version"] in templates["versions"]
    assert templates["versions_total"] == len(templates["versions"]) >= 1
    assert templates["replicas_total"] == 1 and templates["replicas_on_active"] == 1
    assert templates["version_consistent"] is True and templates["consistency_rate"] == 1.0

    cache = body["overlay_cache"]
    assert cache["scope"] == "process"
    assert set(cache["caches"]) == {"classifier", "fingerprinter"}
    for name in ("classifier", "fingerprinter"):
        grown = cache["caches"][name]["requests"] - before["caches"][name]["requests"]
        assert grown >= 16, (name, grown)  # one lookup per failure at least
    assert cache["requests"] == sum(c["requests"] for c in cache["caches"].values())
    assert 0.0 <= cache["hit_rate"] < 1.0

    codes = {h["code"]: h for h in body["slo_hints"]}
    assert codes["breakage_open_rate_high"]["level"] == "warn"
    assert codes["breakage_open_rate_high"]["observed"] == 0.5 and codes["breakage_open_rate_high"]["threshold"] == 0.4
    assert codes["overlay_cache_hit_rate_low"]["source"] == "overlay_cache"

    alerts = http.get(f"{BASE}/alerts", params={"window_days": 7, "level": "warn"}).json()
    assert alerts["by_code"].get("breakage_open_rate_high") == 1


def test_breakages_trend_export_and_metrics(http: TestClient, svc: Services) -> None:
    _seed(http, svc)
    trend = http.get(f"{BASE}/trends", params={"window_days": 7, "bucket_days": 1}).json()
    points = [p["breakages"] for p in trend["points"]]
    assert len(points) >= 7 and all(set(p) == {"total", "new_total", "failed_total"} for p in points)
    assert sum(p["failed_total"] for p in points) == trend["totals"]["breakages"]["failed_total"] == 16
    assert sum(p["new_total"] for p in points) == trend["totals"]["breakages"]["new_total"] == 4
    assert trend["totals"]["breakages"]["total"] == 4
    assert max(p["total"] for p in points) <= 4

    csv_text = http.get(f"{BASE}/summary/export", params={"window_days": 7, "export_format": "csv"}).text
    rows = {r["partition"]: r for r in csv.DictReader(io.StringIO(csv_text))}
    assert list(rows) == ["doc_sync", "workflow_actions", "breakages", "consumption_templates", "overlay_cache"]
    assert rows["breakages"]["open_rate"] == "0.5" and rows["breakages"]["repeat_rate"] == "0.5"
    assert "regressed: 1" in rows["breakages"]["by_status"]
    assert rows["consumption_templates"]["active_version"] == svc.pipeline.classifier.version
    assert int(rows["overlay_cache"]["requests"]) > 0
    md = http.get(f"{BASE}/summary/export", params={"window_days": 7, "export_format": "md"}).text
    assert "| breakages |" in md and "| overlay_cache |" in md and "breakage_open_rate_high" in md
    doc = http.get(f"{BASE}/summary/export", params={"window_days": 7}).json()
    assert doc["breakages"]["total"] == 4

    text = http.get(f"{BASE}/metrics", params={"window_days": 7}).text
    promtool_check(text)
    found = samples(text)
    assert value(found, "faultlens_parallel_ops_breakage_groups", window="7d", group_status="regressed") == 1
    assert value(found, "faultlens_parallel_ops_breakage_open_ratio", window="7d") == 0.5
    assert value(found, "faultlens_parallel_ops_breakage_repeat_ratio", window="7d") == 0.5
    assert value(found, "faultlens_parallel_ops_consumption_template_consistent", window="7d") in (0, 1)
    assert (value(found, "faultlens_parallel_ops_overlay_cache_requests", window="7d", cache="classifier") or 0) > 0


def test_bad_parameters_keep_the_contract_error(http: TestClient) -> None:
    for path, params in (
        ("summary", {"window_days": 3}),
        ("trends", {"window_days": 7, "bucket_days": 14}),
        ("summary/export", {"export_format": "xml"}),
        ("metrics", {"window_days": "x"}),
    ):
        r = http.get(f"{BASE}/{path}", params=params)
        assert r.status_code == 400 and r.json()["error"]["code"] == "parallel_ops_invalid_request", r.text
