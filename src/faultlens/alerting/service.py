"""Alerting wired to a server: the routing file (re-read when it changes), the evaluator and the sender, each a
duty on the one process holding its lease (jobs/duty.py)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from faultlens.alerting import delivery
from faultlens.alerting.evaluate import EvalReport, Evaluator
from faultlens.alerting.routing import Routing, load_routing
from faultlens.errors import AlertRoutingError
from faultlens.jobs.duty import Duty
from faultlens.store import alerts as alert_rows
from faultlens.triage import slo

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.alerting")

EVALUATOR = "alert_evaluator"
SENDER = "alert_sender"
# Delivered notifications and alert history are kept this long, pruned at most once per PRUNE_EVERY_MS.
KEEP_DELIVERED_MS = 7 * 86_400_000
KEEP_HISTORY_MS = 90 * 86_400_000
PRUNE_EVERY_MS = 3_600_000


class Alerting:
    """What a process knows of alerting; `start()` runs evaluation and delivery when this process holds them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self._lock = threading.Lock()
        self._mtime: float | None = None
        # A bad routing file stops the start (AlertRoutingError); a bad edit later keeps the last good one.
        self._routing = self._load()
        self.external_url = settings.external_url or f"http://{settings.host}:{settings.port}"
        self.evaluator = Evaluator(
            services.engine,
            routing=self.routing,
            slo_config=lambda: slo.load_config(settings.slo_file),
            rule_version=lambda tenant: services.classifier_for(tenant).version,
            external_url=self.external_url,
            default_tenant=settings.default_tenant,
            on_notifications=self.wake_sender,
        )
        self._sender: Duty | None = None
        self._pruned_at = 0

    def _load(self) -> Routing:
        settings = self.services.settings
        path = settings.alert_routing_file
        self._mtime = _mtime(path)
        return load_routing(path, webhook_url=settings.obs_alert_webhook)

    def routing(self) -> Routing:
        """The routing in force: re-read when the file changed; an invalid edit is logged and the last one kept."""
        path = self.services.settings.alert_routing_file
        with self._lock:
            if path is not None and _mtime(path) != self._mtime:
                try:
                    self._routing = self._load()
                    log.info("alert routing file reloaded (version %s)", self._routing.version)
                except AlertRoutingError as exc:
                    log.error("alert routing file not reloaded, the last valid one stays: %s", exc.message)
            return self._routing

    def evaluate_once(self, *, now: int | None = None) -> EvalReport:
        started = time.perf_counter()
        report = self.evaluator.evaluate(now=now)
        self.services.metrics.alert_evaluation_seconds.observe(time.perf_counter() - started)
        if report.at - self._pruned_at >= PRUNE_EVERY_MS:
            self.prune(now=report.at)
        return report

    def prune(self, *, now: int) -> tuple[int, int]:
        """Drop delivered notifications past a week and alert history past 90 days (bounded per call)."""
        with self.services.engine.begin() as conn:
            done = alert_rows.prune(
                conn, delivered_before=now - KEEP_DELIVERED_MS, history_before=now - KEEP_HISTORY_MS
            )
        self._pruned_at = now
        return done

    def deliver_once(self, *, now: int | None = None) -> delivery.DeliveryReport:
        s = self.services
        kwargs = {} if now is None else {"now_ms": lambda: now}
        return delivery.deliver_once(s.engine, self.routing(), s.settings, s.metrics, **kwargs)  # type: ignore[arg-type]

    def wake_sender(self) -> None:
        if self._sender is not None:
            self._sender.wake()

    def start(self) -> list[Callable[[], None]]:
        """Both duties; each runs here only while this process holds its lease."""
        for warning in self.routing().warnings:  # said by the server that would send, not by every command
            log.warning("alert routing: %s", warning)
        s = self.services
        metrics = s.metrics

        def duty(name: str, work: Callable[[], object], interval_s: float) -> Duty:
            def run() -> None:
                work()

            return Duty(
                s.engine,
                name,
                run,
                interval_s=interval_s,
                lease_ttl_s=s.settings.lease_ttl_s,
                on_pass=lambda ok: metrics.loop_pass(name, ok=ok),
                on_held=lambda held: metrics.duty_held(name, held),
            )

        evaluator = duty(EVALUATOR, self.evaluate_once, s.settings.alert_eval_interval_s)
        self._sender = duty(SENDER, self.deliver_once, s.settings.alert_delivery_interval_s)
        return [evaluator.start(), self._sender.start()]


def _mtime(path: object) -> float | None:
    try:
        return os.stat(path).st_mtime if path is not None else None  # type: ignore[arg-type]
    except OSError:
        return None
