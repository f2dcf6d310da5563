"""Rule packs per tenant on SQLite and PostgreSQL: isolation, the operator-only global pack, exact backfill counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from faultlens.api.app import create_app
from faultlens.classify.rules import default_pack
from faultlens.jobs import runner
from faultlens.jobs.rollup_rebuild import ensure_rollup_rebuild
from faultlens.rulepacks import activation
from faultlens.services import Services
from faultlens.store import keys
from faultlens.store.tables import events
from tests.conftest import make_services
from tests.helpers import ago, event
from tests.integration.test_backfill import OPS_PACK, assert_classified_by, assert_rollups_exact, mixed_events
from tests.integration.test_rules_preview import CANDIDATE

DEFAULT = default_pack().id
OPS_VERSION = f"ops@2026-12-01+{DEFAULT}"
# globex's own pack: the upstream's refusals are the caller's problem there.
GLOBEX_PACK: dict[str, Any] = {
    "id": "globex@2026-12-02",
    "rules": [
        {
            "name": "upstream_is_theirs",
            "match": {"text": ["failed_contact_upstream"]},
            "failure_kind": "upstream_refused",
            "failure_class": "client_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "failed_contact_upstream"}],
        }
    ],
}


@pytest.fixture
def quiet(db_url: str) -> Iterator[Services]:
    svc = make_services(db_url, start_jobs=False)
    ensure_rollup_rebuild(svc.engine)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(quiet: Services) -> Iterator[TestClient]:
    with TestClient(create_app(quiet)) as c:
        yield c


def _key(services: Services, tenant: str, *scopes: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def _rows(services: Services, tenant: str) -> dict[str, dict[str, Any]]:
    """Every stored field of a tenant's events, by id."""
    with services.engine.connect() as conn:
        found = conn.execute(select(events).where(events.c.tenant == tenant)).mappings()
        return {r["id"]: dict(r) for r in found}


def _summary(client: TestClient, headers: dict[str, str]) -> tuple[int, int, int, int]:
    s = client.get("/api/v1/stats/summary", headers=headers).json()
    return s["total"], s["client_abort_count"], s["service_failure_count"], s["client_failure_count"]


def test_a_tenant_admin_changes_its_own_tenant_only(quiet: Services, client: TestClient, db_url: str) -> None:
    acme, globex = _key(quiet, "acme", "admin"), _key(quiet, "globex", "admin")
    acme_reader = _key(quiet, "acme", "read")
    client.app.state.keys_present.checked = 0  # type: ignore[attr-defined]
    for headers in (acme, globex):
        assert client.post("/api/v1/events", json=mixed_events(12), headers=headers).json()["accepted"] == 12
    acme_before = _rows(quiet, "acme")
    assert _summary(client, acme) == (12, 4, 4, 0)

    r = client.post("/api/v1/rules/activate", json=OPS_PACK, headers=globex)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["scope"], body["changed"], body["active_version"]) == ("tenant", True, OPS_VERSION)
    assert (body["backfill"]["scope"], body["backfill"]["tenant"]) == ("tenant", "globex")
    job_id = body["backfill"]["id"]
    ended = runner.run_until_idle(quiet)
    assert [(j.id, j.state, j.done, j.params["changed"]) for j in ended] == [(job_id, "done", 12, 4)]

    # acme: not one row touched, stats as before; globex: its aborts became service failures.
    assert _rows(quiet, "acme") == acme_before
    assert _summary(client, acme) == (12, 4, 4, 0)
    assert _summary(client, globex) == (12, 0, 8, 0)
    assert_rollups_exact(quiet)  # the default tenant's rollups: none; the helper checks every tenant's rows
    assert_classified_by(quiet)

    # acme sees neither globex's pack nor its job; globex sees both.
    acme_rules = client.get("/api/v1/rules", headers=acme_reader).json()
    assert acme_rules["active_version"] == DEFAULT and acme_rules["backfill"] is None
    assert [(p["id"], p["scope"]) for p in acme_rules["packs"]] == [(DEFAULT, "global")]
    globex_rules = client.get("/api/v1/rules", headers=globex).json()
    assert globex_rules["active_version"] == globex_rules["recorded_version"] == OPS_VERSION
    assert [(p["id"], p["origin"], p["scope"]) for p in globex_rules["packs"]] == [
        ("ops@2026-12-01", "activated", "tenant"),
        (DEFAULT, "default", "global"),
    ]
    assert client.get("/api/v1/jobs", headers=acme_reader).json() == {"items": []}
    assert [j["id"] for j in client.get("/api/v1/jobs", headers=globex).json()["items"]] == [job_id]
    r = client.get(f"/api/v1/jobs/{job_id}", headers=acme_reader)
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"

    # New events: each tenant's with its own rules.
    for headers in (acme, globex):
        client.post("/api/v1/events", json=[event(id="late", error_message="downstream_closed")], headers=headers)
    assert client.get("/api/v1/events/late", headers=acme).json()["failure_kind"] == "downstream_closed"
    assert client.get("/api/v1/events/late", headers=globex).json()["failure_kind"] == "proxy_closed"

    # A replica adopts the tenant pack on its runner's poll, and classifies globex alone with it.
    replica = make_services(db_url, start_jobs=False)
    try:
        assert replica.classifier_for("globex").version == OPS_VERSION  # loaded at start
        assert not activation.follow_activation(replica)
    finally:
        replica.engine.dispose()


def test_a_replica_follows_a_tenant_activation(quiet: Services, db_url: str) -> None:
    replica = make_services(db_url, start_jobs=False)
    try:
        assert replica.classifier_for("globex").version == DEFAULT
        activation.activate(quiet, activation.parse_pack(OPS_PACK), OPS_PACK, tenant="globex")
        assert activation.follow_activation(replica)
        assert replica.classifier_for("globex").version == OPS_VERSION
        assert replica.classifier_for("acme") is replica.pipeline.classifier
        assert not activation.follow_activation(replica), "nothing new to adopt"
        # Tenants with equal packs share one classifier (and its caches).
        activation.activate(quiet, activation.parse_pack(OPS_PACK), OPS_PACK, tenant="initech")
        assert activation.follow_activation(replica)
        assert replica.classifier_for("initech") is replica.classifier_for("globex")
    finally:
        replica.engine.dispose()


def test_the_global_pack_needs_the_operator_scope_and_reaches_every_tenant(quiet: Services, client: TestClient) -> None:
    acme, globex = _key(quiet, "acme", "admin"), _key(quiet, "globex", "admin")
    operator = _key(quiet, "ops-team", "operator")
    client.app.state.keys_present.checked = 0  # type: ignore[attr-defined]
    for headers in (acme, globex):
        assert client.post("/api/v1/events", json=mixed_events(12), headers=headers).json()["accepted"] == 12
    assert client.post("/api/v1/rules/activate", json=GLOBEX_PACK, headers=globex).json()["changed"] is True
    runner.run_until_idle(quiet)

    for headers in (acme, globex):
        r = client.post("/api/v1/rules/activate", params={"scope": "global"}, json=OPS_PACK, headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"] == {"required_scope": "operator"}
    assert quiet.pipeline.classifier.version == DEFAULT
    r = client.post("/api/v1/rules/activate", params={"scope": "bogus"}, json=OPS_PACK, headers=operator)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"

    r = client.post("/api/v1/rules/activate", params={"scope": "global"}, json=OPS_PACK, headers=operator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["scope"], body["active_version"], body["backfill"]["scope"]) == ("global", OPS_VERSION, "global")
    # The global job is every tenant's context: both see it, read-only.
    for headers in (acme, globex):
        items = client.get("/api/v1/jobs", headers=headers, params={"state": "pending"}).json()["items"]
        assert [(j["id"], j["scope"], j["tenant"]) for j in items] == [(body["backfill"]["id"], "global", None)]
    ended = runner.run_until_idle(quiet)
    # acme: its 4 aborts move. globex: its own pack still decides the upstream failures, the aborts move.
    assert [(j.state, j.done, j.params["changed"]) for j in ended] == [("done", 24, 8)]
    assert _summary(client, acme) == (12, 0, 8, 0)
    assert _summary(client, globex) == (12, 0, 4, 4)
    assert quiet.classifier_for("globex").version == f"globex@2026-12-02+{OPS_VERSION}"
    globex_rules = client.get("/api/v1/rules", headers=globex).json()
    assert [(p["id"], p["origin"], p["scope"]) for p in globex_rules["packs"]] == [
        ("globex@2026-12-02", "activated", "tenant"),
        ("ops@2026-12-01", "activated", "global"),
        (DEFAULT, "default", "global"),
    ]
    assert_classified_by(quiet)
    # A global pack reusing a tenant pack's id would not layer under it: refused before anything changes.
    clash = {**GLOBEX_PACK, "rules": OPS_PACK["rules"]}
    r = client.post("/api/v1/rules/activate", params={"scope": "global"}, json=clash, headers=operator)
    assert r.status_code == 409 and r.json()["error"]["details"] == {"tenants": ["globex"]}
    assert quiet.pipeline.classifier.version == OPS_VERSION


def _preview_data() -> list[dict[str, Any]]:
    return (
        mixed_events(30)
        + [event(id=f"lock{i}", error_message="deadlock detected", occurred_at=ago(days=i + 1)) for i in range(3)]
        + [event(id=f"gw{i}", http_status=502, error_message=f"bad gateway #{i}") for i in range(4)]
        + [event(id=f"nomatch{i}", error_message=f"something odd {i}") for i in range(2)]
    )


def test_preview_counts_exactly_what_the_backfill_changes(quiet: Services, client: TestClient) -> None:
    acme = _key(quiet, "acme", "admin")
    client.app.state.keys_present.checked = 0  # type: ignore[attr-defined]
    assert client.post("/api/v1/events", json=_preview_data(), headers=acme).json()["accepted"] == 39
    upstream = quiet.pipeline.classifier.classify(status="failure", error_message="failed_contact_upstream")
    # The preview tests' candidate (moves aborts, renames the deadlock kind) plus a rule deciding the upstream
    # failures with the same class and kind: a change the backfill writes (rule_name) that preview shows as a move
    # onto the same pair.
    candidate = {
        **CANDIDATE,
        "rules": [
            *CANDIDATE["rules"],
            {
                "name": "upstream_same_outcome",
                "match": {"text": ["failed_contact_upstream"]},
                "failure_kind": upstream.failure_kind,
                "failure_class": upstream.failure_class.value,
                "category": upstream.category,
                "is_actionable": upstream.is_actionable,
                "retryable": upstream.retryable,
                "examples": [{"error_message": "failed_contact_upstream"}],
            },
        ],
    }
    preview = client.post("/api/v1/rules/preview", params={"window": "90d"}, json=candidate, headers=acme).json()
    # 10 aborts, 3 deadlocks, 10 upstream failures (rule only); the 10 successes and the rest are untouched.
    assert (preview["total_examined"], preview["total_changed"]) == (39, 23)
    same = [m for m in preview["moves"] if m["from"] == m["to"]]
    assert [(m["from"]["failure_kind"], m["count"]) for m in same] == [(upstream.failure_kind, 10)]

    job = client.post("/api/v1/rules/activate", json=candidate, headers=acme).json()["backfill"]
    ended = runner.run_until_idle(quiet, batch_size=7)
    assert [(j.id, j.done, j.params["changed"]) for j in ended] == [(job["id"], 39, preview["total_changed"])]
    assert_rollups_exact(quiet)
    again = client.post("/api/v1/rules/preview", params={"window": "90d"}, json=candidate, headers=acme).json()
    assert again["total_changed"] == 0


def test_unchanged_rows_are_not_rewritten_and_say_what_confirmed_them(quiet: Services, client: TestClient) -> None:
    client.post("/api/v1/events", json=mixed_events(12))
    before = _rows(quiet, "default")
    r = client.post("/api/v1/rules/activate", json=OPS_PACK)
    assert r.status_code == 200, r.text
    runner.run_until_idle(quiet)
    after = _rows(quiet, "default")
    moved = {i for i, row in after.items() if row != before[i]}
    assert moved == {f"e{i}" for i in range(0, 12, 3)}, "only the aborts' rows are written"
    ok = client.get("/api/v1/events/e2").json()
    assert (ok["status"], ok["rule_version"], ok["confirmed_by_version"]) == ("success", DEFAULT, OPS_VERSION)
    assert before["e2"]["rule_version"] == DEFAULT
    upstream = client.get("/api/v1/events/e1").json()
    assert (upstream["rule_version"], upstream["confirmed_by_version"]) == (DEFAULT, OPS_VERSION)
    closed = client.get("/api/v1/events/e0").json()
    assert (closed["rule_version"], closed["confirmed_by_version"]) == ("ops@2026-12-01", OPS_VERSION)
    client.post("/api/v1/events", json=[event(id="fresh", status="success")])
    fresh = client.get("/api/v1/events/fresh").json()
    assert (fresh["rule_version"], fresh["confirmed_by_version"]) == (OPS_VERSION, None)


def test_the_operator_scope_comes_from_the_command_line(sqlite_url: str) -> None:
    from typer.testing import CliRunner

    from faultlens.cli import app

    cli = CliRunner()
    created = cli.invoke(app, ["keys", "create", "--tenant", "ops", "--scope", "operator", "--db", sqlite_url])
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["scopes"] == ["operator"]
    services = make_services(sqlite_url, start_jobs=False)
    try:
        with TestClient(create_app(services)) as client:
            operator = {"X-API-Key": key["key"]}
            r = client.post("/api/v1/rules/activate", params={"scope": "global"}, json=OPS_PACK, headers=operator)
            assert r.status_code == 200 and r.json()["active_version"] == OPS_VERSION, r.text
            # operator is about the global pack only: it grants no tenant's admin, read or ingest.
            r = client.post("/api/v1/rules/activate", json=OPS_PACK, headers=operator)
            assert r.status_code == 403 and r.json()["error"]["details"] == {"required_scope": "admin"}
            assert client.get("/api/v1/events", headers=operator).status_code == 403
    finally:
        services.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_db_url(request: pytest.FixtureRequest) -> str:
    """A database no migration has touched yet, on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "empty_postgres_url"))


def test_an_activation_from_before_tenants_stays_the_global_pack(unmigrated_db_url: str) -> None:
    """Migration 0005 turns the one activated pack of an older database into the global row: same rules after."""
    from faultlens.store.db import create_db_engine, migrate
    from faultlens.store.tables import service_state

    db_url = unmigrated_db_url
    engine = create_db_engine(db_url)
    migrate(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            service_state.insert().values(
                key="activated_rule_pack", value=json.dumps({"pack": OPS_PACK, "base": None}), updated_at=1
            )
        )
    engine.dispose()
    services = make_services(db_url, start_jobs=False)
    try:
        assert services.pipeline.classifier.version == OPS_VERSION
        assert services.classifier_for("acme").version == OPS_VERSION
        with services.engine.connect() as conn:
            assert activation.find_activated(conn) is not None
            left = conn.execute(select(service_state.c.key).where(service_state.c.key == "activated_rule_pack"))
            assert left.first() is None
    finally:
        services.engine.dispose()
