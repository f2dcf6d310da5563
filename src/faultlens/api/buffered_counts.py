"""Counts kept in memory per key and added to a table by a thread every few seconds: what the API usage recorder
and the security signal recorder share. A request never waits on a write; an outage costs bounded memory."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from faultlens.timeutil import now_ms

K = TypeVar("K")
V = TypeVar("V")


class BufferedCounts(ABC, Generic[K, V]):
    """Thread-safe: requests count with `_count`, one thread calls `flush` every `interval_s` (0: no thread; the
    counts are written by `flush` or `stop` only). Subclasses name what they count and say how to write a batch,
    merge two values of one key and size a value (for the log line of what was dropped)."""

    label = "counts"  # log lines: "<label>: N <unit> not counted ..."
    unit = "counts"
    thread_name = "faultlens-counts"
    # Distinct keys held while the database is away; past it new keys are dropped and logged once per flush.
    max_pending_keys = 50_000

    def __init__(self, engine: Engine, *, interval_s: float, clock: Any = now_ms) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[K, V] = {}
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Log lines under the subclass's module (faultlens.api.usage, faultlens.api.security_signals).
        self.log = logging.getLogger(type(self).__module__)

    @abstractmethod
    def write(self, conn: Connection, batch: dict[K, V]) -> None:
        """Add a batch of counts to the table, in the caller's transaction."""

    @abstractmethod
    def merge(self, into: V | None, value: V) -> V:
        """The value of one key with `value` added to it (`into` None: the key's first)."""

    @abstractmethod
    def size(self, value: V) -> int:
        """How many counts `value` holds (for the log line of what was dropped)."""

    def _count(self, key: K, apply: Callable[[V | None], V]) -> None:
        """Set the key's value to apply(its value, or None when new); a new key past the bound is dropped."""
        with self._lock:
            current = self._pending.get(key)
            if current is None and len(self._pending) >= self.max_pending_keys:
                self._dropped += 1
                return
            self._pending[key] = apply(current)

    def flush(self) -> int:
        """Write what was counted since the last flush; how much was written (in `unit`). On failure the counts
        are kept for the next flush (within max_pending_keys)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                dropped, self._dropped = self._dropped, 0
            if dropped:
                self.log.warning(
                    "%s: %d %s not counted while the database was unavailable", self.label, dropped, self.unit
                )
            if not batch:
                return 0
            try:
                with self.engine.begin() as conn:
                    self.write(conn, batch)
            except Exception:
                self.log.exception("%s could not be written; kept for the next flush", self.label)
                self._put_back(batch)
                return 0
            return sum(self.size(v) for v in batch.values())

    def _put_back(self, batch: dict[K, V]) -> None:
        with self._lock:
            for key, value in batch.items():
                current = self._pending.get(key)
                if current is not None or len(self._pending) < self.max_pending_keys:
                    self._pending[key] = self.merge(current, value)
                else:
                    self._dropped += self.size(value)

    def start(self) -> None:
        if self._thread is not None or self.interval_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def stop(self) -> None:
        """Stop the flushing thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 30)
            self._thread = None
        self.flush()
