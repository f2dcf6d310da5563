"""Fingerprint templates per tenant: no tenant's messages shape another's, per-tenant state across restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.classify.fingerprint import Fingerprinter
from faultlens.cli import app as cli_app
from faultlens.fingerprinters import LEGACY_STATE_KEY, TenantFingerprinters, state_key
from faultlens.services import Services, load_state, save_state
from faultlens.store import keys
from faultlens.store.tables import events, fingerprints, service_state
from tests.conftest import make_services
from tests.helpers import distinct_message, event

PAYMENT = "payment gateway refused charge for merchant {} region eu order {}"
MISSING = "user {} not found in directory eu-west"


def _headers(services: Services, tenant: str) -> dict[str, str]:
    with services.engine.begin() as conn:
        _, secret = keys.create_key(conn, tenant=tenant, scopes=["ingest", "read", "admin"])
    return {"Authorization": f"Bearer {secret}"}


def _stored_templates(services: Services, tenant: str) -> dict[str, str]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(fingerprints.c.id, fingerprints.c.template).where(fingerprints.c.tenant == tenant))
        return {r.id: r.template for r in rows}


def _state_keys(services: Services) -> set[str]:
    with services.engine.connect() as conn:
        return {k for k in conn.execute(select(service_state.c.key)).scalars() if k.startswith(LEGACY_STATE_KEY)}


def _ingest(services: Services, tenant: str, messages: list[str], prefix: str) -> list[str]:
    """Ingest failures with these messages; their template ids, in order."""
    batch = [event(id=f"{prefix}{i}", error_message=m) for i, m in enumerate(messages)]
    result = services.pipeline.ingest(batch, tenant=tenant)
    assert result.accepted == len(messages), result.as_dict()
    with services.engine.connect() as conn:
        rows = conn.execute(select(events.c.id, events.c.fingerprint_id).where(events.c.tenant == tenant))
        found = {r.id: r.fingerprint_id for r in rows}
    return [found[e["id"]] for e in batch]


@pytest.fixture
def svc(db_url: str) -> Iterator[Services]:
    services = make_services(db_url, start_jobs=False)
    yield services
    services.engine.dispose()


def test_another_tenants_messages_do_not_shape_a_tenants_templates(svc: Services) -> None:
    """The probe: globex's one event must not come back generalised by acme's similar events."""
    acme, globex = _headers(svc, "acme"), _headers(svc, "globex")
    with TestClient(create_app(svc)) as client:
        sent = [event(id=f"a{i}", error_message=PAYMENT.format("acmemerchantzz", 100 + i)) for i in range(5)]
        assert client.post("/api/v1/events", json=sent, headers=acme).json()["accepted"] == 5
        own = event(id="g1", error_message=PAYMENT.format("globexsecretqq", 981))
        assert client.post("/api/v1/events", json=[own], headers=globex).json()["accepted"] == 1

        [item] = client.get("/api/v1/fingerprints", headers=globex).json()["items"]
        # Only globex's own message, its number masked: nothing tells it acme logged a like message.
        assert item["template"] == "payment gateway refused charge for merchant globexsecretqq region eu order <NUM>"
        assert item["count"] == 1
        assert client.get("/api/v1/events/g1", headers=globex).json()["fingerprint_id"] == item["id"]
        [theirs] = client.get("/api/v1/fingerprints", headers=acme).json()["items"]
        assert theirs["template"] == "payment gateway refused charge for merchant acmemerchantzz region eu order <NUM>"
        assert theirs["count"] == 5

        # A second distinct globex merchant generalises globex's template, never acme's.
        other = event(id="g2", error_message=PAYMENT.format("globexothermm", 5))
        assert client.post("/api/v1/events", json=[other], headers=globex).json()["accepted"] == 1
        [item] = client.get("/api/v1/fingerprints", headers=globex).json()["items"]
        assert item["template"] == "payment gateway refused charge for merchant <*> region eu order <NUM>"
        [theirs] = client.get("/api/v1/fingerprints", headers=acme).json()["items"]
        assert "<*>" not in theirs["template"]
    assert _stored_templates(svc, "acme") == {theirs["id"]: theirs["template"]}
    assert all("acme" not in t for t in _stored_templates(svc, "globex").values())
    assert _state_keys(svc) == {state_key("acme"), state_key("globex")}  # saved at shutdown, each its own


def test_template_ids_survive_a_restart_per_tenant(db_url: str) -> None:
    first = make_services(db_url, start_jobs=False)
    acme_id = _ingest(first, "acme", [MISSING.format("alice"), MISSING.format("bob")], "a")[0]
    globex_id = _ingest(first, "globex", [MISSING.format("carol"), MISSING.format("dave")], "g")[0]
    # Each group was founded by the tenant's own first message (ids are hashes of it): the ids differ.
    assert acme_id != globex_id
    assert first.fingerprinters.for_tenant("acme").templates()[0].text == "user <*> not found in directory eu-west"
    first.close()

    second = make_services(db_url, start_jobs=False)
    try:
        assert second.fingerprinters.loaded() == {}  # nothing is read at start-up
        # A fresh fingerprinter would found a new group (a new id) for "erin": the saved state joins it to the old.
        assert Fingerprinter().add(MISSING.format("erin")).id not in (acme_id, globex_id)
        assert _ingest(second, "globex", [MISSING.format("erin")], "g-late") == [globex_id]
        assert set(second.fingerprinters.loaded()) == {"globex"}  # loaded on first use, alone
        assert _ingest(second, "acme", [MISSING.format("erin")], "a-late") == [acme_id]
        with TestClient(create_app(second)) as client:
            for tenant, tid in (("acme", acme_id), ("globex", globex_id)):
                [item] = client.get("/api/v1/fingerprints", headers=_headers(second, tenant)).json()["items"]
                assert (item["id"], item["count"]) == (tid, 3)
    finally:
        second.close()

    # `faultlens fingerprint --db --tenant` starts from that tenant's saved state.
    for tenant, tid in (("acme", acme_id), ("globex", globex_id)):
        result = CliRunner().invoke(
            cli_app, ["fingerprint", "--db", db_url, "--tenant", tenant], input=MISSING.format("zoe") + "\n"
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.split("\t")[0] == tid


def test_the_default_tenant_adopts_the_state_saved_before_tenants(db_url: str) -> None:
    """An old database's one shared state becomes the default tenant's (here "main"); other tenants start empty."""
    old = Fingerprinter()
    legacy_id = old.add(PAYMENT.format("alpha", 1)).id
    assert (
        old.add(PAYMENT.format("beta", 2)).text
        == "payment gateway refused charge for merchant <*> region eu order <NUM>"
    )
    first = make_services(db_url, start_jobs=False, default_tenant="main")
    save_state(first.engine, LEGACY_STATE_KEY, orjson.dumps(old.export_state()).decode())
    first.engine.dispose()

    svc = make_services(db_url, start_jobs=False, default_tenant="main")
    try:
        assert _ingest(svc, "main", [PAYMENT.format("gamma", 3)], "m") == [legacy_id]
        [other_id] = _ingest(svc, "acme", [PAYMENT.format("gamma", 3)], "a")
        assert other_id != legacy_id
        assert _stored_templates(svc, "acme") == {
            other_id: "payment gateway refused charge for merchant gamma region eu order <NUM>"
        }
        # The adopted state is saved under the tenant's own key at the next save, whether or not it grew.
        svc.save_fingerprints()
        saved = load_state(svc.engine, state_key("main"))
        assert saved is not None
        assert [g["id"] for g in orjson.loads(saved)["groups"]] == [legacy_id]
    finally:
        svc.close()

    result = CliRunner().invoke(
        cli_app,
        ["fingerprint", "--db", db_url],
        input=PAYMENT.format("delta", 4) + "\n",
        env={"FAULTLENS_DEFAULT_TENANT": "main"},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[0] == legacy_id


def test_two_tenants_ingesting_at_once_each_get_their_own_templates(db_url: str) -> None:
    svc = make_services(db_url, start_jobs=False, fingerprint_save_interval_s=0)
    words = {"acme": ["anvil", "rocket", "magnet", "spring"], "globex": ["laser", "volcano", "hammock", "monorail"]}
    start = threading.Barrier(len(words) * 2)
    errors: list[BaseException] = []

    def send(tenant: str, half: int) -> None:
        try:
            start.wait(timeout=30)
            for n in range(20):
                word = words[tenant][(n + half) % 4]
                batch = [event(id=f"{tenant}-{half}-{n}-{i}", error_message=MISSING.format(word)) for i in range(5)]
                result = svc.pipeline.ingest(batch, tenant=tenant)
                svc.after_ingest(result, 0.0)  # saves as the server does, from several threads at once
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t, h)) for t in words for h in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == [] and not any(t.is_alive() for t in threads)
        acme, globex = (svc.fingerprinters.for_tenant(t) for t in words)
        assert acme is not globex
        for tenant, fp in (("acme", acme), ("globex", globex)):
            [template] = fp.templates()
            assert template.text == "user <*> not found in directory eu-west"
            stored = _stored_templates(svc, tenant)
            assert set(stored) == {template.id}
            others = [w for t, ws in words.items() if t != tenant for w in ws]
            with svc.engine.connect() as conn:
                samples = conn.execute(select(fingerprints.c.sample_message).where(fingerprints.c.tenant == tenant))
                assert not any(w in s for (s,) in samples for w in others)
        svc.save_fingerprints()
    finally:
        svc.close()

    again = make_services(db_url, start_jobs=False)
    try:
        for tenant, ws in words.items():
            state = orjson.loads(load_state(again.engine, state_key(tenant)) or "null")
            assert [g["first_text"].split()[1] in ws for g in state["groups"]] == [True]
    finally:
        again.engine.dispose()


def test_a_tenants_fingerprinter_is_created_once_however_many_threads_ask(db_url: str) -> None:
    svc = make_services(db_url, start_jobs=False)
    reads: list[str] = []

    def load(key: str) -> str | None:
        reads.append(key)
        return load_state(svc.engine, key)  # a real database read: threads interleave here

    registry = TenantFingerprinters(load, lambda key, value: None, default_tenant="default")
    start = threading.Barrier(8)
    got: list[Fingerprinter] = []

    def ask() -> None:
        start.wait(timeout=30)
        got.append(registry.for_tenant("newco"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    svc.engine.dispose()
    assert len(got) == 8 and all(fp is got[0] for fp in got)
    assert reads == [state_key("newco")]


def test_saves_only_what_changed_at_most_once_per_interval() -> None:
    saved: list[str] = []
    registry = TenantFingerprinters(lambda key: None, lambda key, value: saved.append(key), default_tenant="default")
    registry.for_tenant("acme").add("disk full on node 7")
    registry.for_tenant("globex").add("queue stalled for 30 s")
    registry.for_tenant("idle")  # read fingerprints, learnt nothing: nothing to save
    registry.save_if_due(60)
    assert sorted(saved) == [state_key("acme"), state_key("globex")]
    registry.for_tenant("acme").add("certificate expired for api")
    registry.save_if_due(60)
    assert len(saved) == 2  # within the interval
    registry.save_if_due(0)
    assert saved[2:] == [state_key("acme")]  # due again: only the tenant that gained a template
    registry.save_all()
    assert sorted(saved[3:]) == [state_key("acme"), state_key("globex")]  # shutdown: all that hold templates


def test_a_state_that_does_not_load_starts_the_tenant_afresh(db_url: str) -> None:
    svc = make_services(db_url, start_jobs=False)
    try:
        save_state(svc.engine, state_key("acme"), '{"version": 99}')
        [tid] = _ingest(svc, "acme", ["disk full on node 7"], "a")
        assert _stored_templates(svc, "acme") == {tid: "disk full on node <NUM>"}
        svc.save_fingerprints()  # the unreadable document is replaced by the fresh state
        saved = load_state(svc.engine, state_key("acme"))
        assert saved is not None and orjson.loads(saved)["version"] == 1
    finally:
        svc.close()


def test_a_tenant_past_its_template_limit_forgets_the_least_recent_and_keeps_every_stored_id(db_url: str) -> None:
    first = make_services(db_url, start_jobs=False, fingerprint_max_templates=40)
    try:
        ids: list[str] = []
        recurring: set[str] = set()
        for batch in range(5):
            new = [distinct_message(k, one_key=False) for k in range(batch * 40, batch * 40 + 40)]
            messages = [*new, PAYMENT.format(batch, 1000 + batch)]
            got = _ingest(first, "acme", messages, prefix=f"b{batch}-")
            ids += got[:-1]
            recurring.add(got[-1])
        _ingest(first, "globex", [MISSING.format(7)], prefix="g-")
        assert len(first.fingerprinters.for_tenant("acme")) <= 40
        assert len(first.fingerprinters.for_tenant("globex")) == 1  # its own limit, untouched by acme's
        assert len(recurring) == 1  # the template messages keep joining is never the one forgotten
        assert len(set(ids)) == 200
        # Every id handed out is stored with its template, forgotten or not: events and groups keep naming them.
        assert set(ids) | recurring <= set(_stored_templates(first, "acme"))
        first.save_fingerprints()
        saved = orjson.loads(load_state(first.engine, state_key("acme")) or "null")
        assert len(saved["groups"]) <= 40
    finally:
        first.engine.dispose()
    again = make_services(db_url, start_jobs=False, fingerprint_max_templates=40)
    try:
        assert _ingest(again, "acme", [PAYMENT.format(9, 9999)], prefix="r-") == list(recurring)
        assert len(again.fingerprinters.for_tenant("acme")) <= 40
    finally:
        again.engine.dispose()
