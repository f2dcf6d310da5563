"""Ingest load through the balancer: sender threads posting batches of unique ids, retried until acknowledged.

A batch that got no answer, a 5xx or a 429 is sent again with the same ids (ingest is idempotent by id), so every
id a sender records was acknowledged by a 200 at least once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from tests.scale.cluster import scratch_events

# How long a sender keeps trying one batch before it gives up on it (the ids are then not acknowledged).
BATCH_DEADLINE_S = 60.0


@dataclass
class IngestLoad:
    acknowledged: set[str] = field(default_factory=set)
    batches: int = 0
    retries: int = 0
    # Answers that were neither 200 nor worth a retry (a 4xx other than 429): each a failure of the run.
    refused: Counter[int] = field(default_factory=Counter)
    # What the retried attempts met: "transport" (no answer) or the status code.
    retried_on: Counter[str] = field(default_factory=Counter)
    # Events the server reported as rejected in a 200 answer.
    rejected: int = 0
    abandoned: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rate(self) -> float:
        return len(self.acknowledged) / self.seconds if self.seconds else 0.0


def _send(client: httpx.Client, body: bytes, headers: dict[str, str], load: IngestLoad) -> dict[str, object] | None:
    """Post one batch until a 200 (its result) or the batch deadline (None)."""
    deadline = time.monotonic() + BATCH_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            answer = client.post("/api/v1/events", content=body, headers=headers)
        except httpx.TransportError as exc:
            with load._lock:
                load.retries += 1
                load.retried_on[f"transport:{type(exc).__name__}"] += 1
            time.sleep(0.05)  # backoff before the same batch again
            continue
        if answer.status_code == 200:
            result: dict[str, object] = answer.json()
            return result
        with load._lock:
            if answer.status_code < 500 and answer.status_code != 429:
                load.refused[answer.status_code] += 1
                return None
            load.retries += 1
            load.retried_on[str(answer.status_code)] += 1
        pause = min(float(answer.headers.get("Retry-After") or 0.1), 1.0)
        time.sleep(pause)  # backoff as the server asked, capped
    return None


def run_ingest(url: str, key: str, *, senders: int, seconds: float, batch: int = 200) -> IngestLoad:
    """`senders` threads post batches of `batch` new events to `url` for `seconds`; a batch in flight at the end is
    finished (acknowledged or abandoned) before this returns."""
    load = IngestLoad()
    stop = threading.Event()
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def sender(number: int) -> None:
        with httpx.Client(base_url=url, timeout=httpx.Timeout(20.0, connect=2.0)) as client:
            n = 0
            while not stop.is_set():
                events = scratch_events(f"{run}-s{number}-b{n}", batch, source=f"scale-sender-{number}")
                n += 1
                result = _send(client, orjson.dumps(events), headers, load)
                with load._lock:
                    load.batches += 1
                    if result is None:
                        load.abandoned += 1
                        continue
                    load.rejected += len(result.get("rejected") or [])  # type: ignore[arg-type]
                    load.acknowledged.update(e["id"] for e in events)

    threads = [threading.Thread(target=sender, args=(i,), name=f"scale-sender-{i}") for i in range(senders)]
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(BATCH_DEADLINE_S + 30)
    load.seconds = time.monotonic() - started
    return load
