"""/metrics after a workload serves exactly what the metric dictionary lists: names, labels and closed values.

Fails when the code serves a series or a closed-label value the dictionary does not list, and when a dictionary
entry (not planned, not a summary-only figure) is served by no code at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from faultlens.api.app import create_app
from faultlens.jobs import runner
from faultlens.metric_dictionary import Dictionary, MetricSpec, load
from faultlens.services import Services
from tests.conftest import make_services, missing_service
from tests.helpers import ago, event
from tests.integration.test_backfill import OPS_PACK
from tests.integration.test_otlp_http import JSON, json_span, json_traces

# Series suffixes prometheus_client adds to a counter's or histogram's family.
_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def served(text: str, dictionary: Dictionary, namespace: str) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """Short metric name -> label sets served; asserts every family, label and closed value is in the dictionary."""
    by_full = dictionary.by_full_name(namespace)
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(text):
        name = family.name
        if name.endswith("_created"):
            # prometheus_client's creation time of a counter or histogram, served as a gauge family of its own.
            base = by_full.get(name.removesuffix("_created")) or by_full.get(name.replace("_created", "_total"))
            assert base is not None and base.type in ("counter", "histogram"), f"{name} is not in the dictionary"
            continue
        spec: MetricSpec | None = by_full.get(name) or by_full.get(f"{name}_total")
        assert spec is not None, f"{name} is served but not in the metric dictionary"
        assert spec.served, f"{name} is served but the dictionary marks it {spec.since or spec.exposed}"
        assert family.type == spec.type, f"{name}: served as {family.type}, listed as {spec.type}"
        found.setdefault(spec.name, set())
        for sample in family.samples:
            assert sample.name == name or sample.name.removeprefix(name) in _SUFFIXES, sample.name
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            assert tuple(sorted(labels)) == tuple(sorted(spec.labels)), f"{sample.name}: labels {sorted(labels)}"
            for label, value in labels.items():
                assert dictionary.allows(spec, label, value), f"{sample.name}: {label}={value!r} is not listed"
            found[spec.name].add(tuple(sorted(labels.items())))
    return found


@pytest.fixture
def operator_services(db_url: str) -> Iterator[Services]:
    svc = make_services(db_url)
    yield svc
    svc.engine.dispose()


def _workload(client: TestClient, services: Services) -> None:
    good = [
        event(id=f"e{i}", source="api", error_message="failed_contact_upstream", occurred_at=ago(minutes=2))
        for i in range(3)
    ]
    bad = [{"source": "api"}, {**event(source="api"), "status": "exploded"}, {**event(source="api"), "colour": 1}]
    r = client.post("/api/v1/events", json=[*good, good[0], *bad])
    assert r.status_code == 200 and r.json()["accepted"] == 3 and len(r.json()["rejected"]) == 3, r.text
    failed = json_span("00f067aa0ba902b7", status={"code": 2, "message": "upstream reset"})
    assert client.post("/v1/traces", content=json_traces(failed), headers=JSON).status_code == 200
    assert client.post("/api/v1/events", content=b"{not json", headers=JSON).status_code == 400  # an error, not a 500
    assert client.get("/api/v1/events/no-such-event").status_code == 404
    assert client.get("/no/such/page/42").status_code == 404
    backfill = client.post("/api/v1/rules/activate", json=OPS_PACK).json()["backfill"]
    job = runner.wait_for(services, backfill["id"], timeout_s=60)
    assert job.state == "done", job
    try:
        redis.Redis.from_url(services.settings.redis_url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {services.settings.redis_url} is not reachable: {exc}")
    assert client.get("/api/v1/tasks/failed").status_code == 200


def test_scrape_matches_the_dictionary(operator_services: Services) -> None:
    dictionary = load()
    ns = operator_services.settings.obs_metrics_namespace
    with TestClient(create_app(operator_services)) as client:
        _workload(client, operator_services)
        text = client.get("/metrics").text
        found = served(text, dictionary, ns)
        parallel = served(client.get("/api/v1/parallel-ops/metrics").text, dictionary, ns)

    # Every entry the dictionary says is served is served by some code.
    expected = {m.name for m in dictionary.metrics if m.served}
    missing = expected - set(found) - set(parallel)
    assert not missing, f"listed in the dictionary but served by no code: {sorted(missing)}"
    assert not {m.name for m in dictionary.metrics if not m.served} & (set(found) | set(parallel))

    # The workload moved the new series, under the labels it should have.
    def has(name: str, **labels: str) -> bool:
        return tuple(sorted(labels.items())) in found.get(name, set())

    assert has("http_requests_total", route="/api/v1/events", method="POST", status_class="2xx")
    assert has("http_requests_total", route="/api/v1/events", method="POST", status_class="4xx")
    assert has("http_requests_total", route="/api/v1/events/{event_id}", method="GET", status_class="4xx")
    assert has("http_requests_total", route="<unmatched>", method="GET", status_class="4xx")
    assert not any(dict(labels)["route"].startswith("/no/") for labels in found["http_requests_total"])
    assert has("http_request_duration_seconds", route="/v1/traces", method="POST")
    for reason in ("missing_field", "invalid_status", "unknown_field"):
        assert has("ingest_rejections_total", reason=reason), reason
    assert has("ingest_events_total", outcome="duplicate")
    assert has("otlp_items_total", signal="spans", outcome="event")
    assert has("jobs_run_total", kind="backfill")
    assert has("background_loop_last_success_timestamp_seconds", loop="job_runner")
    assert has("database_call_duration_seconds", operation="insert")
    assert has("database_call_duration_seconds", operation="select")
    assert has("redis_call_duration_seconds", operation="read")
    assert has("rules_active_version", version=operator_services.classifier.version)
    assert has("slo_hints", level="critical") and has("slo_hints", level="warn")
    # Nothing was folded to "other" on the way: the guard counted no violation.
    assert found["metric_label_violations_total"] == set()


def test_namespace_prefixes_every_series(sqlite_url: str) -> None:
    services = make_services(sqlite_url, obs_metrics_namespace="acme_fl")
    try:
        with TestClient(create_app(services)) as client:
            assert client.post("/api/v1/events", json=[event(source="api")]).status_code == 200
            text = client.get("/metrics").text
        names = {f.name for f in text_string_to_metric_families(text)}
        assert names and all(name.startswith("acme_fl_") for name in names), sorted(names)
        assert "acme_fl_http_requests" in names  # a counter's family, without _total
        found = served(text, load(), "acme_fl")
        assert (("outcome", "accepted"),) in found["ingest_events_total"]
    finally:
        services.engine.dispose()
