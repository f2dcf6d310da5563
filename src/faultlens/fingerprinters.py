"""Tenants' fingerprinters: one per tenant, loaded on its first use and saved under the tenant's own state key."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
from sqlalchemy.exc import SQLAlchemyError

from faultlens.classify import cache_stats
from faultlens.classify.fingerprint import Fingerprinter

log = logging.getLogger(__name__)

# The one state document every tenant shared before templates were kept per tenant; the default tenant adopts it.
LEGACY_STATE_KEY = "fingerprinter"

# The prefix of each tenant's version token, rewritten with every save of its state (not "fingerprinter...": that
# prefix names state documents).
VERSION_KEY_PREFIX = "fingerprint-version"

Load = Callable[[str], str | None]
# Saves a state document; returns the version token it now has (None when the store keeps no versions).
Save = Callable[[str, str], str | None]
# The version token of a tenant's saved state (None before its first save).
Version = Callable[[str], str | None]
# Saves a state document only if the tenant's version token is still the one given (None: never saved); returns the
# new token, or None when another process saved since (nothing written).
Swap = Callable[[str, str, str | None], str | None]

# Compare-and-swap tries of one save racing with other processes' saves; a later save tries again.
SWAP_TRIES = 5


def state_key(tenant: str) -> str:
    """The service_state key of a tenant's fingerprinter (tenants are at most 64 characters; keys 128)."""
    return f"{LEGACY_STATE_KEY}:{tenant}"


def version_key(tenant: str) -> str:
    """The service_state key of the token that changes with every save of a tenant's fingerprinter."""
    return f"{VERSION_KEY_PREFIX}:{tenant}"


def load_fingerprinter(
    load: Load, tenant: str, *, default_tenant: str, max_templates: int | None = None
) -> tuple[Fingerprinter | None, bool]:
    """A tenant's saved fingerprinter (None when it has none) and whether it came from the legacy shared document.

    Raises ValueError, KeyError or TypeError when the saved document does not load.
    """
    saved = load(state_key(tenant))
    legacy = False
    if saved is None and tenant == default_tenant:
        saved = load(LEGACY_STATE_KEY)
        legacy = saved is not None
    if not saved:
        return None, False
    return Fingerprinter.from_state(orjson.loads(saved), max_templates=max_templates), legacy


class TenantFingerprinters:
    """The fingerprinter of each tenant seen by this process, so no tenant's messages shape another's templates.

    `for_tenant` loads a tenant's saved state on its first use (a lock makes that race-free: threads of one tenant
    get the one instance). Fingerprinters stay in memory for the life of the process: one per tenant that ingested
    or read fingerprints, each with its own bounded caches.

    Replicas: with `version` given, `for_tenant` reads the tenant's version token at most every `follow_interval_s`
    (one read by primary key; 0 = every call) and, when another process saved since this one last loaded or saved,
    merges the saved templates into its own (Fingerprinter.merge_state: a union by id, so every id either process
    handed out stays valid). With `swap` given, a save is a compare-and-swap on that token: when another process
    saved meanwhile, its templates are merged in first and the save tried again, so no process's templates are lost
    to another's save. Without `swap` (one process), saves are last-writer-wins.
    """

    def __init__(
        self,
        load: Load,
        save: Save,
        *,
        default_tenant: str,
        version: Version | None = None,
        follow_interval_s: float = 0.0,
        swap: Swap | None = None,
        max_templates: int | None = None,
    ) -> None:
        if swap is not None and version is None:
            raise ValueError("a compare-and-swap save needs the version token it compares")
        self._load = load
        self._save = save
        self._swap = swap
        self._version = version
        self._follow_interval_s = follow_interval_s
        self._default_tenant = default_tenant
        self._max_templates = max_templates  # each tenant's limit (None: none)
        # The version token of each tenant's state as this process last loaded or saved it.
        self._versions: dict[str, str | None] = {}
        # When each tenant's version token was last read (time.monotonic()).
        self._checked_at: dict[str, float] = {}
        self._by_tenant: dict[str, Fingerprinter] = {}
        self._create_lock = threading.Lock()
        self._save_lock = threading.Lock()
        # Template count of each tenant at its last save (or load); -1 = never saved under the tenant's own key.
        self._saved_counts: dict[str, int] = {}
        self._saved_at = 0.0

    def for_tenant(self, tenant: str) -> Fingerprinter:
        found = self._by_tenant.get(tenant)  # a dict read is atomic: the common case takes no lock
        if found is not None:
            version = self._version
            if version is None or not self._follow_due(tenant):
                return found
            return self._follow(tenant, found, version)
        with self._create_lock:
            found = self._by_tenant.get(tenant)
            if found is None:
                if self._version is not None:
                    # Read before the document: a save in between leaves an older token, so a later check merges it.
                    self._checked_at[tenant] = time.monotonic()
                    self._versions[tenant] = self._version(tenant)
                found, saved_count = self._restore(tenant)
                found.cache_counter = cache_stats.counter(cache_stats.FINGERPRINTER, tenant)
                self._saved_counts[tenant] = saved_count
                self._by_tenant[tenant] = found
            return found

    def _follow_due(self, tenant: str) -> bool:
        return time.monotonic() - self._checked_at.get(tenant, 0.0) >= self._follow_interval_s

    def _follow(self, tenant: str, current: Fingerprinter, version: Version) -> Fingerprinter:
        """The tenant's fingerprinter, with the templates another process saved since our last load or save merged
        in (in place: threads holding it keep learning into the one instance)."""
        with self._create_lock:
            current = self._by_tenant.get(tenant, current)
            if not self._follow_due(tenant):
                return current  # another thread checked meanwhile
            self._checked_at[tenant] = time.monotonic()
            try:
                token = version(tenant)
                if token is None or token == self._versions.get(tenant):
                    return current
                adopted, stored = self._merge_saved(tenant, current, token)
            except SQLAlchemyError:
                log.warning(
                    "checking tenant %r's fingerprint templates failed; keeping this copy", tenant, exc_info=True
                )
                return current
            # Ours has something the saved state lacks exactly when it holds more groups: then a save is due.
            self._saved_counts[tenant] = stored
            log.info("tenant %r's fingerprint templates were saved by another process; merged %d new", tenant, adopted)
            return current

    def _merge_saved(self, tenant: str, current: Fingerprinter, token: str | None) -> tuple[int, int]:
        """Merge the tenant's saved state (whose version is `token`, read before it) into `current`; returns
        (groups adopted, groups the saved state holds). The caller holds the create lock."""
        raw = self._load(state_key(tenant))
        self._versions[tenant] = token
        if not raw:
            return 0, len(current)
        try:
            state = orjson.loads(raw)
            adopted = current.merge_state(state)
            return adopted, len(state["groups"])
        except (ValueError, KeyError, TypeError):
            # Not again until the next save, which replaces it with ours.
            log.error("the fingerprint state another process saved for tenant %r does not load; kept ours", tenant)
            return 0, -1

    def loaded(self) -> dict[str, Fingerprinter]:
        """The fingerprinters in memory now, by tenant (a copy)."""
        with self._create_lock:
            return dict(self._by_tenant)

    def save_if_due(self, interval_s: float) -> bool | None:
        """Save the fingerprinters that gained templates, at most once per interval_s (ingest calls this per batch).

        Returns whether a due save succeeded (the fingerprint_saver loop's metrics), None when none was due."""
        if time.monotonic() - self._saved_at <= interval_s:
            return None
        if not self._save_lock.acquire(blocking=False):
            return None  # another thread is saving right now
        try:
            self._saved_at = time.monotonic()
            self._save_locked(changed_only=True)
        except SQLAlchemyError:
            # The batch is stored already; its templates are saved by a later batch or at shutdown.
            log.warning("saving fingerprint templates failed; a later batch retries", exc_info=True)
            return False
        finally:
            self._save_lock.release()
        return True

    def save_all(self) -> None:
        """Save every fingerprinter in memory that holds templates (shutdown: generalised templates included)."""
        with self._save_lock:
            self._saved_at = time.monotonic()
            self._save_locked(changed_only=False)

    def _restore(self, tenant: str) -> tuple[Fingerprinter, int]:
        try:
            saved, legacy = load_fingerprinter(
                self._load, tenant, default_tenant=self._default_tenant, max_templates=self._max_templates
            )
        except (ValueError, KeyError, TypeError):
            # Template ids are hashes of each group's first text, so fresh groups mostly get their old ids back.
            log.error("the saved fingerprint state of tenant %r does not load; its templates start afresh", tenant)
            return Fingerprinter(max_templates=self._max_templates), -1
        if saved is None:
            return Fingerprinter(max_templates=self._max_templates), 0
        return saved, -1 if legacy else len(saved)

    def _save_locked(self, *, changed_only: bool) -> None:
        for tenant, fp in self.loaded().items():
            count = len(fp)  # read before the export: a template added meanwhile is saved the next time
            last = self._saved_counts.get(tenant, -1)
            if (changed_only and count == last) or (count == 0 and last <= 0):
                continue
            if self._swap is not None:
                self._swap_save(tenant, fp, self._swap)
                continue
            token = self._save(state_key(tenant), orjson.dumps(fp.export_state()).decode())
            self._saved_counts[tenant] = count
            if token is not None:
                self._versions[tenant] = token  # our own save: nothing to reload

    def _swap_save(self, tenant: str, fp: Fingerprinter, swap: Swap) -> None:
        """Save `fp` unless another process saved since our last load or save; then merge its templates in, retry."""
        assert self._version is not None
        # The create lock keeps _follow from merging and moving the token between our compare and our update.
        with self._create_lock:
            for _ in range(SWAP_TRIES):
                count = len(fp)
                token = swap(state_key(tenant), orjson.dumps(fp.export_state()).decode(), self._versions.get(tenant))
                if token is not None:
                    self._saved_counts[tenant] = count
                    self._versions[tenant] = token  # our own save: nothing to reload
                    return
                adopted, _ = self._merge_saved(tenant, fp, self._version(tenant))
                log.info("tenant %r's fingerprint templates: merged %d saved by another process", tenant, adopted)
        log.warning("tenant %r's fingerprint templates: every save raced with another process's; retried later", tenant)
