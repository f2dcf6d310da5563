"""/metrics over HTTP on SQLite and PostgreSQL: values, capped label sets, the scraping tenant, promtool's verdict."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from faultlens.api.app import create_app
from faultlens.errors import SloConfigError
from faultlens.services import Services
from faultlens.store import keys
from faultlens.triage import metrics_collector
from tests.conftest import make_services, missing_service
from tests.helpers import ago, event

ACTIONABLE = "failed_contact_upstream"


def _load(client: TestClient, events: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
    r = client.post("/api/v1/events", json=events, headers=headers)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(found: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float | None:
    return found.get(name, {}).get(tuple(sorted(labels.items())))


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_service("promtool is not installed (Debian package prometheus)")
        return
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_metrics_values_and_promtool(client: TestClient) -> None:
    batch = [event(source="api", error_message=ACTIONABLE, occurred_at=ago(minutes=2)) for _ in range(30)]
    batch += [event(source="api", status="success", occurred_at=ago(minutes=3)) for _ in range(10)]
    batch += [event(source="worker", error_message="downstream_closed", status="retry", occurred_at=ago(hours=5))]
    _load(client, batch)

    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(r.text)
    assert value(found, "faultlens_overview_events", window="24h", source="api", status="failure") == 30
    assert value(found, "faultlens_overview_events", window="1h", source="api", status="success") == 10
    assert value(found, "faultlens_overview_events", window="24h", source="worker", status="retry") == 1
    assert value(found, "faultlens_overview_events", window="1h", source="worker", status="retry") is None
    assert (
        value(
            found,
            "faultlens_overview_failures",
            window="24h",
            source="api",
            failure_class="service_failure",
            failure_kind=ACTIONABLE,
            category="dependency_error",
        )
        == 30
    )
    assert value(found, "faultlens_overview_actionable_failures", window="1h", source="api") == 30
    assert value(found, "faultlens_overview_actionable_failure_ratio", window="1h", source="api") == 0.75
    assert value(found, "faultlens_overview_actionable_failure_ratio", window="24h", source="worker") == 0
    assert (
        value(found, "faultlens_slo_hint_active", source="api", code="actionable_failure_rate_high", level="critical")
        == 1
    )
    assert value(found, "faultlens_ingest_events_total", outcome="accepted") == 41
    assert value(found, "faultlens_ingest_batch_duration_seconds_count") == 1
    assert value(found, "faultlens_overview_up") == 1
    promtool_check(r.text)


def test_label_sets_are_capped(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    many = metrics_collector.MAX_SOURCES + 10
    _load(
        client,
        [event(source=f"src-{i:03d}", error_message=ACTIONABLE) for i in range(many)]
        + [event(source="big", status="success") for _ in range(3)],
    )
    found = samples(client.get("/metrics").text)
    events = {dict(k)["source"]: v for k, v in found["faultlens_overview_events"].items() if dict(k)["window"] == "24h"}
    assert len(events) == metrics_collector.MAX_SOURCES + 1 and "big" in events
    assert events[metrics_collector.OTHER] == many - (metrics_collector.MAX_SOURCES - 1)  # "big" keeps a slot
    assert sum(events.values()) == many + 3
    failures = [(dict(k), v) for k, v in found["faultlens_overview_failures"].items() if dict(k)["window"] == "24h"]
    assert len(failures) == metrics_collector.MAX_SOURCES  # 49 kept sources failed, plus the folded ones
    assert sum(v for _k, v in failures) == many

    monkeypatch.setattr(metrics_collector, "MAX_FAILURE_SETS", 10)
    found = samples(client.get("/metrics").text)
    failures = [(dict(k), v) for k, v in found["faultlens_overview_failures"].items() if dict(k)["window"] == "24h"]
    assert len(failures) == 11 and sum(v for _k, v in failures) == many
    other = metrics_collector.OTHER
    assert {"source": other, "failure_class": other, "failure_kind": other, "category": other, "window": "24h"} in [
        k for k, _v in failures
    ]


def test_metrics_answer_for_the_scraping_key_tenant(services: Services, client: TestClient) -> None:
    with services.engine.begin() as conn:
        alpha = {"Authorization": f"Bearer {keys.create_key(conn, tenant='alpha', scopes=['admin'])[1]}"}
        beta = {"Authorization": f"Bearer {keys.create_key(conn, tenant='beta', scopes=['read'])[1]}"}
    client.app.state.keys_present.checked = 0  # type: ignore[attr-defined]
    _load(client, [event(source="alpha-only")], headers=alpha)
    assert client.get("/metrics").status_code == 401
    mine = samples(client.get("/metrics", headers=alpha).text)
    theirs = samples(client.get("/metrics", headers=beta).text)
    assert value(mine, "faultlens_overview_events", window="1h", source="alpha-only", status="failure") == 1
    assert "faultlens_overview_events" not in theirs or not any(
        dict(k)["source"] == "alpha-only" for k in theirs["faultlens_overview_events"]
    )
    assert value(theirs, "faultlens_overview_up") == 1


def test_a_broken_slo_file_turns_the_overview_collector_down(db_url: str, tmp_path: Path) -> None:
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text("default:\n  min_events: 0\n")
    with pytest.raises(SloConfigError):
        make_services(db_url, slo_file=slo_file)  # a broken file stops the start
    slo_file.write_text("default:\n  min_events: 5\n")
    services = make_services(db_url, slo_file=slo_file)
    slo_file.write_text("default:\n  min_events: -10\n")  # broken while the server runs
    try:
        with TestClient(create_app(services)) as client:
            r = client.get("/metrics")
            assert r.status_code == 200
            found = samples(r.text)
            assert value(found, "faultlens_overview_up") == 0 and "faultlens_overview_events" not in found
            assert value(found, "faultlens_ingest_batch_duration_seconds_count") == 0  # the process metrics remain
            promtool_check(r.text)
    finally:
        services.engine.dispose()


def test_process_wide_series_need_the_operator_scope(services: Services) -> None:
    with services.engine.begin() as conn:
        _, reader = keys.create_key(conn, tenant="acme", scopes=["ingest", "read"])
        _, operator = keys.create_key(conn, tenant="ops", scopes=["read", "operator"])
    with TestClient(create_app(services)) as client:
        _load(client, [event(id="m1")], headers={"Authorization": f"Bearer {reader}"})
        as_reader = samples(client.get("/metrics", headers={"Authorization": f"Bearer {reader}"}).text)
        as_operator = samples(client.get("/metrics", headers={"Authorization": f"Bearer {operator}"}).text)
    # The tenant's own windowed counts, but not the ingest counter every tenant adds to.
    assert value(as_reader, "faultlens_overview_events", window="1h", source="codex-proxy", status="failure") == 1
    assert "faultlens_ingest_events_total" not in as_reader
    assert value(as_operator, "faultlens_ingest_events_total", outcome="accepted") == 1
    assert value(as_operator, "faultlens_overview_events", window="1h", source="codex-proxy", status="failure") is None
