"""Notification bodies: faultlens' generic webhook (v1), Alertmanager's webhook (version 4) and its v2 alerts API."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from faultlens.alert_model import Notification, Receiver, canonical_labels
from faultlens.timeutil import ms_to_rfc3339

GENERIC_VERSION = "faultlens.alert.v1"
ALERTMANAGER_WEBHOOK_VERSION = "4"
ALERTMANAGER_API_PATH = "/api/v2/alerts"
# Go's zero time: Alertmanager's endsAt of an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"
# Firing alerts are sent again to alertmanager_api receivers once per AM_RESEND_S (alerting/evaluate.py), each with
# endsAt this far ahead: Alertmanager keeps a firing alert that long without hearing from faultlens again, so a
# missed re-send or two does not resolve it, and a faultlens that stopped lets it resolve within minutes.
AM_RESEND_S = 60.0
DEFAULT_RESEND_TTL_S = 4 * AM_RESEND_S
# Annotations holding epoch milliseconds: sent as RFC 3339 times.
TIME_ANNOTATIONS = frozenset({"last_release_seen_at", "rule_activated_at"})
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_]")


def _alert_url(payload: Mapping[str, Any], external_url: str) -> str:
    """The dashboard page of the alert: <external_url>/alerts?alert=<id>."""
    given = payload.get("url")
    if isinstance(given, str) and given.startswith(("http://", "https://")):
        return given
    if not external_url:
        return ""
    return f"{external_url.rstrip('/')}/alerts?alert={quote(str(payload.get('id', '')), safe='')}"


def _time(ms: Any) -> str | None:
    return ms_to_rfc3339(int(ms)) if isinstance(ms, int | float) and not isinstance(ms, bool) else None


def _status(notifications: Sequence[Notification]) -> str:
    """The group's status as Alertmanager computes it: firing while any alert in it fires."""
    return "firing" if any(n.kind == "firing" for n in notifications) else "resolved"


def _generic_annotations(annotations: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in annotations.items():
        out[str(key)] = _time(value) if key in TIME_ANNOTATIONS else value
    return out


def webhook_body(
    notifications: Sequence[Notification],
    *,
    receiver: str,
    group_key: str,
    external_url: str,
    group_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """faultlens' own body (docs/alerting.md, "Notification bodies"): snake_case, typed values, one entry per
    notification with its idempotency key."""
    alerts = []
    for n in notifications:
        p = n.payload
        annotations = _generic_annotations(p.get("annotations") or {})
        alerts.append(
            {
                "notification_id": n.id,
                "id": n.alert_id,
                "tenant": n.tenant,
                "name": p.get("name", ""),
                "level": p.get("level", ""),
                "status": n.kind,
                "labels": {str(k): str(v) for k, v in (p.get("labels") or {}).items()},
                "annotations": annotations,
                "summary": annotations.get("summary", ""),
                "owner": annotations.get("owner", ""),
                "runbook_url": annotations.get("runbook_url", ""),
                "starts_at": _time(p.get("starts_at")),
                "ends_at": _time(p.get("ends_at")) if n.kind == "resolved" else None,
                "value": p.get("value"),
                "threshold": p.get("threshold"),
                "episode": p.get("episode"),
                "url": _alert_url(p, external_url),
            }
        )
    return {
        "version": GENERIC_VERSION,
        "receiver": receiver,
        "group_key": group_key,
        "status": _status(notifications),
        "group_labels": {str(k): str(v) for k, v in (group_labels or {}).items()},
        "external_url": external_url,
        "alerts": alerts,
    }


# --- Alertmanager -------------------------------------------------------------------------------


def _label_name(name: str) -> str:
    """A name every Alertmanager accepts: [A-Za-z_][A-Za-z0-9_]* (other characters become _)."""
    clean = _LABEL_CHARS.sub("_", name) or "_"
    return "_" + clean if clean[0].isdigit() else clean


def _string_map(values: Mapping[str, Any]) -> dict[str, str]:
    """Alertmanager's label sets are string to string; an empty value means the label is absent, so it is left out."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        out[_label_name(str(key))] = value if isinstance(value, str) else _scalar(value)
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def am_labels(n: Notification) -> dict[str, str]:
    """The labels sent to Alertmanager: the alert's labels plus its tenant."""
    labels = dict(n.payload.get("labels") or {})
    labels.setdefault("alertname", n.payload.get("name", ""))
    labels["tenant"] = n.tenant
    return _string_map(labels)


def am_annotations(n: Notification) -> dict[str, str]:
    """Every annotation as a string; epoch-millisecond times as RFC 3339, absent values left out."""
    annotations = dict(n.payload.get("annotations") or {})
    for key in TIME_ANNOTATIONS & set(annotations):
        annotations[key] = _time(annotations[key])
    return _string_map(annotations)


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit identity of a label set, the width of Alertmanager's own fingerprints."""
    return hashlib.sha256(canonical_labels(labels).encode()).hexdigest()[:16]


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map holds with the same value (commonLabels, commonAnnotations)."""
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def alertmanager_webhook_body(
    notifications: Sequence[Notification],
    *,
    receiver: str,
    group_key: str,
    external_url: str,
    group_labels: Mapping[str, str],
) -> dict[str, Any]:
    """Alertmanager's webhook message (notify/webhook Message: template.Data + version, groupKey, truncatedAlerts):
    receivers written for Alertmanager read it unchanged."""
    alerts: list[dict[str, Any]] = []
    label_sets: list[dict[str, str]] = []
    annotation_sets: list[dict[str, str]] = []
    for n in notifications:
        p = n.payload
        labels, annotations = am_labels(n), am_annotations(n)
        label_sets.append(labels)
        annotation_sets.append(annotations)
        ends = _time(p.get("ends_at")) if n.kind == "resolved" else None
        alerts.append(
            {
                "status": n.kind,
                "labels": labels,
                "annotations": annotations,
                "startsAt": _time(p.get("starts_at")) or ZERO_TIME,
                "endsAt": ends or ZERO_TIME,
                "generatorURL": _alert_url(p, external_url),
                "fingerprint": fingerprint(labels),
            }
        )
    return {
        "version": ALERTMANAGER_WEBHOOK_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": _status(notifications),
        "receiver": receiver,
        "groupLabels": _string_map(group_labels),
        "commonLabels": _common(label_sets),
        "commonAnnotations": _common(annotation_sets),
        "externalURL": external_url,
        "alerts": alerts,
    }


def alertmanager_api_body(
    notifications: Sequence[Notification], *, resend_ttl_s: float, now_ms: int, external_url: str = ""
) -> list[dict[str, Any]]:
    """POST /api/v2/alerts (postableAlerts). A firing alert ends at now + resend_ttl_s: Alertmanager resolves it
    on its own unless faultlens sends it again before then. A resolved one carries its end."""
    out = []
    for n in notifications:
        p = n.payload
        starts_ms = int(p.get("starts_at") or now_ms)
        resolved = n.kind == "resolved"
        ends_ms = int(p.get("ends_at") or now_ms) if resolved else now_ms + int(resend_ttl_s * 1000)
        alert: dict[str, Any] = {
            "labels": am_labels(n),
            "annotations": am_annotations(n),
            "startsAt": ms_to_rfc3339(starts_ms),
            # Alertmanager refuses an alert that ends before it starts.
            "endsAt": ms_to_rfc3339(max(ends_ms, starts_ms)),
        }
        url = _alert_url(p, external_url)
        if url:  # the API wants a URI here: nothing rather than a relative path
            alert["generatorURL"] = url
        out.append(alert)
    return out


def api_url(base_url: str) -> str:
    """<Alertmanager base URL>/api/v2/alerts (a URL already ending so is kept)."""
    base = base_url.rstrip("/")
    return base if base.endswith(ALERTMANAGER_API_PATH) else base + ALERTMANAGER_API_PATH


def render(
    receiver: Receiver,
    notifications: Sequence[Notification],
    *,
    group_key: str,
    group_labels: Mapping[str, str],
    external_url: str,
    now_ms: int,
    resend_ttl_s: float = DEFAULT_RESEND_TTL_S,
) -> tuple[str, Any]:
    """The URL to POST to and the JSON body for this receiver's type."""
    if receiver.type == "alertmanager_api":
        body = alertmanager_api_body(notifications, resend_ttl_s=resend_ttl_s, now_ms=now_ms, external_url=external_url)
        return api_url(receiver.url), body
    if receiver.type == "alertmanager_webhook":
        return receiver.url, alertmanager_webhook_body(
            notifications,
            receiver=receiver.name,
            group_key=group_key,
            external_url=external_url,
            group_labels=group_labels,
        )
    return receiver.url, webhook_body(
        notifications,
        receiver=receiver.name,
        group_key=group_key,
        external_url=external_url,
        group_labels=group_labels,
    )
