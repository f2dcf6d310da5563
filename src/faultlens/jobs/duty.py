"""Periodic duties that run on exactly one process: a thread that holds a lease row and runs its work each period.

Every process that starts a Duty tries the lease each period; the one holding it renews it (a heartbeat in a
short transaction) and runs the work, the others stay idle and take over once the holder's lease expires (a
crash) or is released (a graceful stop). SQLite has one process in practice, which simply always holds it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from faultlens.jobs.runner import make_owner
from faultlens.store import leases
from faultlens.timeutil import now_ms

log = logging.getLogger("faultlens.jobs.duty")

# name -> held? for this process, read by /metrics and /readyz.
HELD: dict[str, bool] = {}
_HELD_LOCK = threading.Lock()


def held_leases() -> dict[str, bool]:
    with _HELD_LOCK:
        return dict(HELD)


def _set_held(name: str, held: bool) -> None:
    with _HELD_LOCK:
        HELD[name] = held


@dataclass
class Duty:
    """Run `work()` every `interval_s` while holding lease `name` (ttl `lease_ttl_s`, renewed before each run).

    `work` returns nothing; an exception is logged and counted as a failed pass, never kills the thread.
    `on_pass(ok)` and `on_held(held)` let the caller count passes and expose who holds what.
    """

    engine: Engine
    name: str
    work: Callable[[], None]
    interval_s: float
    lease_ttl_s: float
    on_pass: Callable[[bool], None] | None = None
    on_held: Callable[[bool], None] | None = None
    holder: str = field(default_factory=make_owner)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    held: bool = False

    def try_lease(self) -> bool:
        try:
            with self.engine.begin() as conn:
                got = leases.acquire(
                    conn, name=self.name, holder=self.holder, ttl_ms=int(self.lease_ttl_s * 1000), now=now_ms()
                )
        except SQLAlchemyError as exc:
            log.warning("lease %s: could not reach the database (%s)", self.name, type(exc).__name__)
            got = False
        if got != self.held:
            log.info("lease %s %s by %s", self.name, "taken" if got else "lost", self.holder)
        self.held = got
        _set_held(self.name, got)
        if self.on_held is not None:
            self.on_held(got)
        return got

    def run_once(self) -> bool:
        """One period: renew or take the lease, and run the work when held. True when the work ran and succeeded."""
        if not self.try_lease():
            return False
        try:
            self.work()
        except Exception:
            log.exception("duty %s failed", self.name)
            if self.on_pass is not None:
                self.on_pass(False)
            return False
        if self.on_pass is not None:
            self.on_pass(True)
        return True

    def wake(self) -> None:
        """Run the next period now (new work arrived) instead of after the interval."""
        self._wake.set()

    def _loop(self) -> None:
        # The lease is renewed at least three times per ttl, so a pause between passes never lets it lapse; the
        # work runs once per interval (or at once when woken).
        tick = min(self.interval_s, self.lease_ttl_s / 3)
        last_run: float | None = None
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            if woken or last_run is None or time.monotonic() - last_run >= self.interval_s:
                if self.run_once() or self.held:
                    last_run = time.monotonic()
            else:
                self.try_lease()
            self._wake.wait(tick)

    def start(self) -> Callable[[], None]:
        self._thread = threading.Thread(target=self._loop, name=f"faultlens-duty-{self.name}", daemon=True)
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.held:
            try:
                with self.engine.begin() as conn:
                    leases.release(conn, name=self.name, holder=self.holder)
            except SQLAlchemyError:
                log.warning("lease %s: not released (database unreachable); it expires on its own", self.name)
        self.held = False
        _set_held(self.name, False)
