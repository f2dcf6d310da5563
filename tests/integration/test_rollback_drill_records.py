"""Rollback drill records through the API on real databases: POST /api/v1/releases/rollbacks/drills stores a drill
record with its markdown report, GET .../rollbacks/{id}/report answers it (404 without one, and for another tenant),
lists and answers carry has_report but never the report, and readiness' rollback check names the drill it used."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.releases import rollouts
from faultlens.services import Services
from faultlens.store import keys
from faultlens.timeutil import ms_to_rfc3339, now_ms, parse_rfc3339_ms
from tests.conftest import make_services

MINUTE = 60_000
REPORT = "# rollback drill: PASS\n\n| t (s) | what |\n|---|---|\n| 0.00 | starts |\n"


@pytest.fixture
def svc(db_url: str) -> Iterator[Services]:
    s = make_services(db_url, start_jobs=False)
    yield s
    s.engine.dispose()


@pytest.fixture
def http(svc: Services) -> Iterator[TestClient]:
    with TestClient(create_app(svc)) as c:
        yield c


def _key(svc: Services, tenant: str, *scopes: str) -> dict[str, str]:
    with svc.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def _body(**over: Any) -> dict[str, Any]:
    now = now_ms()
    body: dict[str, Any] = {
        "release": "drill-bad",
        "baseline": "drill-good",
        "environment": "staging",
        "decided_at": ms_to_rfc3339(now - 5 * MINUTE),
        "completed_at": ms_to_rfc3339(now - 4 * MINUTE),
        "recovered": True,
        "report": {"format": "markdown", "text": REPORT},
    }
    body.update(over)
    return body


def test_a_drill_record_with_its_report(svc: Services, http: TestClient) -> None:
    admin = _key(svc, "acme", "admin")
    reader = _key(svc, "acme", "read")
    other = _key(svc, "globex", "admin", "read")
    assert http.post("/api/v1/releases/rollbacks/drills", json=_body(), headers=reader).status_code == 403
    made = http.post("/api/v1/releases/rollbacks/drills", json=_body(), headers=admin)
    assert made.status_code == 201, made.text
    rb = made.json()
    assert rb["drill"] is True and rb["has_report"] is True and rb["recovery_state"] == "recovered"
    assert rb["rollout_id"] is None and rb["baseline"] == "drill-good" and "report" not in rb
    span = parse_rfc3339_ms(rb["deadline_at"]) - parse_rfc3339_ms(rb["decided_at"])
    assert span == int(svc.settings.rollback_max_minutes * MINUTE)

    report = http.get(f"/api/v1/releases/rollbacks/{rb['id']}/report", headers=reader)
    assert report.status_code == 200 and report.text == REPORT
    assert report.headers["content-type"] == "text/markdown; charset=utf-8"
    # Another tenant's id answers exactly like an unknown one.
    theirs = http.get(f"/api/v1/releases/rollbacks/{rb['id']}/report", headers=other)
    unknown = http.get("/api/v1/releases/rollbacks/no-such-id/report", headers=other)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"] == "rollback_not_found"

    listed = http.get("/api/v1/releases/rollbacks", headers=reader).json()["rollbacks"]
    assert [(r["id"], r["has_report"]) for r in listed] == [(rb["id"], True)]
    assert all("report" not in r for r in listed)
    assert http.get("/api/v1/releases/rollbacks", headers=other).json()["rollbacks"] == []

    # A drill recorded without a report (record_drill from Python): the report route says 404.
    bare = rollouts.record_drill(
        svc.engine,
        tenant="acme",
        release="drill-bad",
        environment="staging",
        source=None,
        created_by="test",
        decided_at=now_ms() - MINUTE,
        completed_at=now_ms(),
        recovered=True,
    )
    assert bare["has_report"] is False
    none = http.get(f"/api/v1/releases/rollbacks/{bare['id']}/report", headers=reader)
    assert none.status_code == 404 and "no drill report" in none.json()["error"]["message"]


def test_readiness_names_the_drill_it_passed_on(svc: Services, http: TestClient) -> None:
    admin = _key(svc, "acme", "admin", "read")
    rb = http.post("/api/v1/releases/rollbacks/drills", json=_body(), headers=admin).json()
    ready = http.post("/api/v1/releases/readiness", json={"release": "v7", "environment": "staging"}, headers=admin)
    assert ready.status_code == 200, ready.text
    check = ready.json()["checks"]["rollback"]
    assert check["passed"] is True
    assert {k: check["evidence"]["rollback"][k] for k in ("id", "drill", "has_report")} == {
        "id": rb["id"],
        "drill": True,
        "has_report": True,
    }
    timeline = http.get("/api/v1/releases/timeline", params={"release": "v7"}, headers=admin).json()
    assert timeline["readiness"][0]["rollback"] == {"id": rb["id"], "drill": True, "has_report": True}
    drills = http.get("/api/v1/releases/timeline", params={"release": "drill-bad"}, headers=admin).json()
    assert [(r["id"], r["has_report"]) for r in drills["rollbacks"]] == [(rb["id"], True)]


@pytest.mark.parametrize(
    "over",
    [
        {"decided_at": "yesterday"},
        {"completed_at": ms_to_rfc3339(now_ms() - 10 * MINUTE)},  # before decided_at
        {"report": {"format": "html", "text": "<p>x</p>"}},
        {"report": {"format": "markdown", "text": ""}},
        {"recovered": "yes"},
        {"unknown": 1},
        {"environment": ""},
    ],
)
def test_bad_drill_records_answer_the_error_body(svc: Services, http: TestClient, over: dict[str, Any]) -> None:
    admin = _key(svc, "acme", "admin")
    answer = http.post("/api/v1/releases/rollbacks/drills", json=_body(**over), headers=admin)
    assert answer.status_code in (400, 422) and "error" in answer.json(), answer.text
    assert http.get("/api/v1/releases/rollbacks", headers=admin).json()["rollbacks"] == []
