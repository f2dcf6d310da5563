"""Periodic duties that run on exactly one process: a thread that holds a lease row and runs its work each period.

Every process that starts a Duty tries the lease each period; the one holding it renews it (a heartbeat in a
short transaction) and runs the work, the others stay idle and take over once the holder's lease expires (a
crash) or is released (a graceful stop). SQLite has one process in practice, which simply always holds it.
Each run is recorded in duty_runs (who ran it, when, how it ended), so "once per period" can be counted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from faultlens.jobs.runner import make_owner
from faultlens.store import duty_runs, leases
from faultlens.timeutil import now_ms

log = logging.getLogger("faultlens.jobs.duty")

# Runs are kept a week (enough to count a scale test or an incident), pruned at most once an hour per duty.
KEEP_RUNS_MS = 7 * 86_400_000
PRUNE_EVERY_MS = 3_600_000

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
    """Run `work()` every `interval_s` while holding lease `name` (ttl `lease_ttl_s`, renewed before each run and
    during a long one).

    An exception from `work` is logged and counted as a failed pass, never kills the thread; `work` returning False
    is a failed pass it has reported itself (no traceback). `on_pass(ok)` and `on_held(held)` let the caller count
    passes and expose who holds what.
    """

    engine: Engine
    name: str
    work: Callable[[], bool | None]
    interval_s: float
    lease_ttl_s: float
    on_pass: Callable[[bool], None] | None = None
    on_held: Callable[[bool], None] | None = None
    holder: str = field(default_factory=make_owner)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pruned_at: int = 0
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
        run = self._record_start()
        ok = False
        try:
            with self._renewing():
                ok = self.work() is not False
        except Exception:
            log.exception("duty %s failed", self.name)
        self._record_end(run, ok)
        if self.on_pass is not None:
            self.on_pass(ok)
        return ok

    @contextlib.contextmanager
    def _renewing(self) -> Iterator[None]:
        """Renew the lease while the work runs: a run longer than the ttl must not let another process start one."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_ttl_s / 3):
                self.try_lease()

        beater = threading.Thread(target=beat, name=f"faultlens-lease-{self.name}", daemon=True)
        beater.start()
        try:
            yield
        finally:
            done.set()
            beater.join(timeout=self.lease_ttl_s)

    def _record_start(self) -> int | None:
        # Bookkeeping: a database hiccup here is logged and the work still runs.
        try:
            with self.engine.begin() as conn:
                return duty_runs.record_start(conn, name=self.name, holder=self.holder, started_at=now_ms())
        except SQLAlchemyError as exc:
            log.warning("duty %s: run not recorded (%s)", self.name, type(exc).__name__)
            return None

    def _record_end(self, run: int | None, ok: bool) -> None:
        now = now_ms()
        try:
            if run is not None:
                with self.engine.begin() as conn:
                    duty_runs.record_end(conn, run, finished_at=now, ok=ok)
            if now - self._pruned_at >= PRUNE_EVERY_MS:
                with self.engine.begin() as conn:
                    duty_runs.prune(conn, name=self.name, before=now - KEEP_RUNS_MS)
                self._pruned_at = now
        except SQLAlchemyError as exc:
            log.warning("duty %s: end of run not recorded (%s)", self.name, type(exc).__name__)

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
        was_held, self.held = self.held, False
        _set_held(self.name, False)
        if was_held and self.on_held is not None:
            self.on_held(False)
