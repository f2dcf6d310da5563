"""Ships events to faultlens from a host process: a bounded queue, one daemon thread, batches, bounded retries.

The host's threads only ever append to the queue (never block on I/O, never raise); when faultlens is slow or
down the queue fills and further events are dropped and counted, so the host app keeps its speed.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import httpcore  # noqa: F401  (see _TLS below)
import httpx

log = logging.getLogger("faultlens.integrations")

# A client's constructor imports httpcore (lazily, in httpx) and builds an SSL context (OpenSSL, loading the CA bundle)
# on the sender's thread. A fork while that thread holds the import's module lock or an OpenSSL lock left the child's
# own sender thread waiting on it for ever (and the child's events expiring in its queue). Both happen here instead,
# once, in the thread that imports this module, before any fork; every client reuses the context.
_TLS = httpx.create_ssl_context()

EVENTS_PATH = "/api/v1/events"
# Answers worth another try: rate limited, overloaded or a proxy in front that could not reach faultlens.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_MAX_BACKOFF_S = 30.0
_ATEXIT_FLUSH_S = 2.0

_live: weakref.WeakSet[Sender] = weakref.WeakSet()


class Sender:
    """Queues faultlens events and posts them in batches from a background thread, started on first use."""

    def __init__(
        self,
        endpoint: str,
        api_key: str | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        base = endpoint.rstrip("/")
        # Either the faultlens base URL or the events URL itself.
        self.url = base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH
        self.api_key = api_key
        self.max_queue = max(1, max_queue)
        self.batch_size = max(1, batch_size)
        self.flush_interval_s = max(0.0, flush_interval_s)
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        """A fresh queue, lock, thread slot and counters (at construction and in a forked child)."""
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._oldest = 0.0
        self._in_flight = 0
        self._flush_wanted = False
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self.internal_errors = 0

    # -- the host's side: never blocks on I/O, never raises --------------------------------------------------

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue one event (the JSON shape POST /api/v1/events accepts); False (a counted drop) when it cannot."""
        try:
            if self._pid != os.getpid():
                self._reset()
            with self._cond:
                if self._closed or len(self._queue) >= self.max_queue:
                    self.dropped += 1
                    return False
                first = not self._queue
                if first:
                    self._oldest = time.monotonic()
                self._queue.append(event)
                if self._thread is None:
                    self._start()
                # The thread sleeps without a deadline while the queue is empty: the first event sets its timer.
                if first or len(self._queue) >= self.batch_size:
                    self._cond.notify_all()
            return True
        except Exception:  # the host app must never see a failure of ours
            self.internal_errors += 1
            return False

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send everything queued now; True when the queue drained (sent or given up on) within `timeout_s`."""
        try:
            if self._pid != os.getpid():
                self._reset()
            deadline = time.monotonic() + timeout_s
            with self._cond:
                if not self._queue and not self._in_flight:
                    return True
                if self._thread is None:
                    self._start()
                self._flush_wanted = True
                self._cond.notify_all()
                while self._queue or self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
        except Exception:
            self.internal_errors += 1
            return False

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to `timeout_s`, then stop the thread; later submits are dropped."""
        try:
            deadline = time.monotonic() + timeout_s
            self.flush(timeout_s)
            with self._cond:
                self._closed = True
                self._stop.set()
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        except Exception:
            self.internal_errors += 1

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": len(self._queue),
            "internal_errors": self.internal_errors,
        }

    # -- the background thread --------------------------------------------------------------------------------

    def _start(self) -> None:
        # Called with the lock held.
        thread = threading.Thread(target=self._run, name="faultlens-sender", daemon=True)
        self._thread = thread
        thread.start()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Wait until a batch is due (full, old enough, flushed or closing); None when stopped and drained."""
        with self._cond:
            while True:
                if self._queue:
                    due = self._oldest + self.flush_interval_s - time.monotonic()
                    if len(self._queue) >= self.batch_size or self._flush_wanted or self._stop.is_set() or due <= 0:
                        break
                    self._cond.wait(due)
                elif self._stop.is_set():
                    return None
                else:
                    self._flush_wanted = False
                    self._cond.wait()
            count = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._oldest = time.monotonic()
            self._in_flight = count
            return batch

    def _run(self) -> None:
        pid = os.getpid()
        with httpx.Client(timeout=httpx.Timeout(self.timeout_s), headers=self._headers(), verify=_TLS) as client:
            while pid == os.getpid():
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    self._send(client, batch)
                except Exception:  # a bug here must not kill the thread
                    self.internal_errors += 1
                    self.failed += len(batch)
                    log.debug("faultlens sender: batch lost to an internal error", exc_info=True)
                finally:
                    with self._cond:
                        self._in_flight = 0
                        if not self._queue:
                            self._flush_wanted = False
                        self._cond.notify_all()

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "user-agent": "faultlens-integrations"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        parts: list[str] = []
        for item in batch:
            try:
                parts.append(json.dumps(item, default=str, separators=(",", ":"), allow_nan=False))
            except (TypeError, ValueError):
                self.failed += 1
        if not parts:
            return
        body = ("[" + ",".join(parts) + "]").encode()
        for attempt in range(self.max_retries + 1):
            wait: float | None
            try:
                response = client.post(self.url, content=body)
            except httpx.HTTPError as exc:
                wait = None
                reason = type(exc).__name__
            else:
                if response.status_code < 300:
                    self._count_answer(response, len(parts))
                    return
                if response.status_code not in _RETRY_STATUSES:
                    # Refused as a whole (bad key, too large, ...): another try would be refused the same way.
                    self.failed += len(parts)
                    log.debug("faultlens refused a batch: HTTP %d", response.status_code)
                    return
                wait = _retry_after(response.headers.get("retry-after"))
                reason = f"HTTP {response.status_code}"
            if attempt == self.max_retries or self._stop.is_set():
                break
            delay = wait if wait is not None else self.backoff_s * (2**attempt) * (0.5 + random.random())
            if self._stop.wait(min(delay, _MAX_BACKOFF_S)):
                break
            log.debug("faultlens sender retrying after %s", reason)
        self.dropped += len(parts)

    def _count_answer(self, response: httpx.Response, count: int) -> None:
        try:
            answer = response.json()
            rejected = len(answer.get("rejected") or [])
        except (ValueError, AttributeError):
            rejected = 0
        self.failed += rejected
        self.sent += count - rejected


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header in seconds (the HTTP-date form is treated as absent)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def sender_from_env(environ: Mapping[str, str] | None = None, **options: Any) -> Sender | None:
    """A Sender for FAULTLENS_URL with FAULTLENS_API_KEY; None when FAULTLENS_URL is not set."""
    env = os.environ if environ is None else environ
    url = (env.get("FAULTLENS_URL") or "").strip()
    if not url:
        return None
    return Sender(url, (env.get("FAULTLENS_API_KEY") or "").strip() or None, **options)


_default: Sender | None = None
_default_lock = threading.Lock()
_default_made = False


def default_sender() -> Sender | None:
    """The process's shared Sender from the environment (made once); None when FAULTLENS_URL is not set."""
    global _default, _default_made
    if _default_made:
        return _default
    with _default_lock:
        if not _default_made:
            _default = sender_from_env()
            _default_made = True
            if _default is None:
                log.warning("faultlens integrations: FAULTLENS_URL is not set; events are not sent")
    return _default


def _after_fork_in_child() -> None:
    # The parent's thread does not exist in the child and its lock may have been held at the fork.
    for sender in list(_live):
        sender._reset()


def _flush_at_exit() -> None:
    for sender in list(_live):
        if sender._pid == os.getpid() and sender._thread is not None:
            sender.close(_ATEXIT_FLUSH_S)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
