"""Which rule packs are active: start-up resolution, the recorded version, and activating a candidate pack."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Engine

from faultlens.classify.engine import Classifier, check_pack, test_pack
from faultlens.classify.rules import RulePack, default_pack, load_pack, load_pack_data
from faultlens.errors import Conflict, InvalidRequest, RulePackError
from faultlens.jobs.backfill import request_backfill
from faultlens.jobs.queue import Job, JobKind, find_active
from faultlens.jobs.state import ACTIVATED_PACK, ACTIVE_RULE_VERSION, delete_state, find_state, put_state, write_lock
from faultlens.settings import Settings

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs")

# Activations in this process are serialised so two swaps cannot interleave their persist-then-swap.
_ACTIVATION_LOCK = threading.Lock()


@dataclass(frozen=True)
class Activated:
    """A pack activated over the API: the document as sent, and the --rules pack id it replaced."""

    pack: RulePack
    data: dict[str, Any]
    base: str | None


@dataclass(frozen=True)
class ActivationResult:
    previous_version: str
    active_version: str
    changed: bool
    job: Job | None


def parse_pack(data: Any) -> RulePack:
    """A candidate pack from a decoded JSON body; RulePackError names the rule and field at fault."""
    return load_pack_data(data)


def parse_pack_body(body: bytes) -> tuple[RulePack, dict[str, Any]]:
    try:
        data = orjson.loads(body)
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


def validate_for_activation(pack: RulePack) -> None:
    """Refuse a pack with structural errors (check_pack) or examples that do not classify as declared."""
    base = [default_pack()]
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


def find_activated(conn: Connection) -> Activated | None:
    raw = find_state(conn, ACTIVATED_PACK)
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
        return Activated(load_pack_data(doc["pack"]), doc["pack"], doc.get("base"))
    except (orjson.JSONDecodeError, KeyError, TypeError, RulePackError):
        log.exception("the persisted activated rule pack does not load; using the configured packs")
        return None


def startup_packs(engine: Engine, settings: Settings) -> list[RulePack]:
    """The packs to classify with at start-up.

    A pack activated over the API survives restarts while the --rules it replaced is unchanged; starting
    with a different --rules is a newer, explicit choice, so the activation is dropped.
    """
    packs = configured_packs(settings)
    base = packs[0].id if settings.rules_file is not None else None
    with engine.begin() as conn:
        activated = find_activated(conn)
        if activated is None:
            return packs
        if activated.base == base:
            return layered(activated.pack)
        delete_state(conn, ACTIVATED_PACK)
    log.info("the rule pack activated over --rules %s is dropped: started with --rules %s", activated.base, base)
    return packs


def sync_rule_version(engine: Engine, version: str, *, force: bool = False) -> Job | None:
    """Record the active version; enqueue (never run) a backfill when history was classified otherwise."""
    with engine.begin() as conn:
        write_lock(conn)
        return request_backfill(conn, version, force=force)


def recorded_version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return find_state(conn, ACTIVE_RULE_VERSION)


def follow_activation(services: Services) -> bool:
    """Adopt a pack another process activated (replicas sharing one database); True when this one switched.

    Reads one service_state row; parses it only when it changed since the last look. A pack activated over a
    different --rules than this process runs with is not adopted: start-up already decided that case.
    """
    with services.engine.connect() as conn:
        raw = find_state(conn, ACTIVATED_PACK)
    if raw is None or raw == services.followed_activation:
        return False
    services.followed_activation = raw
    with services.engine.connect() as conn:
        activated = find_activated(conn)
    if activated is None or activated.base != _configured_user_pack_id(services.settings):
        return False
    with _ACTIVATION_LOCK:
        current = services.pipeline.classifier
        if current.packs and current.packs[0] == activated.pack:
            return False
        classifier = candidate_classifier(activated.pack)
        services.classifier = classifier
        services.pipeline.classifier = classifier
        services.packs = list(classifier.packs)
    log.info("rule version %s adopted from another process (was %s)", classifier.version, current.version)
    return True


def activate(services: Services, pack: RulePack, data: dict[str, Any]) -> ActivationResult:
    """Validate `pack`, persist it, swap the live classifier and enqueue the backfill of history."""
    classifier = candidate_classifier(pack)
    validate_for_activation(pack)
    with _ACTIVATION_LOCK:
        current = services.pipeline.classifier
        if classifier.version == current.version:
            if current.packs and current.packs[0] == pack:
                with services.engine.connect() as conn:
                    job = find_active(conn, JobKind.BACKFILL)
                return ActivationResult(current.version, current.version, False, job)
            raise Conflict(
                f"pack {pack.id} is already active with different rules; give the changed pack a new id "
                "(name@YYYY-MM-DD) so its decisions can be told apart",
                details={"active_version": current.version},
            )
        doc = orjson.dumps({"pack": data, "base": _configured_user_pack_id(services.settings)}).decode()
        with services.engine.begin() as conn:
            write_lock(conn)
            put_state(conn, ACTIVATED_PACK, doc)
            job = request_backfill(conn, classifier.version)
        # Persisted first: a crash between the two leaves the restart to pick the new pack up. Each
        # assignment is atomic; ingest reads the pipeline's classifier once per event.
        services.classifier = classifier
        services.pipeline.classifier = classifier
        services.packs = list(classifier.packs)
    log.info("rule version %s activated (was %s)", classifier.version, current.version)
    return ActivationResult(current.version, classifier.version, True, job)
