"""Lookup counters of the classification and fingerprint caches, per tenant and process (the overlay-cache partition).

Plain integers bumped on the lookup path, without a lock: a lookup costs tens of nanoseconds more, and under
threads an increment may be lost now and then, which a hit rate does not notice. Counts live as long as the process
(a classifier rebuilt by a rule activation, a fingerprinter reloaded, add to the same tenant's counter), and each
tenant sees only its own: another tenant's traffic must not show through them."""

from __future__ import annotations

import threading
from typing import Any

CLASSIFIER = "classifier"
FINGERPRINTER = "fingerprinter"
CACHES = (CLASSIFIER, FINGERPRINTER)


class CacheCounter:
    __slots__ = ("hits", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0


# Lookups made for no tenant (previews of a candidate pack, the CLI): counted, but shown to nobody.
UNATTRIBUTED = CacheCounter()
_counters: dict[tuple[str, str], CacheCounter] = {}
_lock = threading.Lock()


def counter(cache: str, tenant: str) -> CacheCounter:
    """The process' counter of `cache` lookups made for `tenant` (one per tenant that ingested)."""
    found = _counters.get((cache, tenant))
    if found is None:
        with _lock:
            found = _counters.setdefault((cache, tenant), CacheCounter())
    return found


def cache_counts(found: CacheCounter) -> dict[str, Any]:
    requests, hits = found.requests, found.hits
    return {"requests": requests, "hits": hits, "hit_rate": hits / requests if requests else 0.0}
