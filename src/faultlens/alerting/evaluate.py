"""Alert evaluation: candidates in, state out. pending -> firing after the level's `for`, firing -> resolved when
the condition clears, each change in alert_history, and each notification written to the outbox in the same
transaction as the change that caused it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from faultlens.alert_model import (
    RESPONSE_MINUTES,
    AlertState,
    Candidate,
    Notification,
    Route,
    alert_id,
)
from faultlens.alerting import conditions, matchers
from faultlens.alerting.payloads import AM_RESEND_S
from faultlens.alerting.routing import Routing
from faultlens.alerting.security import security_candidates
from faultlens.store import alerts as store
from faultlens.store import notifications as outbox
from faultlens.store.alerts import AlertRow, SilenceRow
from faultlens.store.rollup_shapes import DAY_MS
from faultlens.store.state import write_lock
from faultlens.timeutil import now_ms
from faultlens.triage import slo

log = logging.getLogger("faultlens.alerting")

# How far back the "last release seen for that source" looks.
RELEASE_LOOKBACK_MS = 7 * DAY_MS


@dataclass
class TenantReport:
    tenant: str
    candidates: int = 0
    pending: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: int = 0


@dataclass
class EvalReport:
    at: int
    tenants: list[TenantReport] = field(default_factory=list)

    @property
    def notifications(self) -> int:
        return sum(t.notifications for t in self.tenants)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "tenants": len(self.tenants),
            "candidates": sum(t.candidates for t in self.tenants),
            "fired": [a for t in self.tenants for a in t.fired],
            "resolved": [a for t in self.tenants for a in t.resolved],
            "notifications": self.notifications,
        }


@dataclass
class Evaluator:
    """One evaluation pass over every tenant with something to judge; the alert_evaluator duty calls `evaluate`."""

    engine: Engine
    routing: Callable[[], Routing]
    slo_config: Callable[[], slo.SloConfig]
    # The rule version a tenant's events are classified with (Services.classifier_for(tenant).version).
    rule_version: Callable[[str], str]
    external_url: str = ""
    default_tenant: str = "default"
    # Called after a pass that wrote notifications, so the sender does not wait for its next period.
    on_notifications: Callable[[], None] | None = None

    def evaluate(self, *, now: int | None = None, tenants: Sequence[str] | None = None) -> EvalReport:
        now = now_ms() if now is None else now
        routing = self.routing()
        report = EvalReport(now)
        if tenants is None:
            with self.engine.connect() as conn:
                tenants = store.tenants_to_evaluate(conn, default_tenant=self.default_tenant)
        for tenant in tenants:
            try:
                report.tenants.append(self.evaluate_tenant(tenant, routing=routing, now=now))
            except Exception:
                # One tenant's bad data must not stop the others' alerts.
                log.exception("alert evaluation failed for a tenant", extra={"tenant_id": tenant})
        if report.notifications and self.on_notifications is not None:
            self.on_notifications()
        return report

    def candidates(self, conn: Connection, tenant: str, *, routing: Routing, now: int) -> list[Candidate]:
        ctx = conditions.Context(
            tenant=tenant,
            now=now,
            slo_config=self.slo_config(),
            settings=routing.conditions,
            main_path_sources=routing.main_path_sources,
        )
        found = conditions.data_candidates(conn, ctx)
        found += security_candidates(conn, tenant=tenant, now=now, settings=routing.conditions)
        return found

    def evaluate_tenant(self, tenant: str, *, routing: Routing, now: int) -> TenantReport:
        # Conditions are read first, outside the write transaction: the reads may take a while, the write not.
        with self.engine.connect() as conn:
            found = self.candidates(conn, tenant, routing=routing, now=now)
        report = TenantReport(tenant, candidates=len(found))
        by_id = {alert_id(tenant, c.labels): c for c in found}
        with self.engine.begin() as conn:
            write_lock(conn)
            rows = {r.id: r for r in store.list_active(conn, tenant=tenant)}
            rows.update(store.find_alerts(conn, tenant=tenant, ids=[i for i in by_id if i not in rows]))
            silences = store.list_silences(conn, tenant=tenant, active_at=now)
            step = _Step(conn, self, routing, tenant, now, silences, report)
            for aid, candidate in by_id.items():
                step.seen(aid, candidate, rows.get(aid))
            for aid, row in rows.items():
                if aid not in by_id and row.state in (AlertState.PENDING, AlertState.FIRING):
                    step.cleared(row)
        return report


@dataclass
class _Step:
    """One tenant's state changes inside one transaction."""

    conn: Connection
    ev: Evaluator
    routing: Routing
    tenant: str
    now: int
    silences: list[SilenceRow]
    report: TenantReport

    def seen(self, aid: str, c: Candidate, row: AlertRow | None) -> None:
        """The condition is true."""
        now = self.now
        route = self.routing.route(c.labels)
        new = row is None
        reset_ack = False
        if row is None or row.state in (AlertState.RESOLVED, AlertState.INACTIVE):
            row = self._opened(aid, c, row)
            row.annotations.update(self._last_change(c))
            store.add_history(self.conn, tenant=self.tenant, alert_id=aid, at=now, event="pending", value=c.value)
            self.report.pending.append(aid)
        row.value, row.threshold, row.last_seen_at, row.updated_at = c.value, c.threshold, now, now
        row.annotations = {**row.annotations, **self._annotations(c, route)}
        for_ms = int(self.routing.for_s.get(c.level, 0.0) * 1000)
        if row.state == AlertState.PENDING and now - row.active_since >= for_ms:
            row.state = AlertState.FIRING.value
            row.starts_at, row.ends_at, row.episode = now, None, row.episode + 1
            row.last_notified_at, row.silenced_by = None, None
            row.acked_by = row.acked_at = row.ack_comment = None
            reset_ack = True
            row.annotations.update(self._last_change(c))
            store.add_history(self.conn, tenant=self.tenant, alert_id=aid, at=now, event="firing", value=c.value)
            self.report.fired.append(aid)
        if row.state == AlertState.FIRING:
            self._notify_firing(row, route)
        store.save_alert(self.conn, row, new=new, reset_ack=reset_ack)

    def cleared(self, row: AlertRow) -> None:
        """The condition no longer holds."""
        now = self.now
        row.updated_at = now
        if row.state == AlertState.PENDING:
            row.state = AlertState.INACTIVE.value
            store.add_history(self.conn, tenant=self.tenant, alert_id=row.id, at=now, event="inactive")
        else:
            row.state, row.ends_at = AlertState.RESOLVED.value, now
            store.add_history(self.conn, tenant=self.tenant, alert_id=row.id, at=now, event="resolved")
            self.report.resolved.append(row.id)
            # Who was told it fired is told it resolved; a firing nobody was told of (silenced) resolves quietly.
            if row.last_notified_at is not None:
                self._write(row, self.routing.route(row.labels), "resolved", seq="")
        store.save_alert(self.conn, row, new=False)

    def _opened(self, aid: str, c: Candidate, row: AlertRow | None) -> AlertRow:
        episode = row.episode if row is not None else 0
        return AlertRow(
            id=aid,
            tenant=self.tenant,
            name=c.name,
            level=c.level,
            labels=dict(c.labels),
            annotations={},
            state=AlertState.PENDING.value,
            value=c.value,
            threshold=c.threshold,
            active_since=self.now,
            starts_at=None,
            ends_at=None,
            last_seen_at=self.now,
            last_notified_at=None,
            episode=episode,
            silenced_by=None,
            acked_by=None,
            acked_at=None,
            ack_comment=None,
            updated_at=self.now,
        )

    def _annotations(self, c: Candidate, route: Route) -> dict[str, Any]:
        return {
            "summary": c.summary,
            "description": c.description,
            "runbook_url": route.runbook_url,
            "owner": route.owner,
            "response_minutes": RESPONSE_MINUTES.get(c.level),
            "source": c.source,
        }

    def _last_change(self, c: Candidate) -> dict[str, Any]:
        """Document 004 §6: the most recent change, the release last seen for the source and the rules' last."""
        release = None
        if c.source:
            release = store.last_release(
                self.conn, tenant=self.tenant, source=c.source, since=self.now - RELEASE_LOOKBACK_MS
            )
        return {
            "last_release": release[0] if release else None,
            "last_release_seen_at": release[1] if release else None,
            "rule_version": self.ev.rule_version(self.tenant),
            "rule_activated_at": store.last_rule_activation(self.conn, tenant=self.tenant),
        }

    def _silence_of(self, labels: Mapping[str, str]) -> SilenceRow | None:
        for s in self.silences:
            if matchers.matches_all(matchers.parse_matchers(s.matchers), labels):
                return s
        return None

    def _notify_firing(self, row: AlertRow, route: Route) -> None:
        now = self.now
        silence = self._silence_of(row.labels)
        if silence is not None:
            if row.silenced_by != silence.id:
                row.silenced_by = silence.id
                store.add_history(
                    self.conn,
                    tenant=self.tenant,
                    alert_id=row.id,
                    at=now,
                    event="silenced",
                    detail={"silence": silence.id},
                )
            return
        if row.silenced_by is not None:
            store.add_history(
                self.conn,
                tenant=self.tenant,
                alert_id=row.id,
                at=now,
                event="unsilenced",
                detail={"silence": row.silenced_by},
            )
            row.silenced_by = None
        due = row.last_notified_at is None or now - row.last_notified_at >= route.repeat_interval_s * 1000
        if due:
            row.last_notified_at = now
            self._write(row, route, "firing", seq=f"f{now}")
        # Alertmanager's API resolves a firing alert it is not sent again before its endsAt (payloads.py): re-sent
        # once per AM_RESEND_S, as Prometheus does.
        bucket = int(now // (AM_RESEND_S * 1000))
        self._write(row, route, "firing", seq=f"r{bucket}", only_type="alertmanager_api", unless_written=due)

    def _write(
        self,
        row: AlertRow,
        route: Route,
        kind: Literal["firing", "resolved"],
        *,
        seq: str,
        only_type: str | None = None,
        unless_written: bool = False,
    ) -> None:
        if unless_written:
            return
        receivers = [r for r in self.routing.receivers_for(self.tenant, route) if only_type in (None, r.type)]
        if not receivers:
            return
        view = alert_view(row, kind, external_url=self.ev.external_url, now=self.now)
        group = ",".join(f"{k}={row.labels.get(k, '')}" for k in route.group_by)
        rows = [
            Notification(
                id=notification_id(row.id, row.episode, kind, seq, receiver.name),
                tenant=self.tenant,
                alert_id=row.id,
                receiver=receiver.name,
                kind=kind,
                group_key=f"{receiver.name}/{self.tenant}/{{{group}}}"[:256],
                payload=view,
                created_at=self.now,
            )
            for receiver in receivers
        ]
        wait_ms = int(route.group_wait_s * 1000) if only_type is None else 0
        self.report.notifications += outbox.insert_notifications(self.conn, rows, now=self.now, group_wait_ms=wait_ms)


def notification_id(aid: str, episode: int, kind: str, seq: str, receiver: str) -> str:
    """The idempotency key: the alert, its firing episode, what is told (and which repeat), and to whom."""
    to = hashlib.sha256(receiver.encode()).hexdigest()[:12]
    return f"{aid}-{episode}-{kind[0]}{seq}-{to}"


def alert_view(row: AlertRow, status: str, *, external_url: str, now: int) -> dict[str, Any]:
    """The alert as a notification carries it (alert_model.Notification.payload)."""
    return {
        "id": row.id,
        "tenant": row.tenant,
        "name": row.name,
        "level": row.level,
        "status": status,
        "labels": dict(row.labels),
        "annotations": dict(row.annotations),
        "starts_at": row.starts_at,
        "ends_at": row.ends_at if status == "resolved" else None,
        "value": row.value,
        "threshold": row.threshold,
        "episode": row.episode,
        "url": f"{external_url.rstrip('/')}/alerts?alert={row.id}",
    }
