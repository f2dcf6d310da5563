"""Failure groups on SQLite and PostgreSQL: counts from the group rollups (equal to a raw GROUP BY), the lifecycle
(new, resolved, regressed by a later event, ignored until a count or a time), merges and splits that later events
follow, activity stamped with who and when, tenant isolation, strict bodies, and rule drafts with their preview."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, Table, insert, inspect, select

from faultlens.alerting import conditions
from faultlens.alerting.routing import ConditionSettings
from faultlens.api.app import create_app
from faultlens.jobs import group_lifecycle
from faultlens.jobs.runner import run_until_idle
from faultlens.services import Services
from faultlens.store import groups as group_store
from faultlens.store import keys, rollup_reads, rollup_shapes, rollup_writes
from faultlens.store.db import alembic_config, create_db_engine, migrate
from faultlens.store.tables import ROLLUP_KEY, events, rollups
from faultlens.timeutil import now_ms, parse_rfc3339_ms
from faultlens.triage import slo
from tests.conftest import make_services
from tests.helpers import ago, event

ERROR_KEYS = {"error", "request_id", "correlation_id", "trace_id"}
FROB = "frobnicator {i} exploded in sector {j}"
WIDGET = "widget pipeline {i} went sideways near gate {j}"
LEDGER = "ledger shard {i} rejected checksum for batch {j}"


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    svc = make_services(db_url, start_jobs=False)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def _key(services: Services, tenant: str, name: str | None = None) -> dict[str, str]:
    with services.engine.begin() as conn:
        _key_row, secret = keys.create_key(conn, tenant=tenant, scopes=["ingest", "read", "admin"], name=name)
    return {"Authorization": f"Bearer {secret}"}


def _post(client: TestClient, events: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
    r = client.post("/api/v1/events", json=events, headers=headers or {})
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _groups(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/groups", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _by_title(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["title"].split(" ")[0]: g for g in body["items"]}


def _seed(client: TestClient, headers: dict[str, str] | None = None) -> None:
    events = [
        event(id=f"frob{i}", error_message=FROB.format(i=i, j=i * 7), occurred_at=ago(minutes=10 + i), release="r2",
              environment="prod")
        for i in range(6)
    ]  # fmt: skip
    events += [
        event(id=f"widget{i}", source="billing", error_message=WIDGET.format(i=i, j=i), occurred_at=ago(hours=30 + i))
        for i in range(3)
    ]
    events += [event(id="ok", status="success", error_message="all good"), event(id="bare", error_message=None)]
    _post(client, events, headers)


def test_list_detail_filters_and_pages(client: TestClient) -> None:
    _seed(client)
    week = _groups(client, window="7d")
    assert week["window"] == "7d" and week["status_counts"] == {
        "new": 1,
        "ongoing": 1,
        "resolved": 0,
        "ignored": 0,
        "regressed": 0,
    }
    groups = _by_title(week)
    frob, widget = groups["frobnicator"], groups["widget"]
    assert [g["id"] for g in week["items"]] == [frob["id"], widget["id"]]  # by count, most first
    assert (frob["count"], frob["status"], frob["members"]) == (6, "new", 1)
    assert frob["title"] == "frobnicator <NUM> exploded in sector <NUM>"
    assert (frob["sources"], frob["releases"], frob["environments"], frob["first_release"]) == (
        ["codex-proxy"],
        ["r2"],
        ["prod"],
        "r2",
    )
    assert frob["mix"] == [{"failure_class": "service_failure", "failure_kind": "unclassified", "count": 6}]
    assert frob["actionable_share"] == 1.0 and frob["covered_by_rule"] is False and frob["assignee"] is None
    assert len(frob["trend"]) in (7, 8) and sum(frob["trend"]) == 6
    # The frob events are 10-16 minutes old: all in today's daily bucket, or some in yesterday's just after midnight.
    since_midnight = datetime.now(UTC) - datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert frob["trend"][-1] == 6 or (since_midnight < timedelta(minutes=20) and sum(frob["trend"][-2:]) == 6)
    assert (widget["count"], widget["status"], sum(widget["trend"])) == (3, "ongoing", 3)
    assert widget["first_seen"] < ago(hours=29) and widget["last_seen"] > ago(hours=31)

    day = _groups(client, window="24h")
    assert [g["id"] for g in day["items"]] == [frob["id"]] and len(day["items"][0]["trend"]) in (24, 25)
    assert [g["id"] for g in _groups(client, window="7d", source="billing")["items"]] == [widget["id"]]
    assert [g["id"] for g in _groups(client, window="7d", release="r2")["items"]] == [frob["id"]]
    assert [g["id"] for g in _groups(client, window="7d", environment="prod")["items"]] == [frob["id"]]
    assert _groups(client, window="7d", release="nope")["items"] == []
    assert [g["id"] for g in _groups(client, window="7d", q="SIDEWAYS")["items"]] == [widget["id"]]
    assert [g["id"] for g in _groups(client, window="7d", status="ongoing")["items"]] == [widget["id"]]
    assert [g["id"] for g in _groups(client, window="7d", sort="first_seen", order="asc")["items"]] == [
        widget["id"],
        frob["id"],
    ]
    assert [g["id"] for g in _groups(client, window="7d", sort="count", order="asc")["items"]] == [
        widget["id"],
        frob["id"],
    ]
    first = _groups(client, window="7d", limit=1)
    assert [g["id"] for g in first["items"]] == [frob["id"]] and first["next_cursor"]
    second = _groups(client, window="7d", limit=1, cursor=first["next_cursor"])
    assert [g["id"] for g in second["items"]] == [widget["id"]] and second["next_cursor"] is None
    r = client.get("/api/v1/groups", params={"window": "7d", "sort": "last_seen", "cursor": first["next_cursor"]})
    assert r.status_code == 400 and set(r.json()) == ERROR_KEYS

    detail = client.get(f"/api/v1/groups/{frob['id']}", params={"window": "7d"}).json()
    assert {k: detail[k] for k in frob} == frob
    assert (
        sum(p["count"] for p in detail["series"]["hour"]) == 6 and sum(p["count"] for p in detail["series"]["day"]) == 6
    )
    assert len(detail["series"]["day"]) in (7, 8) and len(detail["series"]["hour"]) in (168, 169)
    assert detail["member_templates"] == [{"id": frob["id"], "template": frob["title"], "count": 6}]
    assert sorted(detail["samples"]) == sorted(FROB.format(i=i, j=i * 7) for i in range(6))
    assert detail["activity"] == [] and detail["ignore"] is None
    assert detail["resolved_at"] is None and detail["regressed_at"] is None
    page = client.get(f"/api/v1/groups/{frob['id']}/events", params={"window": "7d", "limit": 4}).json()
    assert [e["id"] for e in page["items"]] == ["frob0", "frob1", "frob2", "frob3"] and page["next_cursor"]
    rest = client.get(f"/api/v1/groups/{frob['id']}/events", params={"window": "7d", "cursor": page["next_cursor"]})
    assert [e["id"] for e in rest.json()["items"]] == ["frob4", "frob5"] and rest.json()["next_cursor"] is None


def test_group_rollups_equal_a_raw_group_by(client: TestClient, services: Services) -> None:
    rng = random.Random(7)
    messages = [FROB, WIDGET, LEDGER, "cache node {i} timed out after {j} ms", None]
    batch = []
    for n in range(400):
        msg = rng.choice(messages)
        batch.append(
            event(
                id=f"e{n}",
                source=rng.choice(["api", "worker", "cron"]),
                status=rng.choice(["failure", "failure", "retry", "dead_letter", "success"]),
                error_message=msg.format(i=rng.randint(1, 50), j=rng.randint(1, 999)) if msg else None,
                http_status=rng.choice([None, 500, 502, 404]),
                release=rng.choice([None, "1.0", "1.1"]),
                environment=rng.choice([None, "prod", "staging"]),
                occurred_at=ago(minutes=rng.randint(1, 6 * 24 * 60)),
            )
        )
    for start in range(0, len(batch), 100):
        _post(client, batch[start : start + 100])
    end = now_ms() + 1
    start_ms = end - 7 * 86_400_000
    dims = rollup_shapes.SHAPES[rollup_shapes.GROUP_SHAPE]
    with services.engine.connect() as conn:
        assert rollup_reads.group_rollups_ready(conn)
        assert rollup_shapes.covering_shape(("source", "release")) != rollup_shapes.GROUP_SHAPE
        assert rollup_shapes.covering_shape(("fingerprint_id",)) == rollup_shapes.GROUP_SHAPE
        rolled = rollup_reads.aggregate(conn, tenant="default", start=start_ms, end=end, by=dims)
        scanned = rollup_reads.aggregate_events(conn, tenant="default", start=start_ms, end=end, by=dims)
        assert rolled == scanned and rolled
        raw = Counter(
            {
                fid: n
                for fid, n in conn.exec_driver_sql(
                    "SELECT fingerprint_id, count(*) FROM events WHERE tenant = 'default' "
                    "AND fingerprint_id IS NOT NULL GROUP BY fingerprint_id"
                )
            }
        )
    resolve = services.fingerprinters.for_tenant("default").resolve
    expected: Counter[str] = Counter()
    for fid, n in raw.items():
        expected[resolve(fid)] += n
    listed = _groups(client, window="7d", limit=500)
    assert {g["id"]: g["count"] for g in listed["items"]} == dict(expected)
    assert sum(expected.values()) == sum(1 for e in batch if e["status"] != "success" and e["error_message"])


def _regress_pass(services: Services) -> group_lifecycle.PassReport:
    report = group_lifecycle.run_pass(services)
    assert report.ok
    return report


def test_lifecycle_resolve_regress_ignore(client: TestClient, services: Services) -> None:
    _seed(client)
    frob = _by_title(_groups(client, window="7d"))["frobnicator"]
    gid = frob["id"]
    r = client.post(f"/api/v1/groups/{gid}/status", json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolved_at"]
    resolved_at = parse_rfc3339_ms(r.json()["resolved_at"])
    assert _regress_pass(services).regressed == []  # no event since
    # A late event that happened before the resolve does not regress it.
    _post(client, [event(id="late", error_message=FROB.format(i=90, j=1), occurred_at=ago(minutes=30))])
    assert _regress_pass(services).regressed == []
    _post(client, [event(id="again", error_message=FROB.format(i=91, j=2), occurred_at=ago(seconds=-2))])
    again_at = parse_rfc3339_ms(client.get("/api/v1/events/again").json()["occurred_at"])
    assert _regress_pass(services).regressed == [("default", gid)]
    assert _regress_pass(services).regressed == []  # once
    detail = client.get(f"/api/v1/groups/{gid}").json()
    assert detail["status"] == "regressed" and parse_rfc3339_ms(detail["regressed_at"]) == again_at > resolved_at
    newest = detail["activity"][0]
    assert (newest["actor"], newest["action"], newest["detail"]["status"]) == ("faultlens", "status", "regressed")
    assert _groups(client, window="7d")["status_counts"]["regressed"] == 1

    ctx = conditions.Context(
        tenant="default",
        now=now_ms(),
        slo_config=slo.SloConfig(),
        settings=ConditionSettings(),
        main_path_sources=frozenset(),
    )
    with services.engine.connect() as conn:
        [alert] = conditions.group_regressions(conn, ctx, {})
    assert alert.name == "group_regressed" and alert.level == "P1"  # its failures are actionable
    assert alert.labels["group_id"] == gid and "title" not in alert.labels and frob["title"] in alert.summary
    assert alert.value == 1.0
    with services.engine.connect() as conn:
        assert conditions.group_regressions(conn, ctx.__class__(**{**ctx.__dict__, "tenant": "other"}), {}) == []

    # Unresolved: back to new (first seen today); the alert ends.
    r = client.post(f"/api/v1/groups/{gid}/status", json={"status": "unresolved"})
    assert r.json()["status"] == "new" and r.json()["regressed_at"] is None
    with services.engine.connect() as conn:
        assert conditions.group_regressions(conn, ctx, {}) == []

    # Ignored until 3 more events.
    r = client.post(f"/api/v1/groups/{gid}/status", json={"status": "ignored", "count": 3})
    assert r.json()["status"] == "ignored" and r.json()["ignore"] == {"until": None, "count": 3, "remaining": 3}
    _post(
        client,
        [event(id=f"ign{i}", error_message=FROB.format(i=i, j=5), occurred_at=ago(seconds=-1)) for i in range(2)],
    )
    assert _regress_pass(services).reopened == []
    assert client.get(f"/api/v1/groups/{gid}").json()["ignore"]["remaining"] == 1
    _post(client, [event(id="ign2", error_message=FROB.format(i=2, j=5), occurred_at=ago(seconds=-1))])
    assert _regress_pass(services).reopened == [("default", gid)]
    detail = client.get(f"/api/v1/groups/{gid}").json()
    assert detail["status"] == "new" and detail["ignore"] is None
    assert detail["activity"][0]["actor"] == "faultlens" and detail["activity"][0]["detail"]["status"] == "unresolved"

    # Ignored until a time: reopened once it passed.
    until = now_ms() + 60_000
    r = client.post(f"/api/v1/groups/{gid}/status", json={"status": "ignored", "until": ago(seconds=-60)})
    assert r.json()["status"] == "ignored" and r.json()["ignore"]["until"]
    assert group_lifecycle.run_pass(services).reopened == []
    assert group_lifecycle.run_pass(services, now=until + 1_000).reopened == [("default", gid)]
    # Forever: nothing reopens it.
    client.post(f"/api/v1/groups/{gid}/status", json={"status": "ignored"})
    _post(client, [event(id="forever", error_message=FROB.format(i=3, j=5), occurred_at=ago(seconds=-1))])
    assert group_lifecycle.run_pass(services, now=now_ms() + 10 * 86_400_000).reopened == []
    assert client.get(f"/api/v1/groups/{gid}").json()["status"] == "ignored"
    statuses = [
        a["detail"]["status"] for a in client.get(f"/api/v1/groups/{gid}").json()["activity"] if a["action"] == "status"
    ]
    assert statuses == [
        "ignored",
        "unresolved",
        "ignored",
        "unresolved",
        "ignored",
        "unresolved",
        "regressed",
        "resolved",
    ]


def test_regressed_turns_ongoing_after_the_configured_days(services: Services, client: TestClient) -> None:
    _seed(client)
    gid = _by_title(_groups(client, window="7d"))["widget"]["id"]
    with services.engine.begin() as conn:
        group_store.save_state(
            conn,
            tenant="default",
            group_id=gid,
            values={"status": "regressed", "regressed_at": now_ms() - 8 * 86_400_000},
            by="faultlens",
            at=now_ms(),
        )
    assert client.get(f"/api/v1/groups/{gid}").json()["status"] == "ongoing"
    assert group_lifecycle.run_pass(services).reopened == [("default", gid)]
    assert client.get(f"/api/v1/groups/{gid}").json()["status"] == "ongoing"


def test_merge_and_split_are_remembered_by_later_events(client: TestClient, services: Services) -> None:
    alice = _key(services, "default", name="alice")
    _seed(client, alice)
    groups = _by_title(_groups(client, alice, window="7d"))
    frob, widget = groups["frobnicator"]["id"], groups["widget"]["id"]
    week = {"window": "7d"}
    r = client.post(f"/api/v1/groups/{frob}/merge", params=week, json={"group_ids": [widget]}, headers=alice)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert (merged["count"], merged["members"]) == (9, 2)
    assert {m["id"]: m["count"] for m in merged["member_templates"]} == {frob: 6, widget: 3}
    listed = _groups(client, alice, window="7d")["items"]
    assert [g["id"] for g in listed] == [frob]
    # The detail reads its members' rows only; the list reads every template's: both say the same of the group.
    same = ("count", "trend", "sources", "releases", "mix", "first_seen", "last_seen", "members")
    assert {k: merged[k] for k in same} == {k: listed[0][k] for k in same}
    assert client.get(f"/api/v1/groups/{widget}", headers=alice).json()["error"]["details"] == {
        "group_id": widget,
        "now_in": frob,
    }
    # Later events of the merged template count for the group they were folded into.
    _post(client, [event(id="w-late", error_message=WIDGET.format(i=7, j=7))], alice)
    assert _groups(client, alice, window="7d")["items"][0]["count"] == 10
    events = client.get(f"/api/v1/groups/{frob}/events", params={"window": "7d", "limit": 500}, headers=alice).json()
    assert "w-late" in {e["id"] for e in events["items"]} and len(events["items"]) == 10

    r = client.post(f"/api/v1/groups/{frob}/split", params=week, json={"member_ids": [widget]}, headers=alice)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["group"]["count"], body["new_group"]["id"], body["new_group"]["count"]) == (6, widget, 4)
    _post(client, [event(id="w-later", error_message=WIDGET.format(i=8, j=8))], alice)
    counts = {g["id"]: g["count"] for g in _groups(client, alice, window="7d")["items"]}
    assert counts == {frob: 6, widget: 5}

    activity = client.get(f"/api/v1/groups/{frob}", headers=alice).json()["activity"]
    assert [(a["action"], a["actor"]) for a in activity] == [("split", "alice"), ("merge", "alice")]
    assert activity[0]["detail"] == {"member_ids": [widget], "new_group": widget}
    assert activity[1]["detail"] == {"group_ids": [widget], "member_ids": [widget]}
    assert all(ago(minutes=5) < a["at"] <= ago(seconds=-1) for a in activity)

    r = client.put(f"/api/v1/groups/{frob}/assignee", json={"assignee": "bob"}, headers=alice)
    assert r.json()["assignee"] == "bob" and r.json()["activity"][0]["detail"] == {"assignee": "bob"}
    r = client.post(f"/api/v1/groups/{frob}/notes", json={"text": "looking at sector 7"}, headers=alice)
    assert r.json()["activity"][0] == {**r.json()["activity"][0], "actor": "alice", "action": "note",
                                       "detail": {"text": "looking at sector 7"}}  # fmt: skip
    assert _groups(client, alice, window="7d")["items"][0]["assignee"] == "bob"
    r = client.put(f"/api/v1/groups/{frob}/assignee", json={"assignee": None}, headers=alice)
    assert r.json()["assignee"] is None


def test_tenants_see_only_their_groups(client: TestClient, services: Services) -> None:
    acme, globex = _key(services, "acme"), _key(services, "globex")
    _seed(client, acme)
    _post(client, [event(id="g1", error_message=LEDGER.format(i=1, j=2))], globex)
    acme_ids = [g["id"] for g in _groups(client, acme, window="7d")["items"]]
    globex_ids = [g["id"] for g in _groups(client, globex, window="7d")["items"]]
    assert len(acme_ids) == 2 and len(globex_ids) == 1 and not set(acme_ids) & set(globex_ids)
    frob = acme_ids[0]
    for method, path, body in (
        ("GET", f"/api/v1/groups/{frob}", None),
        ("GET", f"/api/v1/groups/{frob}/events", None),
        ("POST", f"/api/v1/groups/{frob}/status", {"status": "resolved"}),
        ("POST", f"/api/v1/groups/{frob}/notes", {"text": "mine now"}),
        ("POST", f"/api/v1/groups/{globex_ids[0]}/merge", {"group_ids": [frob]}),
    ):
        r = client.request(method, path, json=body, headers=globex)
        assert r.status_code == 404 and set(r.json()) == ERROR_KEYS, (path, r.text)
    assert client.get(f"/api/v1/groups/{frob}", headers=acme).json()["activity"] == []
    assert client.get(f"/api/v1/groups/{frob}", headers=acme).json()["status"] == "new"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("status", {"status": "closed"}),
        ("status", {"status": "resolved", "extra": 1}),
        ("status", {"status": "resolved", "count": 3}),
        ("status", {"status": "ignored", "count": 0}),
        ("status", {"status": "ignored", "count": "3"}),
        ("status", {"status": "ignored", "until": "tomorrow"}),
        ("status", {"status": "ignored", "until": "2020-01-01T00:00:00Z"}),
        ("status", {}),
        ("status", []),
        ("assignee", {}),
        ("assignee", {"assignee": ""}),
        ("assignee", {"assignee": "x" * 129}),
        ("notes", {"text": ""}),
        ("notes", {"text": "x" * 2001}),
        ("notes", {"text": 5}),
        ("merge", {"group_ids": []}),
        ("merge", {"group_ids": "abc"}),
        ("merge", {"group_ids": ["bad id!"]}),
        ("split", {"member_ids": []}),
        ("split", {"member_ids": ["0000000000000000"]}),
        ("rule-draft", {"failure_class": "meh"}),
        ("rule-draft", {"kind": "Not A Kind"}),
        ("rule-draft", {"category": "not_a_category"}),
        ("rule-draft", {"whatever": True}),
    ],
)
def test_bad_bodies_answer_400_in_the_one_error_body(client: TestClient, path: str, body: Any) -> None:
    _seed(client)
    gid = _groups(client, window="7d")["items"][0]["id"]
    method = "PUT" if path == "assignee" else "POST"
    r = client.request(method, f"/api/v1/groups/{gid}/{path}", json=body)
    assert r.status_code == 400 and set(r.json()) == ERROR_KEYS, r.text
    assert client.get(f"/api/v1/groups/{gid}").json()["activity"] == []


def test_unknown_groups_and_bad_queries(client: TestClient) -> None:
    _seed(client)
    gid = _groups(client, window="7d")["items"][0]["id"]
    for method, path, body in (
        ("GET", "/api/v1/groups/0000000000000000", None),
        ("GET", "/api/v1/groups/0000000000000000/events", None),
        ("POST", "/api/v1/groups/0000000000000000/status", {"status": "resolved"}),
        ("PUT", "/api/v1/groups/0000000000000000/assignee", {"assignee": "x"}),
        ("POST", "/api/v1/groups/0000000000000000/rule-draft", {}),
        ("POST", f"/api/v1/groups/{gid}/merge", {"group_ids": ["0000000000000000"]}),
    ):
        r = client.request(method, path, json=body)
        assert r.status_code == 404 and r.json()["error"]["code"] == "group_not_found", (path, r.text)
    for params in ({"status": "open"}, {"sort": "size"}, {"order": "up"}, {"limit": 0}, {"window": "2d"},
                   {"cursor": "garbage"}):  # fmt: skip
        r = client.get("/api/v1/groups", params=params)
        assert r.status_code == 400 and set(r.json()) == ERROR_KEYS, params


def test_rule_draft_matches_the_template_words_and_previews_the_change(client: TestClient, services: Services) -> None:
    _seed(client)
    frob = _by_title(_groups(client, window="7d"))["frobnicator"]
    r = client.post(
        f"/api/v1/groups/{frob['id']}/rule-draft",
        params={"window": "7d"},
        json={"kind": "frob_exploded", "category": "system_error", "is_actionable": True},
    )
    assert r.status_code == 200, r.text
    draft = r.json()
    rule = draft["rule"]
    assert rule["match"] == {"error_message_regex": ["frobnicator.{0,200}exploded in sector"]}
    assert (rule["failure_kind"], rule["failure_class"], rule["category"], rule["is_actionable"]) == (
        "frob_exploded",
        "service_failure",
        "system_error",
        True,
    )
    assert rule["examples"] == [{"error_message": frob["sample_message"]}]
    assert draft["yaml"].startswith(f"- name: group_{frob['id']}\n") and "frob_exploded" in draft["yaml"]
    preview = draft["preview"]
    assert preview["window"] == "7d" and preview["total_changed"] == frob["count"] == 6
    assert preview["total_examined"] == 11  # every event of the window: 9 fingerprinted, a success, a bare failure
    [move] = preview["moves"]
    assert move["from"] == {"failure_class": "service_failure", "failure_kind": "unclassified"}
    assert move["to"] == {"failure_class": "service_failure", "failure_kind": "frob_exploded"}
    assert move["count"] == 6 and set(move["sample_ids"]) <= {f"frob{i}" for i in range(6)}
    # Nothing was activated.
    assert services.rulebook.tenant_pack("default") is None
    assert client.get("/api/v1/events/frob0").json()["failure_kind"] == "unclassified"
    one_word = _by_title(_groups(client, window="7d"))["widget"]
    r = client.post(f"/api/v1/groups/{one_word['id']}/rule-draft", json={})
    assert r.status_code == 200 and r.json()["rule"]["failure_class"] == "service_failure"


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_url(request: pytest.FixtureRequest) -> str:
    """A database no migration has touched, on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "empty_postgres_url"))


def _old_row(i: int, now: int) -> dict[str, Any]:
    failed = i % 3 != 0
    return {
        "tenant": "default" if i % 4 else "other",
        "id": f"old-{i}",
        "source": ("api", "worker")[i % 2],
        "operation": None,
        "item_type": "request",
        "status": "failure" if failed else "success",
        "occurred_at": now - (i % 9) * 86_400_000 - i * 7_000,
        "received_at": now,
        "http_status": 502 if failed else 200,
        "error_code": None,
        "error_message": f"boom {i % 5} at node {i}" if failed else None,
        "attempt": i % 3 or None,
        "release": (None, "1.0", "1.1")[i % 3],
        "environment": (None, "production", "staging", "production")[i % 4],
        "attributes": None,
        "failure_kind": "boom" if failed else "none",
        "failure_class": "service_failure" if failed else "none",
        "is_actionable": failed,
        "category": "dependency_error" if failed else "none",
        "retryable": False,
        "rule_name": None,
        "rule_version": "default@2026-11-22",
        "fingerprint_id": f"{i % 5:016x}" if failed else None,
    }


def test_migration_0016_on_a_filled_database_rebuilds_group_rows(bare_url: str) -> None:
    engine = create_db_engine(bare_url)
    migrate(engine, "0015")
    now = now_ms()
    rows = [_old_row(i, now) for i in range(300)]
    old_shapes = [s for s in rollup_shapes.ALL_SHAPES if s != rollup_shapes.GROUP_SHAPE]
    counts, attempts = rollup_writes.deltas(rows, shapes=old_shapes)
    old_key = ROLLUP_KEY[:-1]
    with engine.begin() as conn:
        conn.execute(insert(Table("events", MetaData(), autoload_with=conn)), rows)
        old = Table("rollups", MetaData(), autoload_with=conn)
        assert "fingerprint_id" not in old.c
        values = [
            {**dict(zip(old_key, k, strict=False)), "count": n, "attempt_sum": attempts[k]} for k, n in counts.items()
        ]
        conn.execute(insert(old), values)
    migrate(engine)
    by = ("fingerprint_id", "release")
    week: dict[str, Any] = {"tenant": "default", "start": now - 10 * 86_400_000, "end": now + 1, "by": by}
    with engine.connect() as conn:
        assert not rollup_reads.group_rollups_ready(conn)
        # Until the job ran, group questions are answered from raw events.
        assert rollup_reads.aggregate(conn, **week) == rollup_reads.aggregate_events(conn, **week) != {}
    services = make_services(bare_url)
    ended = run_until_idle(services, pause_s=0)
    assert ("rollup_rebuild", "done", [rollup_shapes.GROUP_SHAPE]) in [
        (j.kind, j.state, j.params.get("shapes")) for j in ended
    ]

    def table_rows(conn: Any, shape: int) -> Counter[tuple[Any, ...]]:
        got: Counter[tuple[Any, ...]] = Counter()
        for row in conn.execute(select(rollups).where(rollups.c.shape == shape)).mappings():
            got[tuple(bool(row[n]) if n == "is_actionable" else row[n] for n in ROLLUP_KEY)] += row["count"]
        return +got

    with engine.connect() as conn:
        assert rollup_reads.group_rollups_ready(conn)
        stored = [dict(r) for r in conn.execute(select(events)).mappings()]
        expected, _ = rollup_writes.deltas(stored, shapes=[rollup_shapes.GROUP_SHAPE])
        assert table_rows(conn, rollup_shapes.GROUP_SHAPE) == +expected != Counter()
        assert sum(n for k, n in expected.items() if k[2] == 3_600) == sum(1 for r in rows if r["fingerprint_id"])
        assert rollup_reads.aggregate(conn, **week) == rollup_reads.aggregate_events(conn, **week)
    services.engine.dispose()
    command.downgrade(alembic_config(engine), "0015")
    with engine.connect() as conn:
        back = Table("rollups", MetaData(), autoload_with=conn)
        assert "fingerprint_id" not in back.c
        names = set(inspect(conn).get_table_names())
        assert "events" in names and not {"failure_groups", "group_members", "group_activity"} & names
    engine.dispose()
