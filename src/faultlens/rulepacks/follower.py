"""The rule follower: every process (not one under a lease) adopts rule packs activated on another replica."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from faultlens.jobs.runner import make_owner
from faultlens.store.replicas import beat
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.rulepacks")

RULE_FOLLOWER = "rule_follower"


def start_rule_follower(services: Services, *, interval_s: float | None = None) -> Callable[[], None]:
    """Poll the rules generation (one small row) every Settings.rules_follow_interval_s; returns stop().

    A thread of its own rather than a step of the job runner's pass: that pass works a job to its end (a backfill
    of millions of events takes minutes), and an activation must reach every replica within seconds.
    """
    interval = services.settings.rules_follow_interval_s if interval_s is None else interval_s
    metrics = services.metrics
    stopping = threading.Event()
    heartbeat = Heartbeat(services)

    def loop() -> None:
        failing = False
        first = True
        while first or not stopping.wait(interval):
            try:
                if not first:
                    services.follow_rules()
                first = False
                heartbeat.beat_if_due()
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("rule follower: the database did not answer (%s); retrying", type(exc).__name__)
                failing = True
                metrics.loop_pass(RULE_FOLLOWER, ok=False)
                continue
            except Exception:
                log.exception("rule follower: following the activated rule packs failed; retrying")
                metrics.loop_pass(RULE_FOLLOWER, ok=False)
                continue
            failing = False
            metrics.loop_pass(RULE_FOLLOWER, ok=True)

    metrics.loop_started(RULE_FOLLOWER)
    thread = threading.Thread(target=loop, name="faultlens-rule-follower", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=30)

    return stop


class Heartbeat:
    """This process' row in the replicas table: the rule version it classifies with and the activations generation
    it adopted, written at most every Settings.replica_heartbeat_interval_s (on the follower's thread)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.instance = make_owner()
        self.started_at = now_ms()
        self._next = 0.0

    def beat_if_due(self) -> None:
        if time.monotonic() < self._next:
            return
        services = self.services
        with services.engine.begin() as conn:
            beat(
                conn,
                instance=self.instance,
                started_at=self.started_at,
                rule_version=services.pipeline.classifier.version,
                rules_generation=services.followed_activation,
                now=now_ms(),
            )
        self._next = time.monotonic() + services.settings.replica_heartbeat_interval_s
