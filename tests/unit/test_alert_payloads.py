"""Notification bodies: the generic v1 body, Alertmanager's webhook message (version 4) and its v2 postable alerts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from faultlens.alert_model import Notification, Receiver
from faultlens.alerting.payloads import (
    DEFAULT_RESEND_TTL_S,
    alertmanager_api_body,
    alertmanager_webhook_body,
    fingerprint,
    render,
    webhook_body,
)
from faultlens.timeutil import parse_rfc3339_ms

T0 = 1_796_000_000_000  # 2026-11-30T00:53:20Z
T0_TEXT = "2026-11-30T00:53:20.000Z"
NOW = T0 + 600_000
EXTERNAL = "https://faultlens.example.com"


def notification(
    kind: str = "firing",
    *,
    alert: str = "a1b2c3d4e5f60718293a4b5c",
    labels: dict[str, str] | None = None,
    summary: str = "checkout: 42 failed tasks in 5 minutes (usual 3)",
    ends_at: int | None = None,
    tenant: str = "acme",
) -> Notification:
    labels = labels or {"alertname": "FailureSpike", "level": "P1", "source": "checkout"}
    return Notification(
        id=f"{alert}-1-{kind[0]}-0123456789ab",
        tenant=tenant,
        alert_id=alert,
        receiver="team",
        kind=kind,  # type: ignore[arg-type]
        group_key="team/acme/{alertname=FailureSpike,source=checkout}",
        payload={
            "id": alert,
            "tenant": tenant,
            "name": labels["alertname"],
            "level": labels["level"],
            "status": kind,
            "labels": labels,
            "annotations": {
                "summary": summary,
                "description": "",
                "runbook_url": "https://wiki.example.com/runbooks#FailureSpike",
                "owner": "shop-team",
                "last_release": "checkout 2026.11.29-2",
                "last_release_seen_at": T0 - 3_600_000,
                "rule_version": "builtin@2026-11-01",
                "rule_activated_at": None,
                "response_minutes": 15,
            },
            "starts_at": T0,
            "ends_at": ends_at,
            "value": 42.0,
            "threshold": 9.0,
            "episode": 1,
            "url": f"{EXTERNAL}/alerts?alert={alert}",
        },
        created_at=T0,
    )


def test_generic_body_v1() -> None:
    firing = notification()
    body = webhook_body(
        [firing],
        receiver="team",
        group_key=firing.group_key,
        external_url=EXTERNAL,
        group_labels={"alertname": "FailureSpike", "source": "checkout"},
    )
    assert body == {
        "version": "faultlens.alert.v1",
        "receiver": "team",
        "group_key": "team/acme/{alertname=FailureSpike,source=checkout}",
        "status": "firing",
        "group_labels": {"alertname": "FailureSpike", "source": "checkout"},
        "external_url": EXTERNAL,
        "alerts": [
            {
                "notification_id": "a1b2c3d4e5f60718293a4b5c-1-f-0123456789ab",
                "id": "a1b2c3d4e5f60718293a4b5c",
                "tenant": "acme",
                "name": "FailureSpike",
                "level": "P1",
                "status": "firing",
                "labels": {"alertname": "FailureSpike", "level": "P1", "source": "checkout"},
                "annotations": {
                    "summary": "checkout: 42 failed tasks in 5 minutes (usual 3)",
                    "description": "",
                    "runbook_url": "https://wiki.example.com/runbooks#FailureSpike",
                    "owner": "shop-team",
                    "last_release": "checkout 2026.11.29-2",
                    "last_release_seen_at": "2026-11-29T23:53:20.000Z",
                    "rule_version": "builtin@2026-11-01",
                    "rule_activated_at": None,
                    "response_minutes": 15,
                },
                "summary": "checkout: 42 failed tasks in 5 minutes (usual 3)",
                "owner": "shop-team",
                "runbook_url": "https://wiki.example.com/runbooks#FailureSpike",
                "starts_at": T0_TEXT,
                "ends_at": None,
                "value": 42.0,
                "threshold": 9.0,
                "episode": 1,
                "url": f"{EXTERNAL}/alerts?alert=a1b2c3d4e5f60718293a4b5c",
            }
        ],
    }
    json.dumps(body, allow_nan=False)  # plain JSON, nothing Python-only


def test_generic_body_of_a_resolved_group() -> None:
    resolved = notification("resolved", ends_at=T0 + 120_000)
    body = webhook_body([resolved], receiver="team", group_key="k", external_url=EXTERNAL)
    assert body["status"] == "resolved"
    assert body["group_labels"] == {}
    (alert,) = body["alerts"]
    assert (alert["status"], alert["starts_at"], alert["ends_at"]) == ("resolved", T0_TEXT, "2026-11-30T00:55:20.000Z")
    mixed = webhook_body([resolved, notification(alert="f" * 24)], receiver="team", group_key="k", external_url="")
    assert mixed["status"] == "firing"  # firing while any alert of the group fires


# --- Alertmanager's webhook message: notify/webhook/webhook.go Message = template.Data + 3 fields ---------

# template.Data and template.Alert of prometheus/alertmanager, field by field (JSON name -> Go type).
AM_MESSAGE = {
    "version": str,
    "groupKey": str,
    "truncatedAlerts": int,  # uint64
    "receiver": str,
    "status": str,
    "alerts": list,
    "groupLabels": dict,  # KV: map[string]string
    "commonLabels": dict,
    "commonAnnotations": dict,
    "externalURL": str,
}
AM_ALERT = {
    "status": str,
    "labels": dict,
    "annotations": dict,
    "startsAt": str,  # time.Time: RFC 3339
    "endsAt": str,
    "generatorURL": str,
    "fingerprint": str,
}
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def assert_go_time(value: str) -> int:
    """What Go's time.Time.UnmarshalJSON accepts: RFC 3339 with a mandatory offset."""
    if value == "0001-01-01T00:00:00Z":
        return -62135596800000
    return parse_rfc3339_ms(value)


def assert_string_map(value: dict[str, Any], *, names: bool = True) -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()), value
    if names:
        assert all(LABEL_NAME.fullmatch(k) for k in value), value


def assert_alertmanager_message(body: dict[str, Any]) -> None:
    assert {k: type(v) for k, v in body.items()} == AM_MESSAGE
    assert body["version"] == "4" and body["truncatedAlerts"] >= 0
    assert body["status"] in ("firing", "resolved")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert_string_map(body[key])
    for alert in body["alerts"]:
        assert {k: type(v) for k, v in alert.items()} == AM_ALERT
        assert alert["status"] in ("firing", "resolved")
        assert_string_map(alert["labels"])
        assert_string_map(alert["annotations"])
        assert_go_time(alert["startsAt"])
        assert_go_time(alert["endsAt"])
        assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])


def test_alertmanager_webhook_message() -> None:
    firing = notification()
    body = alertmanager_webhook_body(
        [firing],
        receiver="pager",
        group_key=firing.group_key,
        external_url=EXTERNAL,
        group_labels={"alertname": "FailureSpike", "source": "checkout"},
    )
    assert_alertmanager_message(body)
    labels = {"alertname": "FailureSpike", "level": "P1", "source": "checkout", "tenant": "acme"}
    annotations = {
        "summary": "checkout: 42 failed tasks in 5 minutes (usual 3)",
        "runbook_url": "https://wiki.example.com/runbooks#FailureSpike",
        "owner": "shop-team",
        "last_release": "checkout 2026.11.29-2",
        "last_release_seen_at": "2026-11-29T23:53:20.000Z",
        "rule_version": "builtin@2026-11-01",
        "response_minutes": "15",
    }
    assert body == {
        "version": "4",
        "groupKey": "team/acme/{alertname=FailureSpike,source=checkout}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pager",
        "groupLabels": {"alertname": "FailureSpike", "source": "checkout"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": EXTERNAL,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": T0_TEXT,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"{EXTERNAL}/alerts?alert=a1b2c3d4e5f60718293a4b5c",
                "fingerprint": fingerprint(labels),
            }
        ],
    }


def test_alertmanager_webhook_message_of_a_group() -> None:
    resolved = notification(
        "resolved",
        alert="b" * 24,
        labels={"alertname": "FailureSpike", "level": "P1", "source": "payments"},
        summary="payments: back to normal",
        ends_at=T0 + 300_000,
    )
    firing = notification()
    body = alertmanager_webhook_body(
        [firing, resolved],
        receiver="pager",
        group_key="g",
        external_url=EXTERNAL,
        group_labels={"alertname": "FailureSpike", "empty": ""},
    )
    assert_alertmanager_message(body)
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "FailureSpike"}  # an empty value is an absent label
    assert body["commonLabels"] == {"alertname": "FailureSpike", "level": "P1", "tenant": "acme"}
    assert set(body["commonAnnotations"]) == set(body["alerts"][0]["annotations"]) - {"summary"}
    assert [(a["status"], a["endsAt"]) for a in body["alerts"]] == [
        ("firing", "0001-01-01T00:00:00Z"),
        ("resolved", "2026-11-30T00:58:20.000Z"),
    ]
    first, second = (a["fingerprint"] for a in body["alerts"])
    assert first != second
    assert first == fingerprint(dict(reversed(list(body["alerts"][0]["labels"].items()))))  # order does not count


def test_alertmanager_labels_are_valid_names_and_strings() -> None:
    odd = notification(labels={"alertname": "X", "level": "P2", "failure.kind": "timeout", "9lives": "y", "e": ""})
    body = alertmanager_webhook_body([odd], receiver="r", group_key="g", external_url="", group_labels={})
    assert_alertmanager_message(body)
    assert body["alerts"][0]["labels"] == {
        "alertname": "X",
        "level": "P2",
        "failure_kind": "timeout",
        "_9lives": "y",
        "tenant": "acme",
    }
    assert body["alerts"][0]["generatorURL"] == f"{EXTERNAL}/alerts?alert=a1b2c3d4e5f60718293a4b5c"
    bare = notification()
    bare_payload = {**bare.payload, "url": "/alerts?alert=x"}
    no_url = Notification(**{**bare.__dict__, "payload": bare_payload})
    assert (
        alertmanager_webhook_body([no_url], receiver="r", group_key="g", external_url="", group_labels={})["alerts"][0][
            "generatorURL"
        ]
        == ""
    )


# --- Alertmanager API v2: POST /api/v2/alerts, postableAlerts ----------------------------------------------

POSTABLE_ALERT = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_alertmanager_api_body() -> None:
    firing = notification()
    resolved = notification("resolved", alert="c" * 24, ends_at=T0 + 90_000)
    body = alertmanager_api_body([firing, resolved], resend_ttl_s=900, now_ms=NOW, external_url=EXTERNAL)
    labels = {"alertname": "FailureSpike", "level": "P1", "source": "checkout", "tenant": "acme"}
    assert [set(a) for a in body] == [POSTABLE_ALERT, POSTABLE_ALERT]
    assert body[0] == {
        "labels": labels,
        "annotations": body[0]["annotations"],
        "startsAt": T0_TEXT,
        "endsAt": "2026-11-30T01:18:20.000Z",  # now (T0 + 10 min) + 15 min: Alertmanager resolves it unless re-sent
        "generatorURL": f"{EXTERNAL}/alerts?alert=a1b2c3d4e5f60718293a4b5c",
    }
    assert body[0]["annotations"]["owner"] == "shop-team"
    assert_string_map(body[0]["annotations"])
    assert body[1]["endsAt"] == "2026-11-30T00:54:50.000Z"
    assert body[1]["generatorURL"] == f"{EXTERNAL}/alerts?alert={'c' * 24}"
    for alert in body:
        assert_string_map(alert["labels"])
        assert assert_go_time(alert["endsAt"]) >= assert_go_time(alert["startsAt"])


def test_alertmanager_api_body_edges() -> None:
    # A resolved alert without an end ends now; an end before the start is moved to the start (Alertmanager
    # refuses endsAt < startsAt); without a URL of the dashboard, no generatorURL (the API wants a URI).
    bare = notification("resolved", ends_at=None)
    early = notification("resolved", alert="d" * 24, ends_at=T0 - 5_000)
    no_url = [Notification(**{**n.__dict__, "payload": {**n.payload, "url": ""}}) for n in (bare, early)]
    body = alertmanager_api_body(no_url, resend_ttl_s=60, now_ms=NOW)
    assert [a["endsAt"] for a in body] == ["2026-11-30T01:03:20.000Z", T0_TEXT]
    assert all(set(a) == POSTABLE_ALERT - {"generatorURL"} for a in body)


@pytest.mark.parametrize(
    ("kind", "base", "url"),
    [
        ("webhook", "https://hooks.example/x?token=1", "https://hooks.example/x?token=1"),
        ("alertmanager_webhook", "https://pager.example/am", "https://pager.example/am"),
        ("alertmanager_api", "http://am:9093", "http://am:9093/api/v2/alerts"),
        ("alertmanager_api", "http://am:9093/prefix/", "http://am:9093/prefix/api/v2/alerts"),
        ("alertmanager_api", "http://am:9093/api/v2/alerts", "http://am:9093/api/v2/alerts"),
    ],
)
def test_render_picks_url_and_body(kind: str, base: str, url: str) -> None:
    receiver = Receiver(name="r", type=kind, url=base)  # type: ignore[arg-type]
    firing = notification()
    to, body = render(
        receiver,
        [firing],
        group_key=firing.group_key,
        group_labels={"alertname": "FailureSpike"},
        external_url=EXTERNAL,
        now_ms=NOW,
    )
    assert to == url
    if kind == "webhook":
        assert body["version"] == "faultlens.alert.v1" and body["receiver"] == "r"
    elif kind == "alertmanager_webhook":
        assert_alertmanager_message(body)
        assert (body["receiver"], body["groupLabels"]) == ("r", {"alertname": "FailureSpike"})
    else:
        assert isinstance(body, list) and set(body[0]) == POSTABLE_ALERT
        # The default resend TTL: five hours past now.
        assert assert_go_time(body[0]["endsAt"]) == NOW + int(DEFAULT_RESEND_TTL_S * 1000)


def test_the_documented_generic_body_is_what_is_sent() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "alerting.md").read_text()
    section = doc.split("### Generic body", 1)[1]
    documented = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    firing = notification()
    sent = webhook_body(
        [firing],
        receiver="team-webhook",
        group_key="team-webhook/acme/{alertname=FailureSpike,source=checkout}",
        external_url=EXTERNAL,
        group_labels={"alertname": "FailureSpike", "source": "checkout"},
    )
    assert sent == documented
