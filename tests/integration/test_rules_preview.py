"""Rules API on SQLite and PostgreSQL: preview moves without writing, active packs, activation checks, CLI diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from faultlens.classify.rules import default_pack
from faultlens.cli import rules_diff
from faultlens.services import Services
from faultlens.store.tables import jobs, rollups, service_state
from tests.conftest import make_services
from tests.helpers import ago, event
from tests.integration.test_backfill import OPS_PACK, derived_by_id

# Moves downstream_closed (client_abort) to service_failure, and deadlocks (service_failure) to a new kind.
CANDIDATE: dict[str, Any] = {
    "id": "candidate@2026-12-10",
    "rules": [
        OPS_PACK["rules"][0],
        {
            "name": "deadlock_is_contention",
            "match": {"error_message": ["deadlock detected"]},
            "failure_kind": "db_contention",
            "failure_class": "service_failure",
            "category": "conflict",
            "examples": [{"error_message": "deadlock detected"}],
        },
    ],
}


def _load(api: TestClient) -> None:
    batch = (
        [event(id=f"closed{i}", error_message="downstream_closed", operation=f"op{i % 3}") for i in range(7)]
        + [event(id=f"lock{i}", error_message="deadlock detected") for i in range(2)]
        + [event(id=f"up{i}", error_message="failed_contact_upstream") for i in range(4)]
        + [event(id=f"ok{i}", status="success") for i in range(5)]
        + [event(id="old-closed", error_message="downstream_closed", occurred_at=ago(days=3))]
    )
    r = api.post("/api/v1/events", json=batch)
    assert r.json()["accepted"] == len(batch), r.text


def _state(quiet: Services) -> tuple[Any, ...]:
    with quiet.engine.connect() as conn:
        return (
            derived_by_id(quiet),
            conn.execute(select(func.count()).select_from(jobs)).scalar(),
            sorted(conn.execute(select(service_state.c.key, service_state.c.value)).all()),
            sorted(tuple(r) for r in conn.execute(select(rollups)).all()),
        )


def test_preview_lists_the_moves_and_writes_nothing(quiet: Services, api: TestClient) -> None:
    _load(api)
    before = _state(quiet)
    r = api.post("/api/v1/rules/preview", json=CANDIDATE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_examined"] == 18 and body["total_changed"] == 9
    assert [(m["from"], m["to"], m["count"]) for m in body["moves"]] == [
        (
            {"failure_class": "client_abort", "failure_kind": "downstream_closed"},
            {"failure_class": "service_failure", "failure_kind": "proxy_closed"},
            7,
        ),
        (
            {"failure_class": "service_failure", "failure_kind": quiet_kind(quiet, "deadlock detected")},
            {"failure_class": "service_failure", "failure_kind": "db_contention"},
            2,
        ),
    ]
    closed = body["moves"][0]["sample_ids"]
    assert len(closed) == 5 and len(set(closed)) == 5 and all(i.startswith("closed") for i in closed)
    assert sorted(body["moves"][1]["sample_ids"]) == ["lock0", "lock1"]
    assert body["candidate_version"] == f"candidate@2026-12-10+{default_pack().id}"
    assert _state(quiet) == before
    assert quiet.pipeline.classifier.version == default_pack().id

    week = api.post("/api/v1/rules/preview", params={"window": "7d"}, json=CANDIDATE).json()
    assert week["total_examined"] == 19 and week["moves"][0]["count"] == 8
    assert api.post("/api/v1/rules/preview", json={"id": "noop@2026-12-11", "rules": []}).json() == {
        "candidate_version": f"noop@2026-12-11+{default_pack().id}",
        "window": "24h",
        "total_examined": 18,
        "total_changed": 0,
        "moves": [],
    }


def quiet_kind(services: Services, message: str) -> str:
    return str(services.pipeline.classifier.classify(status="failure", error_message=message).failure_kind)


def test_bad_candidates_get_a_clear_error(api: TestClient) -> None:
    bad_rule = {"id": "bad@2026-12-10", "rules": [{**CANDIDATE["rules"][0], "failure_class": "whatever"}]}
    cases = [
        (api.post("/api/v1/rules/preview", json=bad_rule), 400, "invalid_rule_pack"),
        (api.post("/api/v1/rules/preview", json={"rules": []}), 400, "invalid_rule_pack"),
        (api.post("/api/v1/rules/preview", json=[1, 2]), 400, "invalid_rule_pack"),
        (
            api.post("/api/v1/rules/preview", content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "invalid_json",
        ),
        (api.post("/api/v1/rules/preview", params={"window": "5y"}, json=CANDIDATE), 400, "invalid_request"),
        (api.post("/api/v1/rules/preview", json={"id": default_pack().id, "rules": []}), 400, "invalid_rule_pack"),
        (api.post("/api/v1/rules/activate", json=bad_rule), 400, "invalid_rule_pack"),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (r.request.url, r.text)
        body = r.json()
        assert (
            set(body) == {"error", "request_id", "correlation_id", "trace_id"}
            and body["error"]["code"] == code
            and body["error"]["message"]
        )
    assert "failure_class" in cases[0][0].json()["error"]["message"]


def test_activation_refuses_unsafe_or_ambiguous_packs(quiet: Services, api: TestClient) -> None:
    wrong_example = {
        "id": "ops@2026-12-12",
        "rules": [{**OPS_PACK["rules"][0], "examples": [{"error_message": "something else entirely"}]}],
    }
    r = api.post("/api/v1/rules/activate", json=wrong_example)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_rule_pack"
    assert r.json()["error"]["details"]["example_failures"][0]["rule"] == "closed_is_ours"
    assert quiet.pipeline.classifier.version == default_pack().id

    assert api.post("/api/v1/rules/activate", json=OPS_PACK).json()["changed"] is True
    edited = {**OPS_PACK, "rules": [{**OPS_PACK["rules"][0], "failure_kind": "renamed_kind"}]}
    r = api.post("/api/v1/rules/activate", json=edited)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert "new id" in r.json()["error"]["message"]


def test_rules_endpoint_shows_active_packs(quiet: Services, api: TestClient) -> None:
    body = api.get("/api/v1/rules").json()
    default = default_pack()
    assert body["active_version"] == default.id and body["backfill"] is None
    assert body["packs"] == [
        {
            "id": default.id,
            "description": default.description,
            "rules": len(default.rules),
            "origin": "default",
            "scope": "global",
        }
    ]
    _load(api)
    api.post("/api/v1/rules/activate", json=CANDIDATE)
    body = api.get("/api/v1/rules").json()
    assert body["active_version"] == body["recorded_version"] == f"candidate@2026-12-10+{default.id}"
    assert [(p["id"], p["rules"], p["origin"], p["scope"]) for p in body["packs"]] == [
        ("candidate@2026-12-10", 2, "activated", "tenant"),
        (default.id, len(default.rules), "default", "global"),
    ]
    assert body["global_version"] == default.id
    assert body["backfill"]["state"] == "pending"


def test_cli_rules_diff_prints_the_preview(quiet: Services, api: TestClient, db_url: str, tmp_path: Path) -> None:
    _load(api)
    pack_file = tmp_path / "candidate.json"
    pack_file.write_text(json.dumps(CANDIDATE))
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the `faultlens rules` group."""

    rules_diff.register(app)
    cli = CliRunner()
    result = cli.invoke(app, ["diff", str(pack_file), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["window"], body["total_examined"], body["total_changed"]) == ("7d", 19, 10)
    table = cli.invoke(app, ["diff", str(pack_file), "--db", db_url, "--window", "24h"])
    assert table.exit_code == 0, table.output
    assert "proxy_closed" in table.stdout and "9 of 18 events would change" in table.stdout
    bad = cli.invoke(app, ["diff", str(pack_file), "--db", db_url, "--window", "3y"])
    assert bad.exit_code == 2


def test_cli_rules_diff_layers_the_candidate_over_the_live_packs(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server runs with --rules (the ops pack); a candidate that only adds a deadlock rule must move the
    # deadlocks alone. Layered over the default pack only, it would also "move back" every downstream_closed.
    ops_file = tmp_path / "ops.json"
    ops_file.write_text(json.dumps(OPS_PACK))
    svc = make_services(db_url, start_jobs=False, rules_file=ops_file)
    batch = [event(id=f"closed{i}", error_message="downstream_closed") for i in range(4)]
    batch += [event(id=f"dead{i}", error_message="deadlock detected") for i in range(3)]
    assert svc.pipeline.ingest(batch, tenant="default").accepted == 7
    svc.engine.dispose()
    candidate = {"id": "deadlocks@2026-12-10", "rules": [CANDIDATE["rules"][1]]}
    pack_file = tmp_path / "candidate.json"
    pack_file.write_text(json.dumps(candidate))
    monkeypatch.setenv("FAULTLENS_RULES_FILE", str(ops_file))
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the `faultlens rules` group."""

    rules_diff.register(app)
    result = CliRunner().invoke(app, ["diff", str(pack_file), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["total_changed"] == 3, body
    assert [m["to"]["failure_kind"] for m in body["moves"]] == ["db_contention"]
