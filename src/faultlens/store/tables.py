"""SQLAlchemy Core tables: the schema every query and migration speaks of."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

metadata = MetaData()

# Times are integer milliseconds since the Unix epoch (UTC): one representation that sorts, ranges and
# buckets identically on SQLite and PostgreSQL.
events = Table(
    "events",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("id", String(128), nullable=False),
    Column("source", String(128), nullable=False),
    Column("operation", String(256)),
    Column("item_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("duration_ms", Float),
    Column("http_status", Integer),
    Column("error_code", String(256)),
    Column("error_message", Text),
    Column("attempt", Integer),
    Column("max_attempts", Integer),
    Column("trace_id", String(128)),
    Column("span_id", String(128)),
    Column("correlation_id", String(128)),
    Column("request_id", String(128)),
    Column("job_id", String(128)),
    Column("release", String(128)),
    Column("environment", String(64)),
    Column("attributes", Text),
    # Derived by the classifier; each stamped with the rule pack version that set it.
    Column("failure_kind", String(64), nullable=False),
    Column("failure_class", String(32), nullable=False),
    Column("is_actionable", Boolean, nullable=False),
    Column("category", String(32), nullable=False),
    Column("retryable", Boolean, nullable=False),
    Column("rule_name", String(128)),
    Column("rule_version", String(128), nullable=False),
    Column("fingerprint_id", String(32)),
    # SQLite: the idempotency key. PostgreSQL partitions events by day (store/partitions.py): event_ids holds the
    # key there, and the partitions keep a plain (tenant, id) index, ix_events_tenant_id, for lookups by id.
    UniqueConstraint("tenant", "id", name="uq_events_tenant_id"),
    Index("ix_events_tenant_time", "tenant", "occurred_at"),
    Index("ix_events_tenant_trace", "tenant", "trace_id"),
    Index("ix_events_tenant_correlation", "tenant", "correlation_id"),
    Index("ix_events_tenant_request", "tenant", "request_id"),
    Index("ix_events_tenant_fingerprint", "tenant", "fingerprint_id"),
    Index(
        "ix_events_failure_fingerprints",
        "tenant",
        "occurred_at",
        "fingerprint_id",
        "failure_class",
        "failure_kind",
        "rule_name",
        sqlite_where=text("fingerprint_id IS NOT NULL"),
        postgresql_where=text("fingerprint_id IS NOT NULL"),
    ),
)

# PostgreSQL: every event id a tenant has sent, written in the ingest transaction (store/events.py): the unique key
# decides duplicates whatever day partition the event lands in. Retention forgets the ids of the days it drops.
event_ids = Table(
    "event_ids",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("scopes", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(128)),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

# Background jobs (backfill, retention, syncs): a row is the spec, the status and the checkpoint.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("tenant", String(64)),
    Column("state", String(16), nullable=False),
    Column("rule_version", String(256)),
    Column("params", Text),
    Column("done", BigInteger, nullable=False, default=0),
    Column("total", BigInteger, nullable=False, default=0),
    Column("checkpoint", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("heartbeat_at", BigInteger),
    Column("owner", String(64)),
    Column("error", Text),
    Index("ix_jobs_kind_state", "kind", "state"),
)

# Message templates seen per tenant; the id is the fingerprinter's stable template id.
fingerprints = Table(
    "fingerprints",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("template", Text, nullable=False),
    Column("sample_message", Text),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Index("ix_fingerprints_last_seen", "tenant", "last_seen"),  # the group lifecycle's recent templates (0016)
)

# Small named documents the service keeps between restarts (fingerprinter state, active rule pack).
service_state = Table(
    "service_state",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Pre-aggregated counts per hour, day and week, kept in step with events at ingest and backfill, so that
# window queries cost the number of buckets. A shape (store/rollup_shapes.py SHAPES) names the dimensions a row keeps;
# the others, like every missing value, hold '' instead of NULL so the unique key matches. Attribute rows
# (shape 3) carry one attribute name and value each; the key puts them before the bucket so a filter on one
# value reads only its rows. Only the release shape (4) keeps release and environment (migration 0012); only the
# group shape (5) keeps fingerprint_id, and only fingerprinted events have its rows (migration 0016).
ROLLUP_KEY = (
    "tenant",
    "shape",
    "grain",
    "attr_name",
    "attr_value",
    "bucket",
    "source",
    "operation",
    "item_type",
    "status",
    "failure_class",
    "failure_kind",
    "category",
    "is_actionable",
    "error_code",
    "release",
    "environment",
    "fingerprint_id",
)
rollups = Table(
    "rollups",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("shape", Integer, nullable=False),
    Column("grain", Integer, nullable=False),
    Column("attr_name", String(64), nullable=False),
    Column("attr_value", String(128), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("source", String(128), nullable=False),
    Column("operation", String(256), nullable=False),
    Column("item_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_class", String(32), nullable=False),
    Column("failure_kind", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("is_actionable", Boolean, nullable=False),
    Column("error_code", String(64), nullable=False),
    Column("release", String(128), nullable=False, server_default=text("''")),
    Column("environment", String(64), nullable=False, server_default=text("''")),
    Column("fingerprint_id", String(32), nullable=False, server_default=text("''")),
    Column("count", BigInteger, nullable=False),
    Column("attempt_sum", BigInteger, nullable=False),
    UniqueConstraint(*ROLLUP_KEY, name="uq_rollups_key"),
)

# The releases each tenant's events carried, per environment ('' when an event had none) and source, with the first
# and last occurred_at seen: written in the ingest transaction (store/releases_seen.py), read by the release list
# and the deploy markers. Events without a release add nothing.
releases_seen = Table(
    "releases_seen",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("release", String(128), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("source", String(128), primary_key=True),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Index("ix_releases_seen_first", "tenant", "first_seen"),
)

# The rule pack activated over the API per scope: 'global' (layered under every tenant's own pack, and
# replacing --rules) or 'tenant:<name>'; `document` is {"pack": ..., "base": ...} as activated.
rule_activations = Table(
    "rule_activations",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("document", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Completed backfills per tenant: every event of the tenant with pk <= until_pk was examined by the rules
# `to_version` and rewritten only where its classification changed (GET /api/v1/events/{id} confirmed_by_version).
rule_backfills = Table(
    "rule_backfills",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("tenant", String(64), primary_key=True),
    Column("from_version", String(256)),
    Column("to_version", String(256), nullable=False),
    Column("until_pk", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=False),
    Index("ix_rule_backfills_tenant", "tenant", "completed_at"),
)

# API requests answered per tenant per minute and status class, with a latency histogram in fixed buckets
# (store/api_usage.py LATENCY_BUCKETS_MS; each le_<ms> column counts the requests slower than the bound before it
# and at most that bound, le_inf the rest). Every replica adds its own counts, so the rows add up across replicas.
api_usage = Table(
    "api_usage",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # epoch ms of the minute's start
    Column("status_class", String(3), primary_key=True),  # 1xx .. 5xx
    Column("requests", BigInteger, nullable=False),
    Column("duration_ms_sum", Float, nullable=False),
    *(
        Column(f"le_{bound}", BigInteger, nullable=False)
        for bound in ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "inf")
    ),
)

# A trace's evidence: failed CLIENT / INTERNAL spans received over OTLP, shown on the trace view beside the trace's
# events but never counted as outcomes. The key makes a re-delivered span a no-op; store/traces.py bounds how many
# one trace keeps. kind: client | internal | producer | server | consumer | unspecified; status: error | ok | unset.
trace_spans = Table(
    "trace_spans",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("trace_id", String(128), primary_key=True),
    Column("span_id", String(128), primary_key=True),
    Column("parent_span_id", String(128)),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(8), nullable=False),
    Column("http_status", Integer),
    Column("error_message", Text),
    Column("attributes", Text),  # a JSON object
    Column("received_at", BigInteger, nullable=False),
)

# One row per background duty that must run on exactly one process (alert evaluation, alert delivery, ...): the
# holder renews expires_at by heartbeat in short transactions; another process takes the row once it has expired
# (store/leases.py). No session-level locks: they break behind a pooler in transaction mode.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),  # host/pid/token of the process (jobs/runner.make_owner)
    Column("acquired_at", BigInteger, nullable=False),
    Column("renewed_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# Stateful alerts (alerting/): one row per identity, `id` a hash of the tenant and the alert's labels, so the same
# condition on the same labels is the same alert across evaluations and restarts. state: pending | firing |
# resolved | inactive (pending that cleared before its `for`). `episode` counts firings; it is part of every
# notification id, so a re-fire is a new notification and a re-send of the same one is not.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(64), nullable=False),  # alertname: the condition's code
    Column("level", String(2), nullable=False),  # P0 | P1 | P2
    Column("labels", Text, nullable=False),  # JSON object, keys sorted
    Column("annotations", Text, nullable=False),  # JSON object: summary, runbook_url, owner, last change ...
    Column("state", String(16), nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("active_since", BigInteger, nullable=False),  # when the condition was first seen true (pending start)
    Column("starts_at", BigInteger),  # firing since
    Column("ends_at", BigInteger),  # resolved at
    Column("last_seen_at", BigInteger, nullable=False),  # last evaluation that found the condition true
    Column("last_notified_at", BigInteger),  # last firing notification written (repeat_interval counts from it)
    Column("episode", Integer, nullable=False, server_default=text("0")),
    Column("silenced_by", String(36)),  # the silence that muted its last notification, if any
    Column("acked_by", String(128)),
    Column("acked_at", BigInteger),
    Column("ack_comment", Text),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_alerts_tenant_state", "tenant", "state", "level"),
)

# Every change of an alert (pending, firing, resolved, inactive, acknowledged, silenced, notified ...), in order.
alert_history = Table(
    "alert_history",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("alert_id", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("event", String(16), nullable=False),
    Column("value", Float),
    Column("detail", Text),  # JSON object
    Index("ix_alert_history_alert", "tenant", "alert_id", "at"),
    Index("ix_alert_history_at", "tenant", "at"),
)

# The outbox: one row per notification per receiver, written in the transaction that changed the alert's state, so
# a crash can delay a notification but never lose it. `id` is the idempotency key; `batch_id` is the send it was
# claimed into (a retry re-sends the same batch under the same key). state: pending | delivered | dead.
alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", String(96), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("alert_id", String(32), nullable=False),
    Column("receiver", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # firing | resolved
    Column("group_key", String(256), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the alert as of the change (alerting/payloads.py AlertView)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", BigInteger, nullable=False),
    Column("due_at", BigInteger, nullable=False),  # created_at + group_wait, then the next retry
    Column("batch_id", String(64)),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", BigInteger),
    Index("ix_alert_notifications_due", "state", "due_at"),
    Index("ix_alert_notifications_alert", "tenant", "alert_id"),
)

# Silences as Alertmanager's: matchers (JSON list of {name, value, isRegex, isEqual}), a time range, who and why.
# Expiring one sets ends_at to now.
alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("matchers", Text, nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_alert_silences_tenant", "tenant", "ends_at"),
)

# Security signals per tenant per minute (api/security_signals.py): keys refused as revoked or unknown, scopes
# refused, ids of another tenant asked for. The P0 security alerts read it; every replica adds its own counts.
security_signals = Table(
    "security_signals",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Each run of a leased duty (jobs/duty.py): which process ran it and when. The replicas' proof counts runs per
# period from it ("each periodic job runs once per period"); rows older than a week are pruned by the duty itself.
duty_runs = Table(
    "duty_runs",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("ok", Boolean),
    Index("ix_duty_runs_name", "name", "started_at"),
)

# Failed tasks archived before retention deleted them (connectors/retention.py), when archives go to the database
# (on PostgreSQL by default: every replica sees them, none keeps them on its own disk). `record` is the JSON line
# a file archive would hold.
task_archive = Table(
    "task_archive",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("store", String(16), nullable=False),
    Column("task_key", String(512), nullable=False),
    Column("day", String(10), nullable=False),  # the fail day, YYYY-MM-DD (a file archive's name)
    Column("record", Text, nullable=False),
    Column("archived_at", BigInteger, nullable=False),
    Index("ix_task_archive_day", "tenant", "day"),
)

# Release gates (releases/, docs/releases.md). A rollout: a canary release against its baseline in one environment
# (and optionally one source), analysed every interval_min over the last interval_min. state: running | rolled_back |
# promoted | aborted. `consecutive_failures` counts failing analyses in a row; max_failures of them decide a rollback.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("release", String(128), nullable=False),  # the canary
    Column("baseline", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("source", String(128)),  # None: every source of the environment
    Column("ratio", Float, nullable=False),  # the canary's share of traffic
    Column("interval_min", Float, nullable=False),  # analysis window and interval
    Column("max_failures", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("last_verdict", String(16)),
    Column("last_analysis_at", BigInteger),
    Column("decision", String(16)),  # None | rollback | promote | abort
    Column("decision_reason", Text),
    Column("decided_at", BigInteger),
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_rollouts_tenant_release", "tenant", "release", "created_at"),
    Index("ix_rollouts_state", "state", "last_analysis_at"),
)

# At most one running rollout per release, environment and source (no source: every source), whichever replica
# starts it: two starts at the same moment cannot both pass a check-then-insert.
Index(
    "uq_rollouts_running",
    rollouts.c.tenant,
    rollouts.c.release,
    rollouts.c.environment,
    func.coalesce(rollouts.c.source, ""),
    unique=True,
    sqlite_where=text("state = 'running'"),
    postgresql_where=text("state = 'running'"),
)

# Every canary analysis (ad hoc, the gate endpoints' or a rollout's interval): its inputs and its judgement.
# verdict: pass | fail | inconclusive; result: JSON {metrics: [...], reasons: [...], arms: {...}}.
canary_analyses = Table(
    "canary_analyses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("rollout_id", String(36)),
    Column("baseline", String(128), nullable=False),
    Column("canary", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("source", String(128)),
    Column("since", BigInteger, nullable=False),
    Column("until", BigInteger, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("result", Text, nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_canary_analyses_canary", "tenant", "canary", "created_at"),
    Index("ix_canary_analyses_rollout", "tenant", "rollout_id", "created_at"),
)

# A rollback: decided by a rollout (or recorded by a drill), completed when recovery is confirmed. recovery_state:
# pending | recovered | overdue (not confirmed within ROLLBACK_MAX_MINUTES). The rollout stays blocked until a
# replay of `release` passes after decided_at (replay_report_id, replay_passed).
rollbacks = Table(
    "rollbacks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("rollout_id", String(36)),
    Column("release", String(128), nullable=False),  # the release rolled back
    Column("baseline", String(128)),  # the release traffic returns to
    Column("environment", String(64), nullable=False),
    Column("source", String(128)),
    Column("reason", Text, nullable=False),
    Column("drill", Boolean, nullable=False, server_default=text("false")),
    Column("decided_at", BigInteger, nullable=False),
    Column("deadline_at", BigInteger, nullable=False),  # decided_at + ROLLBACK_MAX_MINUTES
    Column("completed_at", BigInteger),
    Column("recovery_state", String(16), nullable=False),
    Column("recovery_detail", Text),  # JSON: what confirmed (or failed to confirm) recovery
    Column("replay_report_id", String(36)),
    Column("replay_passed", Boolean),
    Column("created_by", String(128), nullable=False),
    Column("report", Text),  # a rollback drill's markdown report (migration 0013); null for real rollbacks
    Index("ix_rollbacks_tenant_release", "tenant", "release", "decided_at"),
    Index("ix_rollbacks_recovery", "recovery_state", "deadline_at"),
)

# Replay reports (POST /api/v1/internal/release/replay/e2e): a recorded suite run against a target, each outcome
# classified with the tenant's active rules. report: JSON {counts, failures, results, ...}. Immutable once written.
replay_reports = Table(
    "replay_reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("release", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("suite", String(128), nullable=False),
    Column("suite_version", String(64), nullable=False),
    Column("target", String(512), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("total", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("p95_ms", Float),
    Column("rule_version", String(256), nullable=False),
    Column("report", Text, nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Index("ix_replay_reports_release", "tenant", "release", "finished_at"),
)

# Readiness evaluations (POST /api/v1/internal/release/readiness/evaluate): immutable evidence records, each with
# the checks' verdicts and evidence, the inputs it read, who asked and when.
readiness_evidence = Table(
    "readiness_evidence",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("release", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("admitted", Boolean, nullable=False),
    Column("replay_passed", Boolean, nullable=False),
    Column("failed_checks", Text, nullable=False),  # JSON list of check names
    Column("checks", Text, nullable=False),  # JSON {name: {passed, reason, evidence}}
    Column("inputs", Text, nullable=False),  # JSON: the request and the settings it was judged under
    Column("replay_report_id", String(36)),
    Column("requested_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_readiness_evidence_release", "tenant", "release", "created_at"),
)

# Each serving process' heartbeat with the rules it classifies with (rulepacks/follower.py): the global rule
# version and the rule-activations generation it has adopted. Version consistency across replicas reads it; rows of
# processes not seen for a day are pruned by the heartbeat itself.
replicas = Table(
    "replicas",
    metadata,
    Column("instance", String(128), primary_key=True),  # host/pid/token (jobs/runner.make_owner)
    Column("started_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
    Column("rule_version", String(256), nullable=False),
    Column("rules_generation", String(64)),
    Index("ix_replicas_seen", "seen_at"),
)

# Failure groups (triage/groups.py): a group is the failures of one or more fingerprint templates, named by a
# template id. Its lifecycle state: a row exists once a person or the lifecycle duty acted on it (no row: open).
# status is open, resolved, ignored or regressed; new and ongoing are derived from first_seen at read time.
failure_groups = Table(
    "failure_groups",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("resolved_at", BigInteger),
    Column("regressed_at", BigInteger),  # the first event after resolved_at
    Column("ignored_at", BigInteger),
    Column("ignore_until", BigInteger),
    Column("ignore_count", BigInteger),  # reopen after this many more events
    Column("ignore_base", BigInteger),  # the group's events the hour rollups held for ignored_at's hour then
    Column("assignee", String(128)),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False),
    Index("ix_failure_groups_status", "status", "tenant"),
)

# A person's merge or split: the template's group, overriding the fingerprinter's (Fingerprinter.resolve). Events
# keep their fingerprint_id, so later events of the template follow the override.
group_members = Table(
    "group_members",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("fingerprint_id", String(32), primary_key=True),
    Column("group_id", String(32), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_group_members_group", "tenant", "group_id"),
)

# What happened to each group, who did it and when (status, assign, note, merge, split); detail is JSON.
group_activity = Table(
    "group_activity",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("group_id", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_group_activity_group", "tenant", "group_id", "id"),
)
