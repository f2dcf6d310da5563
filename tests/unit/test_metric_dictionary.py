"""The metric dictionary: its file validates, its closed sets match the code's enums, the guard, docs/metrics.md."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from faultlens import metric_dictionary
from faultlens.api.compat.parallel_ops import PARTITIONS
from faultlens.api.http_metrics import UNMATCHED, route_template
from faultlens.connectors import metrics as task_metrics
from faultlens.connectors.base import KINDS
from faultlens.jobs.queue import JobKind
from faultlens.metric_dictionary import DictionaryError, MetricLabelError, load, parse, render_docs
from faultlens.metrics import Metrics
from faultlens.model import Category, FailureClass, Status
from faultlens.settings import Settings
from faultlens.triage import metrics_collector, overview, slo

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "faultlens"


def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SRC / "metric_dictionary.yaml").read_text(encoding="utf-8"))
    return data


def test_the_packaged_dictionary_loads_and_lists_todays_metrics() -> None:
    d = load()
    names = [m.name for m in d.metrics]
    for today in (
        "ingest_events_total",
        "ingest_batch_duration_seconds",
        "http_body_read_timeouts_total",
        "otlp_items_total",
        "jobs_running",
        "jobs_pending",
        "jobs_progress_ratio",
        "overview_events",
        "overview_failures",
        "overview_actionable_failures",
        "overview_actionable_failure_ratio",
        "overview_up",
        "slo_hint_active",
        "tasks_requeued_total",
        "tasks_retention_items_total",
        "parallel_ops_events",
        "parallel_ops_result_code_events",
        "parallel_ops_success_ratio",
        "parallel_ops_failure_ratio",
        "parallel_ops_dead_letter_ratio",
        "parallel_ops_slo_hints",
    ):
        assert today in names, today
    assert d.metric("http_requests_total").full_name("faultlens") == "faultlens_http_requests_total"
    # The alerts issue made its planned entry real: served, with the result values delivery counts.
    deliveries = d.metric("alert_deliveries_total")
    assert deliveries.served and not deliveries.planned
    assert deliveries.label_values == {"result": ("delivered", "retrying", "failed")}


def test_the_ops_summary_entries_exist_with_their_sections() -> None:
    wanted = {
        "api": {"http_requests_total", "http_request_error_ratio", "http_request_duration_seconds"},
        "worker": {"jobs_run_total", "jobs_failed_total", "jobs_lag_seconds"},
        "quality": {"events_actionable_failure_ratio", "events_unclassified_ratio", "rules_active_version"},
        "cost": {"events_stored_total", "events_stored_bytes", "events_attempts_per_event"},
        "slo": {"slo_hints"},
    }
    d = load()
    for section, names in wanted.items():
        for name in names:
            summary = d.metric(name).summary
            assert summary is not None and summary.section == section, name
    assert d.metric("rules_active_version").labels == ("version",)
    assert d.closed_values("slo_hints", "level") == ("critical", "warn")


def _codes(path: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(encoding="utf-8")))


def test_closed_sets_match_the_code() -> None:
    d = load()
    assert d.labels["kind"].values == tuple(k.value for k in JobKind)
    assert d.labels["store"].values == KINDS
    assert d.labels["action"].values == task_metrics.RETENTION_ACTIONS
    assert d.labels["trigger"].values == task_metrics.TRIGGERS
    assert d.labels["status"].values == tuple(s.value for s in Status)
    failed = {c.value for c in FailureClass} - {"none"}
    assert set(d.labels["failure_class"].values or ()) == failed | {metrics_collector.OTHER}
    assert set(d.labels["category"].values or ()) == {c.value for c in Category} | {metrics_collector.OTHER}
    assert d.labels["level"].values == slo.LEVELS
    assert d.labels["partition"].values == tuple(PARTITIONS)
    hint_codes = _codes(SRC / "triage" / "slo.py", r'Hint\(\s*"([a-z_]+)"') | {
        "failure_rate_high",
        "dead_letter_rate_high",
        "retry_rate_high",
    }
    assert set(d.labels["code"].values or ()) == hint_codes
    # The ingest rejection codes (ingest.EventRejected) are the reasons ingest_rejections_total may carry.
    ingest = SRC / "ingest.py"
    rejected = _codes(ingest, r'EventRejected\(\s*"([a-z_]+)"') | _codes(ingest, r'"code": "([a-z_]+)"')
    assert set(d.closed_values("ingest_rejections_total", "reason") or ()) == rejected
    assert f"top {metrics_collector.MAX_FAILURE_SETS} label sets" in d.metric("overview_failures").help
    assert f"last {overview.DEFAULT_WINDOW_DAYS} days" in d.metric("slo_hint_active").help


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["metrics"][0].update(type="summary"), "type must be one of"),
        (lambda d: d["metrics"][0].update(name="http_requests"), "ends in _total"),
        (lambda d: d["metrics"][0].update(labels=["route", "nope"]), "'nope' is not in the labels section"),
        (lambda d: d["labels"]["route"].update(values=["/"]), "exactly one of values / bounded"),
        (lambda d: d["labels"]["status_class"].update(values=["2xx", "other"]), "fold value"),
        (lambda d: d["metrics"][0].update(label_values={"method": ["BREW"]}), "not a subset"),
        (lambda d: d["metrics"][0].update(buckets=[1, 2]), "only histograms have buckets"),
        (lambda d: d["metrics"][1].update(buckets=[2, 1]), "buckets must increase"),
        (lambda d: d["metrics"].append(copy.deepcopy(d["metrics"][0])), "listed twice"),
        (lambda d: d["metrics"][0].update(summary={"section": "misc", "field": "x"}), "summary.section"),
        (lambda d: d["metrics"][0].update(subsystem="web"), "subsystem must be one of"),
        (lambda d: d["labels"].update(unused={"help": "x", "values": ["a"]}), "labels no metric uses"),
    ],
)
def test_a_malformed_dictionary_is_refused(change: Any, message: str) -> None:
    data = raw()
    assert data["metrics"][0]["name"] == "http_requests_total"
    assert data["metrics"][1]["type"] == "histogram"
    parse(copy.deepcopy(data))  # the unchanged file is fine
    change(data)
    with pytest.raises(DictionaryError, match=message):
        parse(data)


def test_strict_guard_raises_on_a_value_outside_the_closed_set() -> None:
    m = Metrics(strict=True)
    m.ingest_rejections.labels("missing_field").inc()
    with pytest.raises(MetricLabelError, match="reason='db_busy'"):
        m.ingest_rejections.labels("db_busy")  # a database reason, not an ingest rejection code
    with pytest.raises(MetricLabelError):
        m.http_requests.labels(route="/x", method="BREW", status_class="2xx")
    m.http_requests.labels(route="/any/{template}", method="GET", status_class="2xx").inc()  # route is bounded


def test_lenient_guard_folds_to_other_and_counts_the_violation() -> None:
    m = Metrics(CollectorRegistry(), strict=False)
    m.redis_errors.labels("kaboom").inc()
    m.redis_errors.labels("redis_timeout").inc()
    text = generate_latest(m.registry).decode()
    assert 'faultlens_redis_errors_total{reason="other"} 1.0' in text
    assert 'faultlens_redis_errors_total{reason="redis_timeout"} 1.0' in text
    assert 'faultlens_metric_label_violations_total{label="reason",metric="redis_errors_total"} 1.0' in text
    assert "kaboom" not in text


def test_metrics_take_names_help_and_buckets_from_the_dictionary() -> None:
    m = Metrics(namespace="acme")
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(m.registry).decode())}
    spec = load().metric("ingest_batch_duration_seconds")
    assert families["acme_ingest_batch_duration_seconds"].documentation == spec.help
    m.ingest_batch_seconds.observe(0.001)
    text = generate_latest(m.registry).decode()
    assert spec.buckets is not None
    bounds = re.findall(r'acme_ingest_batch_duration_seconds_bucket\{le="([^"]+)"\}', text)
    assert [float(b) for b in bounds[:-1]] == list(spec.buckets) and bounds[-1] == "+Inf"
    assert all(name.startswith("acme_") for name in families)


def test_every_served_process_metric_is_built_by_metrics_or_a_collector() -> None:
    """A dictionary entry no code registers fails here (the integration test scrapes the rest after a workload)."""
    m = Metrics()
    registered = {f.name for f in text_string_to_metric_families(generate_latest(m.registry).decode())}
    by_full = load().by_full_name("faultlens")
    built = {by_full.get(n, by_full.get(f"{n}_total")) for n in registered}
    names = {spec.name for spec in built if spec is not None}
    # Registered elsewhere on the same registry: the jobs collector and the task counters (services.py wires them).
    elsewhere = {"jobs_running", "jobs_pending", "jobs_progress_ratio", "jobs_lag_seconds"}
    elsewhere |= {"tasks_retention_items_total", "tasks_requeued_total"}
    process = {s.name for s in load().metrics if s.scope == "process" and s.served}
    assert process - names - elsewhere == set()


def test_namespace_setting() -> None:
    assert Settings().obs_metrics_namespace == "faultlens"
    assert Settings(obs_metrics_namespace="acme_fl").obs_metrics_namespace == "acme_fl"
    with pytest.raises(ValidationError):
        Settings(obs_metrics_namespace="9lives")
    with pytest.raises(ValidationError):
        Settings(obs_metrics_namespace="a-b")
    assert load().namespace(Settings(obs_metrics_namespace="x1")) == "x1"


@pytest.mark.parametrize("variable", ["OBS_METRICS_NAMESPACE", "FAULTLENS_OBS_METRICS_NAMESPACE"])
def test_namespace_from_the_environment(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "ops_fl")
    assert Settings().obs_metrics_namespace == "ops_fl"
    monkeypatch.setenv(variable, "ops-fl")
    with pytest.raises(ValidationError):
        Settings()


def test_route_template_never_the_raw_path() -> None:
    class Route:
        path = "/api/v1/events/{event_id}"

    assert route_template({"route": Route(), "path": "/api/v1/events/e-123"}) == "/api/v1/events/{event_id}"
    assert route_template({"path": "/api/v1/events/e-123"}) == UNMATCHED


def test_docs_metrics_md_is_generated_from_the_dictionary() -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert committed == render_docs(), "regenerate: python -m faultlens.metric_dictionary --docs > docs/metrics.md"
    for spec in load().metrics:
        assert f"`faultlens_{spec.name}`" in committed
    done = subprocess.run(
        [sys.executable, "-m", "faultlens.metric_dictionary", "--docs"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout == committed


def test_docs_entry_point_usage() -> None:
    assert metric_dictionary.main([]) == 2
