"""Service wiring: builds the engine, rule packs, classifier, fingerprinter and pipeline from Settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from faultlens import tracing
from faultlens.alerting.service import Alerting
from faultlens.classify.cache_stats import CACHES, cache_counts, counter
from faultlens.classify.engine import Classifier
from faultlens.classify.rules import RulePack, default_pack, load_pack
from faultlens.connectors import deadline as redis_deadline
from faultlens.fingerprinters import LEGACY_STATE_KEY, TenantFingerprinters, version_key
from faultlens.ingest import IngestResult, Pipeline
from faultlens.jobs.metrics import register_metrics
from faultlens.metrics import Metrics
from faultlens.otlp.receiver import ExportOutcome
from faultlens.rulepacks.activation import follow_activation, startup_packs, sync_rule_version, tenant_activations
from faultlens.rulepacks.rulebook import RuleBook
from faultlens.settings import Settings
from faultlens.store import state
from faultlens.store.db import engine_for, migrate, observe_calls
from faultlens.tracing import Tracing
from faultlens.triage import slo


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
    # One fingerprinter per tenant (fingerprinters.py): no tenant's messages shape another tenant's templates.
    fingerprinters: TenantFingerprinters
    pipeline: Pipeline
    metrics: Metrics
    packs: list[RulePack] = field(default_factory=list)
    # The rule-activations generation last looked at (rulepacks/activation.follow_activation): reloaded when it changes.
    followed_activation: str | None = None
    # faultlens' own traces (tracing.py): None when no OTLP endpoint is set, and then nothing is instrumented.
    tracing: Tracing | None = None
    # Stateful alerts (alerting/service.py): routing, evaluation and delivery.
    alerting: Alerting | None = None
    # Tenants' own packs over the global classifier (`classifier`); ingest and backfill ask classifier_for(tenant).
    rulebook: RuleBook = field(init=False)
    _follow_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rulebook = RuleBook(self.classifier)
        self.pipeline.tenant_classifiers = self.rulebook.find
        self.metrics.set_rule_version(self.classifier.version)

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
            self.metrics.set_rule_version(global_classifier.version)

    def follow_rules(self) -> None:
        """Adopt rule packs activated by another process (the rule follower polls this; the job runner calls it
        before each pass). One caller at a time: the runner relies on a follow having finished, not merely begun
        in the other thread, before it records the version it classifies with."""
        with self._follow_lock:
            follow_activation(self)

    def record_rule_version(self) -> None:
        """Record the global rule version this process classifies with (enqueues a backfill when it changed)."""
        sync_rule_version(self.engine, self.pipeline.classifier.version)

    def after_ingest(self, result: IngestResult, seconds: float) -> None:
        """Count the batch, and persist new fingerprint templates at most every few seconds."""
        m = self.metrics
        m.ingest_events.labels("accepted").inc(result.accepted)
        m.ingest_events.labels("duplicate").inc(result.duplicates)
        m.ingest_events.labels("rejected").inc(len(result.rejected))
        for rejected in result.rejected:
            m.ingest_rejections.labels(rejected["error"]["code"]).inc()
        m.ingest_batch_seconds.observe(seconds)
        saved = self.fingerprinters.save_if_due(self.settings.fingerprint_save_interval_s)
        if saved is not None:
            m.loop_started("fingerprint_saver")
            m.loop_pass("fingerprint_saver", ok=saved)

    def after_export(self, signal: str, outcome: ExportOutcome, seconds: float) -> None:
        """Count one OTLP export (spans or logs) by what became of its items, then as an ingest batch."""
        items = self.metrics.otlp_items
        items.labels(signal, "event").inc(outcome.ingest.accepted + outcome.ingest.duplicates)
        items.labels(signal, "evidence").inc(outcome.evidence_stored)
        items.labels(signal, "evidence_capped").inc(outcome.evidence_dropped)
        items.labels(signal, "dropped").inc(outcome.dropped)
        items.labels(signal, "rejected").inc(outcome.rejected)
        self.after_ingest(outcome.ingest, seconds)

    def cache_stats(self, tenant: str) -> dict[str, Any]:
        """Lookups and hits of this process' classification caches and fingerprint caches made for `tenant`'s
        events, since the process started: per process, as the overlay-cache partition of the parallel-ops contract
        states, and per tenant, so no tenant sees another's traffic."""
        caches = {name: cache_counts(counter(name, tenant)) for name in CACHES}
        requests = sum(c["requests"] for c in caches.values())
        hits = sum(c["hits"] for c in caches.values())
        return {
            "scope": "process",
            "requests": requests,
            "hits": hits,
            "hit_rate": hits / requests if requests else 0.0,
            "caches": caches,
        }

    def save_fingerprints(self) -> None:
        """Persist every tenant's fingerprinter in memory so template ids survive restarts."""
        self.fingerprinters.save_all()

    def close(self) -> None:
        self.save_fingerprints()
        if self.tracing is not None:
            self.tracing.shutdown()
        self.engine.dispose()


def save_state(engine: Engine, key: str, value: str) -> None:
    """Write one state document in its own transaction (the fingerprinters' save)."""
    with engine.begin() as conn:
        state.save_state(conn, key, value)


def save_fingerprinter_state(engine: Engine, key: str, value: str) -> str | None:
    """Write a fingerprinter's state document and, for a tenant's own key, a fresh version token (returned)."""
    prefix = f"{LEGACY_STATE_KEY}:"
    with engine.begin() as conn:
        if not key.startswith(prefix):
            state.save_state(conn, key, value)
            return None
        return state.save_stamped_state(conn, key, value, stamp_key=version_key(key.removeprefix(prefix)))


def swap_fingerprinter_state(engine: Engine, key: str, value: str, expected: str | None) -> str | None:
    """Write a tenant's fingerprinter state only if its version token is still `expected`; the new token, or None
    when another process saved it since (fingerprinters.TenantFingerprinters merges and tries again)."""
    tenant = key.removeprefix(f"{LEGACY_STATE_KEY}:")
    with engine.begin() as conn:
        return state.swap_stamped_state(conn, key, value, stamp_key=version_key(tenant), expected=expected)


def load_state(engine: Engine, key: str) -> str | None:
    """Read one state document (the fingerprinters' load)."""
    with engine.connect() as conn:
        return state.find_state(conn, key)


def build_services(settings: Settings, *, run_migrations: bool = True, metrics: Metrics | None = None) -> Services:
    engine = engine_for(settings)
    if run_migrations:
        migrate(engine)
    slo.load_config(settings.slo_file)  # a bad SLO file stops the start, not the first scrape
    # The pack activated over the API survives restarts; a changed pack only enqueues a backfill here.
    packs = startup_packs(engine, settings)
    classifier = Classifier(packs)
    sync_rule_version(engine, classifier.version)
    # Each tenant's saved templates are read on its first use, not here; a newer save by another replica is
    # noticed through the tenant's version token, read at most every fingerprint_follow_interval_s, and merged in.
    # Saves compare-and-swap that token, merging another replica's save first when it raced ours.
    fingerprinters = TenantFingerprinters(
        lambda key: load_state(engine, key),
        lambda key, value: save_fingerprinter_state(engine, key, value),
        default_tenant=settings.default_tenant,
        version=lambda tenant: load_state(engine, version_key(tenant)),
        follow_interval_s=settings.fingerprint_follow_interval_s,
        swap=lambda key, value, expected: swap_fingerprinter_state(engine, key, value, expected),
        max_templates=settings.fingerprint_max_templates or None,
    )
    pipeline = Pipeline(engine, settings, classifier, fingerprinters)
    metrics = metrics or Metrics(namespace=settings.obs_metrics_namespace, strict=settings.obs_metrics_strict)
    observe_calls(
        engine,
        seconds=lambda operation, s: metrics.database_seconds.labels(operation).observe(s),
        error=lambda reason: metrics.database_errors.labels(reason).inc(),
    )
    redis_deadline.observe(metrics)  # the task stores' Redis calls, timed and their errors counted
    services = Services(settings, engine, classifier, fingerprinters, pipeline, metrics, packs)
    with engine.connect() as conn:
        services.followed_activation = state.find_rules_generation(conn)
        tenant_packs = tenant_activations(conn)
    if tenant_packs:
        services.set_rules(tenant_packs=tenant_packs)
    register_metrics(services)
    # A bad alert routing file stops the start here, as a bad SLO file does.
    services.alerting = Alerting(services)
    # After the start's own statements (migrations, packs): traced from the first request on.
    services.tracing = tracing.start(settings)
    if services.tracing is not None:
        services.tracing.instrument_engine(engine)
    return services
