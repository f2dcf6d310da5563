"""Service wiring: builds the engine, rule packs, classifier, fingerprinter and pipeline from Settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Engine, select

from faultlens.classify.engine import Classifier
from faultlens.classify.fingerprint import Fingerprinter
from faultlens.classify.rules import RulePack, default_pack, load_pack
from faultlens.ingest import IngestResult, Pipeline
from faultlens.jobs.activation import rules_generation, startup_packs, sync_rule_version, tenant_activations
from faultlens.jobs.metrics import register_metrics
from faultlens.jobs.rulebook import RuleBook
from faultlens.metrics import Metrics
from faultlens.settings import Settings
from faultlens.store.db import engine_for, migrate
from faultlens.store.tables import service_state
from faultlens.timeutil import now_ms
from faultlens.triage import slo

FINGERPRINT_STATE_KEY = "fingerprinter"


def load_packs(settings: Settings) -> list[RulePack]:
    """The active packs: the user's pack (if any) layered before the shipped default."""
    packs = [default_pack()]
    if settings.rules_file is not None:
        packs.insert(0, load_pack(settings.rules_file))
    return packs


@dataclass
class Services:
    settings: Settings
    engine: Engine
    classifier: Classifier
    fingerprinter: Fingerprinter
    pipeline: Pipeline
    metrics: Metrics
    packs: list[RulePack] = field(default_factory=list)
    # The rule-activations generation last looked at (jobs/activation.follow_activation): reloaded when it changes.
    followed_activation: str | None = None
    # Tenants' own packs over the global classifier (`classifier`); ingest and backfill ask classifier_for(tenant).
    rulebook: RuleBook = field(init=False)
    _state_lock: threading.Lock = field(default_factory=threading.Lock)
    _saved_templates: int = 0
    _saved_at: float = 0.0

    def __post_init__(self) -> None:
        self.rulebook = RuleBook(self.classifier)
        self.pipeline.tenant_classifiers = self.rulebook.find

    def classifier_for(self, tenant: str) -> Classifier:
        """The classifier of a tenant's events: its own pack over the global stack, or the global stack."""
        found: Classifier = self.pipeline.classifier_for(tenant)
        return found

    def set_rules(
        self, *, global_classifier: Classifier | None = None, tenant_packs: Mapping[str, RulePack] | None = None
    ) -> None:
        """Swap the global classifier and/or the tenants' packs (tenant stacks are rebuilt over the global one)."""
        base = global_classifier or self.pipeline.classifier
        self.rulebook.replace(global_classifier=base, tenant_packs=tenant_packs)
        if global_classifier is not None:
            self.classifier = global_classifier
            self.pipeline.classifier = global_classifier
            self.packs = list(global_classifier.packs)

    def after_ingest(self, result: IngestResult, seconds: float) -> None:
        """Count the batch, and persist new fingerprint templates at most every few seconds."""
        m = self.metrics
        m.ingest_events.labels("accepted").inc(result.accepted)
        m.ingest_events.labels("duplicate").inc(result.duplicates)
        m.ingest_events.labels("rejected").inc(len(result.rejected))
        m.ingest_batch_seconds.observe(seconds)
        count = len(self.fingerprinter)
        if count != self._saved_templates and time.monotonic() - self._saved_at > 5.0:
            self._saved_templates = count
            self._saved_at = time.monotonic()
            self.save_fingerprints()

    def save_fingerprints(self) -> None:
        """Persist the fingerprinter so template ids survive restarts."""
        with self._state_lock:
            state = orjson.dumps(self.fingerprinter.export_state()).decode()
            save_state(self.engine, FINGERPRINT_STATE_KEY, state)

    def close(self) -> None:
        self.save_fingerprints()
        self.engine.dispose()


def save_state(engine: Engine, key: str, value: str) -> None:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(service_state).values(key=key, value=value, updated_at=now_ms())
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def load_state(engine: Engine, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(service_state.c.value).where(service_state.c.key == key)).scalar()


def build_services(settings: Settings, *, run_migrations: bool = True, metrics: Metrics | None = None) -> Services:
    engine = engine_for(settings)
    if run_migrations:
        migrate(engine)
    slo.load_config(settings.slo_file)  # a bad SLO file stops the start, not the first scrape
    # The pack activated over the API survives restarts; a changed pack only enqueues a backfill here.
    packs = startup_packs(engine, settings)
    classifier = Classifier(packs)
    sync_rule_version(engine, classifier.version)
    saved = load_state(engine, FINGERPRINT_STATE_KEY)
    fingerprinter = Fingerprinter.from_state(orjson.loads(saved)) if saved else Fingerprinter()
    pipeline = Pipeline(engine, settings, classifier, fingerprinter)
    services = Services(settings, engine, classifier, fingerprinter, pipeline, metrics or Metrics(), packs)
    with engine.connect() as conn:
        services.followed_activation = rules_generation(conn)
        tenant_packs = tenant_activations(conn)
    if tenant_packs:
        services.set_rules(tenant_packs=tenant_packs)
    register_metrics(services)
    return services
