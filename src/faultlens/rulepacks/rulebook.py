"""Which classifier each tenant uses: its own pack layered over the global stack, one Classifier per stack."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import RulePack
from faultlens.errors import RulePackError

log = logging.getLogger("faultlens.jobs")

GLOBAL_SCOPE = "global"
_TENANT_PREFIX = "tenant:"


def tenant_scope(tenant: str) -> str:
    """The rule_activations key of a tenant's row; never equal to GLOBAL_SCOPE, whatever the tenant's name."""
    return _TENANT_PREFIX + tenant


def scope_tenant(scope: str) -> str | None:
    return scope[len(_TENANT_PREFIX) :] if scope.startswith(_TENANT_PREFIX) else None


def pack_digest(pack: RulePack) -> str:
    """Identity of a pack's content: two tenants may hold different packs under the same id."""
    return hashlib.sha256(pack.model_dump_json().encode()).hexdigest()


def stack_version(tenant_pack: RulePack | None, global_version: str) -> str:
    """The version a tenant's stack carries, as Classifier([tenant_pack, *global]).version computes it."""
    return global_version if tenant_pack is None else f"{tenant_pack.id}+{global_version}"


class RuleBook:
    """Tenant packs over the global classifier's packs.

    Tenants without a pack of their own share the global classifier; tenants whose packs are equal share one
    stack, so each Classifier (and its caches) is built once per distinct stack. Reads are single dict
    lookups; `replace` builds everything first and swaps whole dicts, so a reader never sees half an update.
    """

    def __init__(self, global_classifier: Classifier) -> None:
        # (global classifier, tenant packs, tenant classifiers): one reference, swapped whole.
        self._state: tuple[Classifier, dict[str, RulePack], dict[str, Classifier]] = (global_classifier, {}, {})
        self._stacks: dict[tuple[str, ...], Classifier] = {}

    @property
    def global_classifier(self) -> Classifier:
        return self._state[0]

    @property
    def tenant_packs(self) -> Mapping[str, RulePack]:
        return self._state[1]

    def tenant_pack(self, tenant: str) -> RulePack | None:
        return self._state[1].get(tenant)

    def find(self, tenant: str) -> Classifier | None:
        """The tenant's own stack, or None when it classifies with the global one."""
        return self._state[2].get(tenant)

    def classifier_for(self, tenant: str) -> Classifier:
        state = self._state
        return state[2].get(tenant) or state[0]

    def stack(self, packs: Sequence[RulePack]) -> Classifier:
        """A classifier for these packs, reusing a live one with the same content."""
        key = tuple(pack_digest(p) for p in packs)
        found = self._stacks.get(key)
        return found if found is not None else Classifier(packs)

    def replace(
        self, *, global_classifier: Classifier | None = None, tenant_packs: Mapping[str, RulePack] | None = None
    ) -> None:
        current, current_packs, _ = self._state
        base = current if global_classifier is None else global_classifier
        packs = dict(current_packs if tenant_packs is None else tenant_packs)
        base_key = tuple(pack_digest(p) for p in base.packs)
        stacks: dict[tuple[str, ...], Classifier] = {}
        by_tenant: dict[str, Classifier] = {}
        for tenant, pack in list(packs.items()):
            key = (pack_digest(pack), *base_key)
            try:
                classifier = stacks.get(key) or self._stacks.get(key) or Classifier([pack, *base.packs])
            except RulePackError:
                # Activation refuses such a clash; a restart with a --rules of the same id can still cause one.
                log.error("tenant %s: pack %s repeats a pack id of the global stack; not applied", tenant, pack.id)
                del packs[tenant]
                continue
            stacks[key] = classifier
            by_tenant[tenant] = classifier
        # Stacks no tenant uses any more are dropped with the old dict.
        self._stacks = stacks
        self._state = (base, packs, by_tenant)
