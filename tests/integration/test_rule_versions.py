"""GET /api/v1/rules/versions: the versions known, the active one, and whether every live replica runs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faultlens.api.app import create_app
from faultlens.classify.rules import default_pack
from faultlens.rulepacks import activation
from faultlens.rulepacks.follower import Heartbeat
from faultlens.services import Services
from faultlens.store.replicas import beat
from faultlens.timeutil import now_ms
from tests.conftest import make_services

PACK: dict[str, Any] = {
    "id": "ops@2026-12-05",
    "description": "a closed downstream is our failure",
    "rules": [
        {
            "name": "closed_is_ours",
            "match": {"text": ["downstream_closed"]},
            "failure_kind": "proxy_closed",
            "failure_class": "service_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "downstream_closed"}],
        }
    ],
}


@pytest.fixture
def replicas(db_url: str) -> Iterator[tuple[Services, Services]]:
    """Two processes' services on one database, with no background threads: the test beats for them."""
    first = make_services(db_url, start_jobs=False)
    second = make_services(db_url, start_jobs=False)
    yield first, second
    first.engine.dispose()
    second.engine.dispose()


def _beat(heartbeat: Heartbeat) -> None:
    heartbeat._next = 0.0  # due now
    heartbeat.beat_if_due()


def test_replicas_agree_then_one_lags_behind_an_activation_then_follows(
    replicas: tuple[Services, Services],
) -> None:
    first, second = replicas
    one, two = Heartbeat(first), Heartbeat(second)
    _beat(one)
    _beat(two)
    with TestClient(create_app(first)) as client:
        body = client.get("/api/v1/rules/versions").json()
        assert body["active_version"] == default_pack().id
        assert body["replicas_total"] == 2 and body["replicas_on_active"] == 2
        assert body["version_consistent"] is True and body["consistency_rate"] == 1.0
        assert {"id": default_pack().id, "origin": "shipped"} in body["versions"]
        assert all(r["replica"].startswith("replica-") and "/" not in r["replica"] for r in body["replicas"])

        # Activated on the first replica: the second has not adopted it yet.
        activation.activate(first, activation.parse_pack(PACK), PACK)
        first.follow_rules()  # what its follower does within REPLICA_HEARTBEAT_INTERVAL_S: takes the new generation
        _beat(one)
        _beat(two)
        lagging = client.get("/api/v1/rules/versions").json()
        assert lagging["active_version"] == f"{PACK['id']}+{default_pack().id}"
        assert {"id": PACK["id"], "origin": "activated"} in lagging["versions"]
        assert lagging["versions_total"] == body["versions_total"] + 1
        assert lagging["replicas_on_active"] == 1 and lagging["version_consistent"] is False
        assert lagging["consistency_rate"] == 0.5
        behind = [r for r in lagging["replicas"] if not r["on_active"]]
        assert [r["rule_version"] for r in behind] == [default_pack().id]

        second.follow_rules()
        _beat(two)
        caught_up = client.get("/api/v1/rules/versions").json()
        assert caught_up["replicas_on_active"] == 2 and caught_up["version_consistent"] is True


def test_a_replica_gone_quiet_is_not_counted(replicas: tuple[Services, Services]) -> None:
    first, _second = replicas
    _beat(Heartbeat(first))
    old = now_ms() - 10 * 60_000
    with first.engine.begin() as conn:
        beat(conn, instance="gone/1/x", started_at=old, rule_version="old@2026-01-01", rules_generation=None, now=old)
    with TestClient(create_app(first)) as client:
        body = client.get("/api/v1/rules/versions").json()
    assert body["replicas_total"] == 1 and body["version_consistent"] is True
