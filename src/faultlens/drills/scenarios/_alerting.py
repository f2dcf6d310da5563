"""Shared by the alert delivery drills: a server routing alerts to a sink, two P0 alerts raised, the outbox read."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from faultlens.drills.harness import DrillContext, Server, new_trace_id, trace_id_of, traceparent
from faultlens.drills.sink import Call, Sink
from faultlens.timeutil import parse_rfc3339_ms

# The harness key's tenant; unknown keys are counted under default_tenant, so it is set to this one too and both
# alerts land where the drill's key can read them.
TENANT = "drill"
RECEIVER = "sink"
# Two P0 security alerts (alerting/security.py): P0 fires at once (for 0s), and each is its own group (group_by
# alertname), so the outbox holds two notifications in two batches.
ALERTS = ("auth_failure_spike", "revoked_key_used")
UNKNOWN_KEY_CALLS = 3
DELIVERIES = "faultlens_alert_deliveries_total"
DEAD = "faultlens_alert_notifications_dead_total"
PENDING = "faultlens_alert_notifications_pending"
LAG_SUM = "faultlens_alert_notification_lag_seconds_sum"
LAG_COUNT = "faultlens_alert_notification_lag_seconds_count"
DELIVERY_LOGGER = "faultlens.alerting.delivery"


def routing_yaml(sink_url: str) -> str:
    """group_wait 0s and for 0s: a notification is due the moment its alert fires; the security threshold is
    lowered so a handful of refused keys makes a spike."""
    return f"""version: 1
defaults: {{group_by: [alertname], group_wait: 0s, repeat_interval: 4h, receivers: [{RECEIVER}]}}
for: {{P0: 0s, P1: 0s, P2: 0s}}
receivers:
  - name: {RECEIVER}
    type: webhook
    url: "{sink_url}/hooks/faultlens"
    timeout: 2s
conditions: {{security_min_events: {UNKNOWN_KEY_CALLS}}}
"""


def start_alerting_server(ctx: DrillContext, sink: Sink, **settings: Any) -> Server:
    """A server evaluating every cfg.seconds(5) and sending every cfg.seconds(2) to `sink`; `settings` add to it."""
    path = ctx.work_dir / "alert-routing.yaml"
    path.write_text(routing_yaml(sink.url))
    cfg = ctx.cfg
    server = ctx.start_server(
        tenant=TENANT,
        default_tenant=TENANT,
        alert_routing_file=str(path),
        alert_eval_interval_s=cfg.seconds(5, at_least=0.2),
        alert_delivery_interval_s=cfg.seconds(2, at_least=0.1),
        api_usage_flush_interval_s=cfg.seconds(2, at_least=0.1),
        **settings,
    )
    ctx.note(f"server up at {server.url} (pid {server.pid}), alerts routed to the sink {sink.url}")
    return server


@dataclass
class Raised:
    """The requests that raised the alerts: their trace ids, and the revoked key's id (logged by the server)."""

    unknown_traces: list[str] = field(default_factory=list)
    revoked_trace: str = ""
    revoked_key_id: str = ""
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)


def _revoked_key(db_url: str) -> tuple[str, str]:
    """A read key of the tenant, revoked at once: (id, secret). Written to the server's database as
    `faultlens keys create` / `revoke` would."""
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine

    engine = create_db_engine(db_url)
    try:
        with engine.begin() as conn:
            key, secret = keys.create_key(conn, tenant=TENANT, scopes=["read"], name="drill-revoked")
            keys.revoke_key(conn, key_id=key.id)
    finally:
        engine.dispose()
    return key.id, secret


def raise_alerts(ctx: DrillContext, server: Server) -> Raised:
    """Present unknown keys and a revoked key (traced requests, each refused 401), then wait for both alerts firing."""
    raised = Raised()
    statuses: list[int] = []
    for _ in range(UNKNOWN_KEY_CALLS):
        trace = new_trace_id()
        answer = server.get(
            "/api/v1/alerting/alerts",
            headers={"Authorization": f"Bearer fl_unknown_{secrets.token_hex(12)}", "traceparent": traceparent(trace)},
        )
        statuses.append(answer.status_code)
        raised.unknown_traces.append(trace_id_of(answer) or "")
    raised.revoked_key_id, secret = _revoked_key(server.db_url)
    trace = new_trace_id()
    answer = server.get(
        "/api/v1/alerting/alerts", headers={"Authorization": f"Bearer {secret}", "traceparent": traceparent(trace)}
    )
    statuses.append(answer.status_code)
    raised.revoked_trace = trace_id_of(answer) or ""
    ctx.note(f"{UNKNOWN_KEY_CALLS} unknown keys and revoked key {raised.revoked_key_id} presented: answers {statuses}")
    ctx.check("every refused key answered 401", all(s == 401 for s in statuses), f"statuses {statuses}")
    sent = [*raised.unknown_traces, raised.revoked_trace]
    ctx.check("each 401 answer names its trace", all(sent), f"trace ids {sent}")
    for trace_id in sent:
        ctx.add_trace_id(trace_id)

    def both_firing() -> dict[str, dict[str, Any]] | None:
        found = firing(server)
        return found if all(name in found for name in ALERTS) else None

    raised.alerts = ctx.wait_until(both_firing, ctx.cfg.seconds(100, at_least=10), f"alerts {ALERTS} firing")
    told = ", ".join(f"{name} ({alert['id']})" for name, alert in sorted(raised.alerts.items()))
    ctx.note(f"alerts firing: {told}")
    return raised


def check_refusals_logged(ctx: DrillContext, server: Server, raised: Raised) -> None:
    """The server's JSON lines carry the refused requests' trace ids: the revoked-key warning and the access lines."""

    def revoked_line() -> dict[str, Any] | None:
        for line in server.logs():
            if raised.revoked_key_id in str(line.get("msg", "")) and line.get("level") == "WARNING":
                return line
        return None

    line = ctx.try_wait(revoked_line, ctx.cfg.seconds(50, at_least=5))
    ctx.check(
        "the revoked-key warning names the key and carries the request's trace id",
        line is not None and line.get("trace_id") == raised.revoked_trace,
        "no such line" if line is None else f"{line.get('msg')} trace_id={line.get('trace_id')}",
    )
    traces = set(raised.unknown_traces)
    access = [
        x
        for x in server.logs()
        if x.get("logger") == "faultlens.access" and x.get("trace_id") in traces and x.get("status") == 401
    ]
    ctx.check(
        "each unknown-key request has a 401 access line under its trace id",
        {x.get("trace_id") for x in access} == traces,
        f"{len(access)} access lines for {len(traces)} traces",
    )
    ctx.add_log_lines([*([line] if line else []), *access[:1]])


def firing(server: Server) -> dict[str, dict[str, Any]]:
    """The tenant's firing alerts by name."""
    answer = server.get("/api/v1/alerting/alerts", params={"state": "firing"})
    answer.raise_for_status()
    return {a["name"]: a for a in answer.json()["alerts"]}


def outbox(server: Server) -> list[dict[str, Any]]:
    """Every notification of the tenant in the outbox, with its state, tries and last error."""
    answer = server.get("/api/v1/alerting/notifications", params={"limit": 500})
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def await_delivery(ctx: DrillContext, server: Server, timeout_s: float) -> list[dict[str, Any]]:
    """The outbox once every notification is delivered, or as it stands at the deadline (a failed check; what is
    missing then counts as lost in check_delivered_once)."""

    def all_delivered() -> list[dict[str, Any]] | None:
        items = outbox(server)
        return items if len(items) >= len(ALERTS) and all(i["state"] == "delivered" for i in items) else None

    items = ctx.try_wait(all_delivered, timeout_s) or outbox(server)
    states = ", ".join(f"{i['id']} {i['state']} tries={i['attempts']}" for i in items)
    ctx.note(f"outbox after: {states}")
    ctx.check(
        f"every notification delivered within {timeout_s:g} s",
        len(items) == len(ALERTS) and all(i["state"] == "delivered" for i in items),
        states,
    )
    return items


def settled(metrics: dict[str, float]) -> dict[str, float] | None:
    """The metrics once the sender's pass ended: it sets the pending gauge last, after recording the delivery."""
    return metrics if metrics.get(PENDING) == 0 else None


def ms(value: str | None) -> int:
    return parse_rfc3339_ms(value) if value else 0


def check_delivered_once(ctx: DrillContext, sink: Sink, items: list[dict[str, Any]]) -> None:
    """Every outbox notification reached the sink in exactly one accepted call; nothing else did. Missing ones
    are counted as lost."""
    ids = [i["id"] for i in items]
    got = Counter(sink.notification_ids())
    missing = [i for i in ids if got[i] == 0]
    twice = {i: n for i, n in got.items() if n > 1}
    unknown = [i for i in got if i not in ids]
    ctx.lost += len(missing)
    ctx.check(
        "every notification in the outbox accepted by the sink exactly once (by notification id)",
        not missing and not twice and not unknown and len(ids) == len(ALERTS),
        f"{len(ids)} in the outbox; missing {missing}, more than once {twice}, not in the outbox {unknown}",
    )
    bodies_ok = all(_body_ids(c) == c.notification_ids for c in sink.accepted())
    ctx.check(
        "each accepted body's notification ids match its X-Faultlens-Notification-Ids header",
        bodies_ok,
        "; ".join(f"{c.idempotency_key}: {c.notification_ids}" for c in sink.accepted()),
    )
    names = sorted(a.get("name", "") for c in sink.accepted() for a in _alerts(c))
    ctx.check("the sink was told of both alerts", names == sorted(ALERTS), f"alerts told: {names}")


def _alerts(call: Call) -> list[dict[str, Any]]:
    body = call.body if isinstance(call.body, dict) else {}
    alerts = body.get("alerts") or []
    return [a for a in alerts if isinstance(a, dict)]


def _body_ids(call: Call) -> list[str]:
    return [str(a.get("notification_id")) for a in _alerts(call)]


def retry_lines(server: Server, fragment: str) -> list[dict[str, Any]]:
    """The sender's warnings that a batch to the sink failed with `fragment` and was scheduled again."""
    return [
        line
        for line in server.logs()
        if line.get("logger") == DELIVERY_LOGGER
        and f"alert receiver {RECEIVER}: {fragment}" in str(line.get("msg", ""))
        and "tried again in" in str(line.get("msg", ""))
    ]
