"""deploy/: the generated files are committed as generated, promtool accepts and tests the rules, and a real
Prometheus scrapes a running faultlens with an operator key, reads a metric back and loads the rule files."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from faultlens import metric_dictionary
from faultlens.api.app import create_app
from faultlens.deploy_assets import __main__ as generator
from faultlens.deploy_assets import dashboard, rules, scrape
from faultlens.store import keys
from tests.conftest import make_services, missing_service
from tests.helpers import event
from tests.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing_service(f"{name} is not installed (Debian package prometheus)")
        raise AssertionError("unreachable")
    return found


def _run(*argv: str, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_committed_files_equal_a_fresh_generation() -> None:
    fresh = generator.generate("faultlens")
    committed = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file() and p.name != "README.md"}
    assert committed == set(fresh), "run `make deploy-assets`"
    for rel, text in fresh.items():
        assert (DEPLOY / rel).read_text() == text, f"deploy/{rel} is stale: run `make deploy-assets`"


def test_every_served_metric_has_a_panel_and_names_come_from_the_namespace() -> None:
    dictionary = metric_dictionary.load()
    built = dashboard.build(dictionary, "acme")
    exprs = [t["expr"] for p in built["panels"] if p["type"] != "row" for t in p["targets"]]
    for spec in dictionary.metrics:
        used = any(re.search(rf"\b{spec.full_name('acme')}(_bucket)?\{{", e) for e in exprs)
        assert used == spec.served, spec.name
    assert not any("faultlens_" in e for e in exprs)
    groups = rules.alert_groups(dictionary, "acme") + rules.recording_groups(dictionary, "acme")
    assert "faultlens_" not in yaml.safe_dump(groups)


def test_every_alert_has_a_severity_and_a_runbook_section_naming_a_dashboard_panel() -> None:
    dictionary = metric_dictionary.load()
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    titles = dashboard.panel_titles(dashboard.build(dictionary, "faultlens"))
    alerts = rules.alerts(dictionary, "faultlens")
    assert len(alerts) >= 4
    for alert in alerts:
        rule = alert.rule()
        assert rule["labels"]["severity"] in {"P0", "P1", "P2"}
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{alert.name}"
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        section = runbook.split(f'<a id="{alert.name}"></a>', 1)
        assert len(section) == 2, f"docs/runbook.md has no section for {alert.name}"
        body = section[1].split('<a id="', 1)[0]
        # bold names a dashboard panel, nothing else (a name may wrap across lines)
        panels = [" ".join(p.split()) for p in re.findall(r"\*\*(.+?)\*\*", body, flags=re.S)]
        assert panels and set(panels) <= titles, (alert.name, panels)
        assert 'resource.service.name = "faultlens"' in body and "LOG | jq " in body, alert.name
    assert {a.severity for a in alerts if "BurnFast" in a.name} == {"P0"}


def test_promtool_checks_the_rules_and_runs_a_unit_test_per_alert() -> None:
    promtool = _tool("promtool")
    out = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES)
    alerts = rules.alerts(metric_dictionary.load(), "faultlens")
    tests = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
    assert {p.name for p in tests} == {f"{a.name}.test.yml" for a in alerts}
    for path in tests:
        cases = yaml.safe_load(path.read_text())["tests"]
        fired = [bool(t["alert_rule_test"][0]["exp_alerts"]) for t in cases]
        assert sorted(fired) == [False, True], f"{path.name}: one case fires, one does not"
        assert "SUCCESS" in _run(promtool, "test", "rules", str(path.relative_to(PROMETHEUS)))


def test_promtool_fails_a_rule_that_does_not_fire(tmp_path: Path) -> None:
    """The unit tests can fail: the same test file against an alert whose threshold can never be crossed."""
    promtool = _tool("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        if "alerts" in path.name:
            text = text.replace("> 0.05", "> 1000000")  # FaultlensDatabaseErrors
        (tmp_path / "rules" / path.name).write_text(text)
    name = "FaultlensDatabaseErrors.test.yml"
    shutil.copy(PROMETHEUS / "tests" / name, tmp_path / "tests" / name)
    done = subprocess.run(
        [promtool, "test", "rules", f"tests/{name}"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "FaultlensDatabaseErrors" in done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prometheus_bin() -> str:
    return _tool("prometheus")


def _wait(what: str, check: Any, deadline_s: float = 30.0) -> Any:
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last and not isinstance(last, Exception):
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what} within {deadline_s}s; last: {last!r}")


@pytest.fixture
def running_prometheus(prometheus_bin: str, sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(Prometheus URL, faultlens URL): faultlens serving, Prometheus scraping it every second."""
    services = make_services(sqlite_url)
    with services.engine.begin() as conn:
        _, operator = keys.create_key(conn, tenant="ops", scopes=["ingest", "read", "operator"])
    key_file = tmp_path / "operator-key"
    key_file.write_text(operator)
    try:
        with LiveServer(create_app(services)) as server:
            config = scrape.config(
                target=f"127.0.0.1:{server.port}",
                credentials_file=str(key_file),
                rule_files=[str(p) for p in RULE_FILES],
                interval="1s",
            )
            config_file = tmp_path / "prometheus.yml"
            config_file.write_text(yaml.safe_dump(config, sort_keys=False))
            port = _free_port()
            log = (tmp_path / "prometheus.log").open("w")
            process = subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                r = httpx.post(
                    f"{server.url}/api/v1/events",
                    json=[event(id="p1"), event(id="p2")],
                    headers={"Authorization": f"Bearer {operator}"},
                    timeout=10,
                )
                assert r.status_code == 200, r.text
                yield f"http://127.0.0.1:{port}", server.url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
                log.close()
    finally:
        services.engine.dispose()


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_a_real_prometheus_scrapes_faultlens_and_loads_the_rules(running_prometheus: tuple[str, str]) -> None:
    prometheus, _faultlens = running_prometheus
    up = _wait("a successful scrape", lambda: _query(prometheus, 'up{job="faultlens"} == 1'))
    assert up[0]["metric"]["job"] == "faultlens"
    accepted = _wait(
        "faultlens_ingest_events_total in Prometheus",
        lambda: _query(prometheus, 'faultlens_ingest_events_total{job="faultlens",outcome="accepted"}'),
    )
    assert float(accepted[0]["value"][1]) == 2

    def loaded() -> list[dict[str, Any]]:
        r = httpx.get(f"{prometheus}/api/v1/rules", timeout=5)
        r.raise_for_status()
        groups: list[dict[str, Any]] = r.json()["data"]["groups"]
        return groups if all(rule["health"] == "ok" for g in groups for rule in g["rules"]) else []

    groups = _wait("the rule files loaded and evaluated", loaded)
    dictionary = metric_dictionary.load()
    expected = rules.recording_groups(dictionary, "faultlens") + rules.alert_groups(dictionary, "faultlens")
    assert {g["name"]: len(g["rules"]) for g in groups} == {g["name"]: len(g["rules"]) for g in expected}
    alerts = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert alerts["FaultlensIngestAvailabilityBurnFast"]["labels"]["severity"] == "P0"
    assert alerts["FaultlensIngestAvailabilityBurnFast"]["state"] == "inactive"
