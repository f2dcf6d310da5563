"""The rollback drill, fast mode: a bad canary decides a rollback, recovery is confirmed and timed, and the drill's
record (POST /api/v1/releases/rollbacks/drills) passes readiness' rollback check; send_record against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.drills import report
from faultlens.drills.harness import DrillConfig, DrillResult, run_drill
from faultlens.drills.scenarios import rollback
from faultlens.services import Services
from faultlens.store import keys
from tests.conftest import make_services


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> DrillResult:
    cfg = DrillConfig(
        time_scale=0.1, work_dir=tmp_path_factory.mktemp("rollback"), server_settings={"obs_metrics_strict": True}
    )
    return run_drill(rollback.DRILL, cfg)


def test_rollback_drill_passes_with_its_evidence(result: DrillResult) -> None:
    assert result.verdict == "pass", report.render_markdown([result])
    assert result.duration_s < 30
    names = {c.name for c in result.checks if c.ok}
    assert "the rollout decided rollback" in names
    assert "recovered within ROLLBACK_MAX_MINUTES" in names
    assert "readiness' rollback check in drill-record passes from this drill record" in names
    seconds = result.metric_deltas["rollback_decision_to_recovery_seconds"]
    assert 0 < seconds < 30
    [line] = [x for x in result.log_lines if x.get("msg") == rollback.RECORD_LINE]
    assert line["recovered"] is True and line["recovery_seconds"] == seconds
    assert result.lost == 0


@pytest.fixture
def team(sqlite_url: str) -> Iterator[tuple[Services, TestClient, str]]:
    svc = make_services(sqlite_url, start_jobs=False)
    with svc.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant="team", scopes=["admin", "read"], name="lead")
    with TestClient(create_app(svc)) as client:
        yield svc, client, secret
    svc.engine.dispose()


def test_the_drill_record_goes_to_the_team_faultlens(
    result: DrillResult, team: tuple[Services, TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client, secret = team
    body = rollback.drill_record(result, environment="production", source="checkout")
    assert body["report"]["text"] == report.render_markdown([result])
    assert body["recovered"] is True and body["environment"] == "production"

    # send_record posts with httpx; here it reaches the in-process app (which takes no deadline of its own).
    deadlines: list[float] = []

    def post(url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
        deadlines.append(timeout)
        answer: httpx.Response = client.post(url, **kwargs)
        return answer

    monkeypatch.setattr(httpx, "post", post)
    stored = rollback.send_record(
        result, url="http://testserver", key=secret, environment="production", source="checkout", timeout_s=7.5
    )
    assert deadlines == [7.5]
    assert stored["drill"] is True and stored["has_report"] is True and stored["recovery_state"] == "recovered"
    answer = client.get(
        f"/api/v1/releases/rollbacks/{stored['id']}/report", headers={"Authorization": f"Bearer {secret}"}
    )
    assert answer.status_code == 200 and answer.text == body["report"]["text"]


def test_drill_record_refuses_a_result_without_a_recovery(result: DrillResult) -> None:
    empty = DrillResult(**{**result.__dict__, "log_lines": []})
    with pytest.raises(ValueError, match="nothing to record"):
        rollback.drill_record(empty, environment="production")
