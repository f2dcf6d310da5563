"""Tenants' fingerprinters: one per tenant, loaded on its first use and saved under the tenant's own state key."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
from sqlalchemy.exc import SQLAlchemyError

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


def state_key(tenant: str) -> str:
    """The service_state key of a tenant's fingerprinter (tenants are at most 64 characters; keys 128)."""
    return f"{LEGACY_STATE_KEY}:{tenant}"


def version_key(tenant: str) -> str:
    """The service_state key of the token that changes with every save of a tenant's fingerprinter."""
    return f"{VERSION_KEY_PREFIX}:{tenant}"


def load_fingerprinter(load: Load, tenant: str, *, default_tenant: str) -> tuple[Fingerprinter | None, bool]:
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
    return Fingerprinter.from_state(orjson.loads(saved)), legacy


class TenantFingerprinters:
    """The fingerprinter of each tenant seen by this process, so no tenant's messages shape another's templates.

    `for_tenant` loads a tenant's saved state on its first use (a lock makes that race-free: threads of one tenant
    get the one instance). Fingerprinters stay in memory for the life of the process: one per tenant that ingested
    or read fingerprints, each with its own bounded caches.

    Replicas: with `version` given, `for_tenant` reads the tenant's version token at most every `follow_interval_s`
    (one read by primary key; 0 = every call) and reloads the tenant's fingerprinter when another process saved it
    since this one last loaded or saved it. Saves stay last-writer-wins: templates learnt here since our last save are
    dropped by the reload and learnt again from later messages, under the same ids (an id is a stable hash of its
    group's first text). Merging concurrent replicas' templates belongs with the replicas work.
    """

    def __init__(
        self,
        load: Load,
        save: Save,
        *,
        default_tenant: str,
        version: Version | None = None,
        follow_interval_s: float = 0.0,
    ) -> None:
        self._load = load
        self._save = save
        self._version = version
        self._follow_interval_s = follow_interval_s
        self._default_tenant = default_tenant
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
                    # Read before the document: a save in between leaves an older token, so a later check reloads.
                    self._checked_at[tenant] = time.monotonic()
                    self._versions[tenant] = self._version(tenant)
                found, saved_count = self._restore(tenant)
                self._saved_counts[tenant] = saved_count
                self._by_tenant[tenant] = found
            return found

    def _follow_due(self, tenant: str) -> bool:
        return time.monotonic() - self._checked_at.get(tenant, 0.0) >= self._follow_interval_s

    def _follow(self, tenant: str, current: Fingerprinter, version: Version) -> Fingerprinter:
        """The tenant's fingerprinter, reloaded when another process saved a newer version of it."""
        with self._create_lock:
            current = self._by_tenant.get(tenant, current)
            if not self._follow_due(tenant):
                return current  # another thread checked meanwhile
            self._checked_at[tenant] = time.monotonic()
            try:
                token = version(tenant)
                if token is None or token == self._versions.get(tenant):
                    return current
                saved, legacy = load_fingerprinter(self._load, tenant, default_tenant=self._default_tenant)
            except SQLAlchemyError:
                log.warning(
                    "checking tenant %r's fingerprint templates failed; keeping this copy", tenant, exc_info=True
                )
                return current
            except (ValueError, KeyError, TypeError):
                self._versions[tenant] = token  # not again until the next save
                log.error("the fingerprint state another process saved for tenant %r does not load; kept ours", tenant)
                return current
            self._versions[tenant] = token
            if saved is None:
                return current
            self._by_tenant[tenant] = saved
            self._saved_counts[tenant] = -1 if legacy else len(saved)  # nothing new to save until it learns more
            log.info("tenant %r's fingerprint templates were saved by another process; reloaded %d", tenant, len(saved))
            return saved

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
            saved, legacy = load_fingerprinter(self._load, tenant, default_tenant=self._default_tenant)
        except (ValueError, KeyError, TypeError):
            # Template ids are hashes of each group's first text, so fresh groups mostly get their old ids back.
            log.error("the saved fingerprint state of tenant %r does not load; its templates start afresh", tenant)
            return Fingerprinter(), -1
        if saved is None:
            return Fingerprinter(), 0
        return saved, -1 if legacy else len(saved)

    def _save_locked(self, *, changed_only: bool) -> None:
        for tenant, fp in self.loaded().items():
            count = len(fp)  # read before the export: a template added meanwhile is saved the next time
            last = self._saved_counts.get(tenant, -1)
            if (changed_only and count == last) or (count == 0 and last <= 0):
                continue
            token = self._save(state_key(tenant), orjson.dumps(fp.export_state()).decode())
            self._saved_counts[tenant] = count
            if token is not None:
                self._versions[tenant] = token  # our own save: nothing to reload
