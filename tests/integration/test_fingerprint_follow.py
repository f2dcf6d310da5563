"""Replicas on one database follow each other's saved fingerprint templates through each tenant's version token."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from faultlens.fingerprinters import TenantFingerprinters, state_key, version_key
from faultlens.services import Services, load_state, save_fingerprinter_state
from faultlens.store.tables import events
from tests.conftest import make_services
from tests.helpers import event

MISSING = "user {} not found in directory eu-west"
PAYMENT = "payment gateway refused charge for merchant {} region eu order {}"


def _ingest(services: Services, tenant: str, message: str, event_id: str) -> str:
    """Ingest one failure; its template id."""
    result = services.pipeline.ingest([event(id=event_id, error_message=message)], tenant=tenant)
    assert result.accepted == 1, result.as_dict()
    with services.engine.connect() as conn:
        found = conn.execute(
            select(events.c.fingerprint_id).where(events.c.tenant == tenant, events.c.id == event_id)
        ).scalar()
    assert isinstance(found, str)
    return found


@pytest.fixture
def replicas(db_url: str) -> Iterator[tuple[Services, Services]]:
    a = make_services(db_url, start_jobs=False, fingerprint_follow_interval_s=0)
    b = make_services(db_url, start_jobs=False, fingerprint_follow_interval_s=0)
    yield a, b
    a.engine.dispose()
    b.engine.dispose()


def test_replicas_adopt_each_others_saved_templates(replicas: tuple[Services, Services]) -> None:
    a, b = replicas
    b_before = b.fingerprinters.for_tenant("acme")  # B holds the tenant already: it must follow, not load lazily
    assert len(b_before) == 0
    first = _ingest(a, "acme", MISSING.format("alice"), "a1")
    a.save_fingerprints()
    # Learnt alone, "user bob ..." would start a group of its own, under another id.
    assert _ingest(b, "acme", MISSING.format("bob"), "b1") == first
    assert b.fingerprinters.for_tenant("acme") is b_before and len(b_before) == 1  # A's merged in, in place

    payment = _ingest(b, "acme", PAYMENT.format("m1", 1), "b2")
    b.save_fingerprints()
    assert _ingest(a, "acme", PAYMENT.format("m2", 2), "a2") == payment  # A follows B's save in turn
    assert {t.id for t in a.fingerprinters.for_tenant("acme").templates()} == {first, payment}


def _counting(
    services: Services, loads: list[str], checks: list[str], *, interval_s: float = 0.0
) -> TenantFingerprinters:
    def load(key: str) -> str | None:
        loads.append(key)
        return load_state(services.engine, key)

    def version(tenant: str) -> str | None:
        checks.append(tenant)
        return load_state(services.engine, version_key(tenant))

    return TenantFingerprinters(
        load,
        lambda key, value: save_fingerprinter_state(services.engine, key, value),
        default_tenant="default",
        version=version,
        follow_interval_s=interval_s,
    )


def test_only_a_tenant_another_process_saved_is_reloaded(db_url: str) -> None:
    svc = make_services(db_url, start_jobs=False)
    try:
        mine_loads: list[str] = []
        other_loads: list[str] = []
        mine = _counting(svc, mine_loads, [])
        other = _counting(svc, other_loads, [])
        mine.for_tenant("acme").add(MISSING.format("alice"))
        mine.for_tenant("globex").add(PAYMENT.format("m1", 1))
        mine.save_all()
        for _ in range(3):
            mine.for_tenant("acme")
            mine.for_tenant("globex")
        assert mine_loads == [state_key("acme"), state_key("globex")]  # our own save reloads nothing

        other.for_tenant("acme").add(MISSING.format("bob"))  # loads mine, then learns nothing new
        other.for_tenant("acme").add(PAYMENT.format("m2", 2))
        other.save_all()
        assert other_loads == [state_key("acme")]
        for _ in range(3):
            mine.for_tenant("acme")
            mine.for_tenant("globex")
        assert mine_loads == [state_key("acme"), state_key("globex"), state_key("acme")]  # once, and acme only
        assert len(mine.for_tenant("acme")) == 2
    finally:
        svc.engine.dispose()


def test_the_version_is_read_at_most_once_per_interval(db_url: str) -> None:
    svc = make_services(db_url, start_jobs=False)
    try:
        checks: list[str] = []
        registry = _counting(svc, [], checks, interval_s=3600)
        for i in range(20):
            registry.for_tenant("acme").add(MISSING.format(f"u{i}"))
        assert checks == ["acme"]  # the first load only: no read per event
    finally:
        svc.engine.dispose()


def test_a_failed_check_keeps_the_fingerprinter_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    down = False

    def version(tenant: str) -> str | None:
        if down:
            raise OperationalError("SELECT value FROM service_state", {}, Exception("connection refused"))
        return None

    registry = TenantFingerprinters(
        lambda key: None, lambda key, value: None, default_tenant="default", version=version
    )
    held = registry.for_tenant("acme")
    held.add(MISSING.format("alice"))
    down = True
    with caplog.at_level(logging.WARNING, logger="faultlens.fingerprinters"):
        assert registry.for_tenant("acme") is held
    assert "keeping this copy" in caplog.text
    down = False
    assert registry.for_tenant("acme") is held and len(held) == 1
