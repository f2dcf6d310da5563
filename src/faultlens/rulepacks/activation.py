"""Which rule packs are active, per tenant and globally: start-up resolution, activation, replicas following."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine

from faultlens.classify.engine import Classifier
from faultlens.classify.examples import test_pack
from faultlens.classify.lint import check_pack
from faultlens.classify.rules import RulePack, default_pack, load_pack, load_pack_data
from faultlens.errors import Conflict, InvalidRequest, RulePackError
from faultlens.jobs.backfill import request_backfill
from faultlens.jobs.queue import Job, JobKind, find_active
from faultlens.rulepacks.rulebook import GLOBAL_SCOPE, scope_tenant, stack_version, tenant_scope
from faultlens.settings import Settings
from faultlens.store.activations import delete_activation, find_activation, list_activations, save_activation
from faultlens.store.state import ACTIVE_RULE_VERSION, find_rules_generation, find_state, write_lock

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs")

# Activations in this process are serialised so two swaps cannot interleave their persist-then-swap.
_ACTIVATION_LOCK = threading.Lock()


@dataclass(frozen=True)
class Activated:
    """A pack activated over the API: the document as sent, and (global only) the --rules pack id it replaced."""

    pack: RulePack
    data: dict[str, Any]
    base: str | None


@dataclass(frozen=True)
class ActivationResult:
    previous_version: str
    active_version: str
    changed: bool
    job: Job | None
    scope: str = GLOBAL_SCOPE  # "global", or "tenant" for a tenant's own pack


def parse_pack(data: Any) -> RulePack:
    """A candidate pack from a decoded JSON body; RulePackError names the rule and field at fault."""
    return load_pack_data(data)


def parse_pack_body(body: bytes) -> tuple[RulePack, dict[str, Any]]:
    """A candidate pack from a request body (JSON; a leading UTF-8 byte order mark is ignored)."""
    try:
        data = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise RulePackError("the body must be a rule pack: a JSON object with 'id' and 'rules'")
    return parse_pack(data), data


def layered(pack: RulePack) -> list[RulePack]:
    """A candidate is tried before the shipped default, exactly like a --rules pack."""
    return [pack, default_pack()]


def candidate_classifier(pack: RulePack) -> Classifier:
    return Classifier(layered(pack))


def validate_for_activation(pack: RulePack, *, base: Sequence[RulePack] | None = None) -> None:
    """Refuse a pack with structural errors (check_pack) or examples that do not classify as declared over `base`
    (the packs it will be layered over: the default for a global pack, the global stack for a tenant's)."""
    base = [default_pack()] if base is None else list(base)
    problems = [p for p in check_pack(pack, base=base) if p.severity == "error"]
    failures = test_pack(pack, base=base)
    if problems or failures:
        lines = [p.message for p in problems] + [f.message for f in failures]
        raise RulePackError(
            f"rule pack {pack.id} is not safe to activate: {'; '.join(lines[:5])}",
            details={
                "problems": [{"rule": p.rule, "code": p.code, "message": p.message} for p in problems],
                "example_failures": [{"rule": f.rule, "index": f.index, "message": f.message} for f in failures],
            },
        )


def configured_packs(settings: Settings) -> list[RulePack]:
    packs = [default_pack()]
    if settings.rules_file is not None:
        packs.insert(0, load_pack(settings.rules_file))
    return packs


def _configured_user_pack_id(settings: Settings) -> str | None:
    if settings.rules_file is None:
        return None
    try:
        return load_pack(settings.rules_file).id
    except RulePackError:
        return None


def _load(raw: str, scope: str) -> Activated | None:
    try:
        doc = orjson.loads(raw)
        return Activated(load_pack_data(doc["pack"]), doc["pack"], doc.get("base"))
    except RulePackError as exc:
        # e.g. a pack activated before a check it now fails (an unsafe regex): say why in one line.
        log.error("the persisted rule pack of %s does not load and is ignored: %s", scope, exc.message)
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.exception("the persisted rule pack of %s does not load; it is ignored", scope)
        return None


def find_activated(conn: Connection, *, tenant: str | None = None) -> Activated | None:
    """The pack activated globally (tenant None) or for one tenant, or None."""
    scope = GLOBAL_SCOPE if tenant is None else tenant_scope(tenant)
    raw = find_activation(conn, scope)
    return None if raw is None else _load(raw, scope)


def tenant_activations(conn: Connection) -> dict[str, RulePack]:
    """Every tenant's own pack (a small table: one row per tenant that activated one)."""
    out: dict[str, RulePack] = {}
    for scope, raw in list_activations(conn, other_than=GLOBAL_SCOPE):
        tenant = scope_tenant(scope)
        found = None if tenant is None else _load(raw, scope)
        if tenant is not None and found is not None:
            out[tenant] = found.pack
    return out


def startup_packs(engine: Engine, settings: Settings) -> list[RulePack]:
    """The global packs to classify with at start-up.

    A pack activated globally over the API survives restarts while the --rules it replaced is unchanged; starting
    with a different --rules is a newer, explicit choice, so the global activation is dropped. Tenants' own packs
    do not depend on --rules and are kept.
    """
    packs = configured_packs(settings)
    base = packs[0].id if settings.rules_file is not None else None
    with engine.begin() as conn:
        activated = find_activated(conn)
        if activated is None:
            return packs
        if activated.base == base:
            return layered(activated.pack)
        delete_activation(conn, GLOBAL_SCOPE)
    log.info("the rule pack activated over --rules %s is dropped: started with --rules %s", activated.base, base)
    return packs


def sync_rule_version(engine: Engine, version: str, *, force: bool = False) -> Job | None:
    """Record the active global version; enqueue (never run) a backfill when history was classified otherwise."""
    with engine.begin() as conn:
        write_lock(conn)
        return request_backfill(conn, version, force=force)


def recorded_version_for(conn: Connection, services: Services, tenant: str) -> str | None:
    """The version a tenant's history is (being) classified with: its own pack over the recorded global one."""
    recorded = find_state(conn, ACTIVE_RULE_VERSION)
    return None if recorded is None else stack_version(services.rulebook.tenant_pack(tenant), recorded)


def follow_activation(services: Services) -> bool:
    """Adopt packs another process activated (replicas sharing one database); True when this one switched.

    Reads one service_state row (the generation token); reads rule_activations only when it changed since the last
    look. A global pack activated over a different --rules than this process runs with is not adopted: start-up
    already decided that case.
    """
    with services.engine.connect() as conn:
        token = find_rules_generation(conn)
    if token is None or token == services.followed_activation:
        return False
    services.followed_activation = token
    with services.engine.connect() as conn:
        activated = find_activated(conn)
        tenants = tenant_activations(conn)
    with _ACTIVATION_LOCK:
        current = services.pipeline.classifier
        classifier: Classifier | None = None
        if (
            activated is not None
            and activated.base == _configured_user_pack_id(services.settings)
            and not (current.packs and current.packs[0] == activated.pack)
        ):
            classifier = services.rulebook.stack(layered(activated.pack))
        same_tenants = tenants == dict(services.rulebook.tenant_packs)
        if classifier is None and same_tenants:
            return False
        try:
            services.set_rules(global_classifier=classifier, tenant_packs=None if same_tenants else tenants)
        except RulePackError:
            log.exception("the activated rule packs do not layer (duplicate pack ids); keeping the current ones")
            return False
    if classifier is not None:
        log.info("rule version %s adopted from another process (was %s)", classifier.version, current.version)
    if not same_tenants:
        log.info("tenant rule packs adopted from another process (%d tenants have their own)", len(tenants))
    return True


def candidate_for(services: Services, pack: RulePack, *, tenant: str, scope: str) -> Classifier:
    """The classifier `tenant`'s events would get if `pack` were activated in `scope` ("tenant" or "global")."""
    if scope == GLOBAL_SCOPE:
        own = services.rulebook.tenant_pack(tenant)
        return services.rulebook.stack([*([own] if own is not None else []), *layered(pack)])
    return services.rulebook.stack([pack, *services.pipeline.classifier.packs])


def activate(
    services: Services, pack: RulePack, data: dict[str, Any], *, tenant: str | None = None
) -> ActivationResult:
    """Validate `pack`, persist it, swap the live classifiers and enqueue the backfill of history.

    `tenant` None activates the global pack (it replaces --rules under every tenant's own pack, and its backfill
    covers every tenant); a tenant's activation changes that tenant's classifications only.
    """
    if tenant is not None:
        return _activate_for_tenant(services, pack, data, tenant)
    classifier = candidate_classifier(pack)
    validate_for_activation(pack)
    with _ACTIVATION_LOCK:
        current = services.pipeline.classifier
        if classifier.version == current.version:
            if current.packs and current.packs[0] == pack:
                with services.engine.connect() as conn:
                    job = find_active(conn, JobKind.BACKFILL, global_only=True)
                return ActivationResult(current.version, current.version, False, job)
            raise Conflict(
                f"pack {pack.id} is already active with different rules; give the changed pack a new id "
                "(name@YYYY-MM-DD) so its decisions can be told apart",
                details={"active_version": current.version},
            )
        ids = {p.id for p in classifier.packs}
        clash = sorted(t for t, own in services.rulebook.tenant_packs.items() if own.id in ids)
        if clash:
            raise Conflict(
                f"tenants {', '.join(clash[:5])} have their own pack with an id of this stack; give it another id",
                details={"tenants": clash},
            )
        doc = orjson.dumps({"pack": data, "base": _configured_user_pack_id(services.settings)}).decode()
        with services.engine.begin() as conn:
            write_lock(conn)
            save_activation(conn, GLOBAL_SCOPE, doc)
            job = request_backfill(conn, classifier.version)
        # Persisted first: a crash between the two leaves the restart to pick the new pack up. Each
        # assignment is atomic; ingest reads the classifier once per batch.
        services.set_rules(global_classifier=classifier)
    log.info("rule version %s activated for every tenant (was %s)", classifier.version, current.version)
    return ActivationResult(current.version, classifier.version, True, job)


def _activate_for_tenant(services: Services, pack: RulePack, data: dict[str, Any], tenant: str) -> ActivationResult:
    base = list(services.pipeline.classifier.packs)
    classifier = services.rulebook.stack([pack, *base])  # a pack id already in the global stack: 400 here
    validate_for_activation(pack, base=base)
    with _ACTIVATION_LOCK:
        current = services.pipeline.classifier_for(tenant)
        if classifier.version == current.version:
            if services.rulebook.tenant_pack(tenant) == pack:
                with services.engine.connect() as conn:
                    job = find_active(conn, JobKind.BACKFILL, only_tenant=tenant)
                return ActivationResult(current.version, current.version, False, job, "tenant")
            raise Conflict(
                f"pack {pack.id} is already active with different rules; give the changed pack a new id "
                "(name@YYYY-MM-DD) so its decisions can be told apart",
                details={"active_version": current.version},
            )
        doc = orjson.dumps({"pack": data}).decode()
        with services.engine.begin() as conn:
            write_lock(conn)
            save_activation(conn, tenant_scope(tenant), doc)
            job = request_backfill(conn, classifier.version, tenant=tenant, previous=current.version)
        packs = dict(services.rulebook.tenant_packs)
        packs[tenant] = pack
        services.set_rules(tenant_packs=packs)
    log.info("rule version %s activated for tenant %s (was %s)", classifier.version, tenant, current.version)
    return ActivationResult(current.version, classifier.version, True, job, "tenant")
