"""Fingerprints API on SQLite and PostgreSQL: ranking, class/kind mix, rule coverage, ids stable across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.cli import app as cli_app
from tests.conftest import make_services
from tests.helpers import ago, event


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    svc = make_services(db_url, start_jobs=False)
    with TestClient(create_app(svc)) as c:
        yield c
    svc.engine.dispose()


def _events() -> list[dict[str, Any]]:
    frob = [
        event(
            id=f"frob{i}", error_message=f"frobnicator {i} exploded in sector {i * 7}", occurred_at=ago(minutes=10 + i)
        )
        for i in range(6)
    ]
    closed = [event(id=f"closed{i}", error_message="downstream_closed", occurred_at=ago(minutes=3)) for i in range(3)]
    widget = [event(id=f"widget{i}", error_message=f"widget {i} went sideways", status="retry") for i in range(2)]
    old = [event(id="old-frob", error_message="frobnicator 99 exploded in sector 1", occurred_at=ago(days=2))]
    ok = [event(id="fine", status="success", error_message="all good")]
    return frob + closed + widget + old + ok


def test_templates_ranked_with_mix_and_coverage(client: TestClient) -> None:
    assert client.post("/api/v1/events", json=_events()).json()["accepted"] == 13
    body = client.get("/api/v1/fingerprints").json()
    assert body["window"] == "24h"
    items = body["items"]
    assert [(i["count"], i["covered_by_rule"]) for i in items] == [(6, False), (3, True), (2, False)]
    frob, closed, widget = items
    assert frob["template"] == "frobnicator <NUM> exploded in sector <NUM>"
    # The sample is the template's earliest occurrence, outside the window here.
    assert frob["sample_message"] == "frobnicator 99 exploded in sector 1"
    assert frob["mix"] == [{"failure_class": "service_failure", "failure_kind": "unclassified", "count": 6}]
    assert frob["first_seen"] < ago(days=1) and frob["last_seen"] > ago(minutes=11)
    assert closed["mix"] == [{"failure_class": "client_abort", "failure_kind": "downstream_closed", "count": 3}]
    assert widget["template"] == "widget <NUM> went sideways"
    event_fp = client.get("/api/v1/events/frob3").json()["fingerprint_id"]
    assert event_fp == frob["id"]

    only = client.get("/api/v1/fingerprints", params={"unclassified": "true"}).json()["items"]
    assert [i["id"] for i in only] == [frob["id"], widget["id"]]
    assert [i["id"] for i in client.get("/api/v1/fingerprints", params={"limit": 1}).json()["items"]] == [frob["id"]]
    week = client.get("/api/v1/fingerprints", params={"window": "7d"}).json()["items"]
    assert week[0]["id"] == frob["id"] and week[0]["count"] == 7
    for params in ({"limit": 0}, {"limit": 501}, {"window": "forever"}, {"unclassified": "maybe"}):
        r = client.get("/api/v1/fingerprints", params=params)
        assert r.status_code == 400 and set(r.json()) == {"error", "request_id", "correlation_id", "trace_id"}, params


def test_template_ids_survive_a_restart(db_url: str) -> None:
    first = make_services(db_url, start_jobs=False)
    first.pipeline.ingest([event(id="a", error_message="cache node 10.1.2.3 timed out after 31 ms")], tenant="default")
    with TestClient(create_app(first)):
        pass  # shutting the app down saves the fingerprinter, as the server does
    [template] = first.fingerprinters.for_tenant("default").templates()
    first.engine.dispose()

    second = make_services(db_url, start_jobs=False)
    assert [t.id for t in second.fingerprinters.for_tenant("default").templates()] == [template.id]
    second.pipeline.ingest([event(id="b", error_message="cache node 10.9.9.9 timed out after 7 ms")], tenant="default")
    with TestClient(create_app(second)) as client:
        ids = {client.get(f"/api/v1/events/{i}").json()["fingerprint_id"] for i in ("a", "b")}
        assert ids == {template.id}
        [item] = client.get("/api/v1/fingerprints").json()["items"]
        assert (item["id"], item["count"]) == (template.id, 2)

    # `faultlens fingerprint --db` starts from the same saved state, so it prints the same ids.
    result = CliRunner().invoke(
        cli_app, ["fingerprint", "--db", db_url], input="cache node 10.4.4.4 timed out after 99 ms\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[0] == template.id
    second.engine.dispose()
