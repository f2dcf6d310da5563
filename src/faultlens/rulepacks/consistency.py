"""Rule-version consistency: which rule-pack versions exist, which one is active, and whether every live replica
and the caller's tenant run it (the replicas table, written by each process' heartbeat)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from faultlens.classify.versions import list_shipped_versions
from faultlens.rulepacks.activation import find_activated
from faultlens.rulepacks.rulebook import stack_version
from faultlens.store.replicas import live_replicas
from faultlens.store.state import ACTIVE_RULE_VERSION, find_rules_generation, find_state
from faultlens.timeutil import ms_to_rfc3339, now_ms
from faultlens.triage.counts import ratio

if TYPE_CHECKING:
    from faultlens.services import Services

# A replica not seen for this many heartbeat intervals counts as gone.
GONE_AFTER_BEATS = 3


def replica_label(instance: str) -> str:
    """A stable, opaque name for a process: tenants see which replicas disagree, not host names or pids."""
    return "replica-" + hashlib.sha256(instance.encode("utf-8")).hexdigest()[:10]


def rule_versions(services: Services, *, tenant: str, now: int | None = None) -> dict[str, Any]:
    """The rule-pack versions known, the active one, and whether every live replica and `tenant` run it.

    The active global version is the one recorded at the last activation (or start-up): the version history is
    classified with. A replica runs it when its heartbeat reports that version and the current activations
    generation (so a tenant pack activated elsewhere has reached it too). The tenant's version is its own pack, if
    any, over the active global version.
    """
    now = now_ms() if now is None else now
    seen_since = now - int(GONE_AFTER_BEATS * services.settings.replica_heartbeat_interval_s * 1000)
    with services.engine.connect() as conn:
        active = find_state(conn, ACTIVE_RULE_VERSION) or services.pipeline.classifier.version
        generation = find_rules_generation(conn)
        replicas = live_replicas(conn, seen_since=seen_since)
        activated = find_activated(conn)
        own = find_activated(conn, tenant=tenant)
    versions: dict[str, str] = {v.id: "shipped" for v in list_shipped_versions()}
    for found in (activated, own):
        if found is not None:
            versions.setdefault(found.pack.id, "activated")
    for pack in services.pipeline.classifier.packs:  # a --rules file's pack, or a default not shipped yet
        versions.setdefault(pack.id, "rules_file")
    running = [
        {
            "replica": replica_label(r.instance),
            "rule_version": r.rule_version,
            "started_at": ms_to_rfc3339(r.started_at),
            "seen_at": ms_to_rfc3339(r.seen_at),
            "on_active": r.rule_version == active and r.rules_generation == generation,
        }
        for r in replicas
    ]
    on_active = sum(1 for r in running if r["on_active"])
    tenant_version = stack_version(own.pack if own is not None else None, active)
    serving = services.classifier_for(tenant).version
    return {
        "versions_total": len(versions),
        "versions": [{"id": vid, "origin": origin} for vid, origin in sorted(versions.items())],
        "active_version": active,
        "tenant_version": tenant_version,
        "tenant_on_active": serving == tenant_version,
        "replicas_total": len(running),
        "replicas_on_active": on_active,
        "replicas": running,
        "version_consistent": on_active == len(running) and serving == tenant_version,
        "consistency_rate": ratio(on_active, len(running)) if running else None,
    }
