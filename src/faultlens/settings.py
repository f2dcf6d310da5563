"""Settings: the only place the environment (FAULTLENS_*) and config files are read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("data/faultlens.db")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Typed configuration; CLI flags override these by passing explicit values."""

    model_config = SettingsConfigDict(env_prefix="FAULTLENS_", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DB_PATH}")
    # Database deadlines (docs/limits.md): a dead or black-holed database answers 503 within these, never hangs.
    database_connect_timeout_s: float = 5.0
    database_statement_timeout_s: float = 30.0
    database_lock_timeout_s: float = 10.0
    database_pool_timeout_s: float = 5.0
    # Retry-After (seconds) on a 503 database_unavailable answer.
    database_retry_after_s: int = 5
    # SQLite: how long a writer waits for the file lock before the request answers 503.
    sqlite_busy_timeout_s: float = 10.0
    # Behind pgbouncer (transaction mode): psycopg's prepared statements off; timeouts are SET LOCAL either way.
    database_pooler: bool = False
    # PostgreSQL connections one process keeps (pool_size) and may open beyond them under load (max_overflow); a
    # request finding all in use waits database_pool_timeout_s, then answers 503. Size them so that
    # replicas x (pool_size + max_overflow) <= PostgreSQL's max_connections, or the pooler's pool (docs/limits.md).
    # SQLite keeps SQLAlchemy's own pooling.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    # A request body must arrive completely within this, or the request answers 408 (slow senders hold no worker).
    request_body_timeout_s: float = 30.0
    # Requests one process handles at once (api/concurrency.py; /healthz, /readyz and /metrics exempt): one more
    # answers 503 server_busy with Retry-After: busy_retry_after_s at once instead of queueing for a worker thread
    # or a database connection without bound. 0: no cap.
    max_concurrent_requests: int = Field(default=64, ge=0)
    busy_retry_after_s: int = Field(default=1, ge=0)
    # Ingest batches (POST /api/v1/events, OTLP traces and logs) one process stores at once (api/concurrency.py):
    # a batch is CPU work under the GIL plus a write transaction, so batches side by side slow the reads and, on
    # SQLite, only queue on its one writer lock. A batch takes its place once its body has arrived; past these,
    # up to ingest_queue more wait at most ingest_queue_timeout_s each, and the rest answer 503 server_busy with
    # Retry-After: busy_retry_after_s (nothing of them stored). 0: no bound.
    ingest_concurrency: int = Field(default=1, ge=0)
    ingest_queue: int = Field(default=16, ge=0)
    ingest_queue_timeout_s: float = Field(default=10.0, gt=0)
    # The serving process (process_tuning.py): the interpreter lock's switch interval (Python's own is 5 ms; a shorter
    # one lets the event loop answer a cheap request sooner beside a batch's Python work), and whether the objects
    # held once the app is built are frozen out of the garbage collector's full collections.
    gil_switch_interval_ms: float = Field(default=1.0, gt=0, le=100)
    gc_freeze_at_start: bool = True
    # /metrics reads its overview series from the database at most this often per tenant (triage/metrics_collector.py):
    # a scrape answers the last reading, refreshed in the background once older than this; 0: read on every scrape.
    metrics_cache_ttl_s: float = Field(default=10.0, ge=0)
    # API usage per tenant (api/usage.py) is counted in memory and added to the api_usage table this often (and at
    # shutdown): the ops summary's api figures lag by up to this; 0 writes only at shutdown (tests flush by hand).
    api_usage_flush_interval_s: float = Field(default=5.0, ge=0)
    # /readyz: each dependency check answers within this.
    readiness_timeout_s: float = 2.0
    # Level of faultlens' own log lines on stderr under `faultlens serve`.
    log_level: str = "INFO"
    # Log lines on stderr (faultlens.logs): JSON for collectors, text for a person; auto: text on a terminal.
    log_format: Literal["auto", "json", "text"] = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    # `faultlens serve` (why: slow or idle clients must not hold the server without bound): open connections past
    # this answer 503; a client must finish a request's headers within header_timeout_s, and an idle keep-alive
    # connection is closed after keep_alive_timeout_s.
    max_connections: int = Field(default=1000, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    # Host names answered (comma-separated, any port) besides the loopback names and the bind address; "*" answers
    # any Host. Refusing other names keeps DNS-rebinding pages from reading a server (api/guard.py).
    allowed_hosts: str = ""
    # How long a server trusts its last look at whether anonymous access is open; a key created by another
    # process closes anonymous access within this. Presented keys are checked on every request regardless.
    anonymous_check_ttl_s: float = 2.0
    # Client names counted as loopback for anonymous access besides loopback IPs; only tests set it (the ASGI
    # test client calls itself "testclient").
    loopback_client_names: str = ""
    rules_file: Path | None = None
    max_batch_events: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    # Free text longer than its limit is stored cut (head and tail kept, with a marker), never refused.
    max_message_chars: int = 16_384
    max_attributes: int = 64
    max_attribute_chars: int = 1_024
    default_tenant: str = "default"
    # Ingest saves tenants' new fingerprint templates at most this often (and at shutdown); tests shorten it.
    fingerprint_save_interval_s: float = Field(default=5.0, ge=0)
    # Each tenant's fingerprinter checks this often whether another replica saved newer templates (0 = every use).
    fingerprint_follow_interval_s: float = Field(default=2.0, ge=0)
    # Templates one tenant's fingerprinter holds (classify/fingerprint.py): past it, the least recently joined are
    # forgotten (their ids stay valid where stored), so memory, garbage collection and saves stay bounded for a
    # source whose free-text messages keep making new ones. 0: no limit.
    fingerprint_max_templates: int = Field(default=20_000, ge=0)
    # Every process reads the rule-activations generation (one small row) this often and adopts packs activated on
    # another replica: an activation reaches all of them within this interval and a moment.
    rules_follow_interval_s: float = Field(default=2.0, gt=0)
    # Each process records its rule version and adopted generation (the replicas table) at most this often; a
    # replica not seen for three of these counts as gone in the rule-version consistency view.
    replica_heartbeat_interval_s: float = Field(default=10.0, gt=0)
    # OTLP receiver (docs/otel.md). Span and resource attributes copied onto an event: a bounded allow-list
    # (comma-separated); everything else is left out.
    otlp_attributes: str = (
        "http.request.method,http.method,url.scheme,server.address,rpc.system,rpc.service,rpc.method,"
        "messaging.system,messaging.destination.name,db.system,exception.type,host.name,k8s.namespace.name,"
        "k8s.pod.name,cloud.region,service.namespace,service.instance.id,telemetry.sdk.language"
    )
    # Failed CLIENT/INTERNAL spans kept per trace as its evidence (the rest are counted as dropped).
    otlp_max_evidence_per_trace: int = Field(default=64, ge=0, le=10_000)
    # Log records below this severity number (17 = ERROR) are dropped unless they carry exception.* attributes.
    otlp_log_min_severity: int = Field(default=17, ge=1, le=24)
    # OTLP exports handled at once; one more answers 429 with Retry-After at once, so exporters back off instead
    # of queueing on a busy store.
    otlp_max_inflight: int = Field(default=16, ge=1, le=1_024)
    # faultlens' own traces (faultlens.tracing, docs/tracing.md): on only when an OTLP endpoint is set, under the
    # OpenTelemetry SDK's standard names. The traces endpoint is used as given; the base endpoint gets /v1/traces.
    otel_exporter_otlp_endpoint: str = Field(default="", validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_exporter_otlp_traces_endpoint: str = Field(
        default="", validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    otel_service_name: str = Field(default="", validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    # One export of a batch of spans gives up after this; the spans are dropped, the server is never held up.
    tracing_export_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Prefix of every exported metric name (metric_dictionary.yaml lists the names without it): two faultlens
    # deployments scraped by one Prometheus can be told apart. The issue names OBS_METRICS_NAMESPACE.
    obs_metrics_namespace: str = Field(
        default="faultlens",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$",
        validation_alias=AliasChoices("FAULTLENS_OBS_METRICS_NAMESPACE", "OBS_METRICS_NAMESPACE"),
    )
    # A metric label value outside the dictionary's closed set raises (tests turn this on) instead of being counted
    # and exported as "other" (production: a bug must not break ingest or grow cardinality).
    obs_metrics_strict: bool = False
    # The seed document names REDIS_URL; FAULTLENS_REDIS_URL wins when both are set.
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("FAULTLENS_REDIS_URL", "REDIS_URL"),
    )
    redis_timeout_s: float = 5.0
    # Prefix of the native failed-task layout in Redis (see docs/tasks.md).
    redis_prefix: str = "faultlens:tasks"
    # Task retry policies and never-retry categories (YAML/JSON); defaults apply without it.
    retry_policy_file: Path | None = None
    task_retention_days: float = 30.0
    task_archive_dir: Path = Path("data/archive")
    # Where retention archives failed tasks before deleting them: "database" (table task_archive: every replica
    # sees it, none keeps it on its own disk), "directory" (JSON Lines files in task_archive_dir, fsync'ed; a
    # shared mount when replicas run), or "auto": the database on PostgreSQL, the directory on SQLite.
    task_archive_to: Literal["auto", "database", "directory"] = "auto"
    task_sync_interval_s: float = 30.0
    # Raw events are kept this many days (0: forever) by the leased duty "event_partitions", which runs this often:
    # PostgreSQL drops whole day partitions (and creates the coming days'), SQLite deletes in batches. Rollups are
    # kept: "rollups equal a raw scan" holds inside this window (jobs/event_partitions.py).
    event_retention_days: float = Field(default=90.0, ge=0)
    event_partition_interval_s: float = Field(default=3600.0, ge=0)
    # Minute rollups (the burn-rate shape's fine grain) are kept this many hours by the same duty; reads older than
    # that use hours and raw edges, as before minutes existed (store/rollup_reads.complete_fine_hours).
    fine_rollup_retention_hours: float = Field(default=48.0, gt=1)
    # Retention deletes data of other systems: off for each store until its operator turns it on.
    task_retention_native: bool = False
    task_retention_rq: bool = False
    task_retention_celery: bool = False
    # Threads the task routes may hold on Redis at once (their own pool: a hung Redis cannot starve the rest).
    redis_max_concurrency: int = Field(default=8, ge=1, le=256)
    # Per-source SLO objectives (YAML/JSON); defaults apply without it.
    slo_file: Path | None = None
    backfill_batch_size: int = 2_000
    # Alerting (docs/alerting.md). Conditions are evaluated this often, by the one process holding the
    # "alert_evaluator" lease; notifications are sent by the holder of "alert_sender", which looks for due ones
    # this often (and at once after an evaluation wrote some).
    alert_eval_interval_s: float = Field(default=30.0, gt=0)
    alert_delivery_interval_s: float = Field(default=1.0, gt=0)
    # A lease not renewed for this long is taken over by another process (the holder renews it 3 times per ttl).
    lease_ttl_s: float = Field(default=15.0, gt=0)
    # Routing file (YAML): matchers -> owner, runbook, receivers, grouping. Without it every alert goes to
    # OBS_ALERT_WEBHOOK with owner "unassigned" and the runbook of its code.
    alert_routing_file: Path | None = None
    obs_alert_webhook: str = Field(
        default="", validation_alias=AliasChoices("FAULTLENS_ALERT_WEBHOOK", "OBS_ALERT_WEBHOOK")
    )
    # Delivery: tries per notification before it is dead-lettered, exponential backoff with full jitter between
    # them, a Retry-After honoured up to its cap, and the deadline of one send.
    alert_delivery_max_attempts: int = Field(default=10, ge=1, le=100)
    alert_delivery_backoff_base_s: float = Field(default=2.0, gt=0)
    alert_delivery_backoff_max_s: float = Field(default=300.0, gt=0)
    alert_retry_after_max_s: float = Field(default=900.0, gt=0)
    alert_delivery_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Base URL of this deployment's dashboard in notifications' links; empty: http://<host>:<port>.
    external_url: str = ""
    # Release gates (docs/releases.md; document 004 §8 names). RELEASE_CANARY_RATIO: the canary's share of traffic
    # (sets the expected sample sizes); RELEASE_CANARY_DURATION_MIN: a canary analysis' window and a rollout's
    # interval between analyses; this many failing analyses in a row decide a rollback; ROLLBACK_MAX_MINUTES: from a
    # rollback decision to recovery confirmed; P6_READINESS_REQUIRED: admission requires every readiness check.
    release_canary_ratio: float = Field(
        default=0.1, gt=0, lt=1, validation_alias=AliasChoices("FAULTLENS_RELEASE_CANARY_RATIO", "RELEASE_CANARY_RATIO")
    )
    release_canary_duration_min: float = Field(
        default=10.0,
        gt=0,
        le=1440,
        validation_alias=AliasChoices("FAULTLENS_RELEASE_CANARY_DURATION_MIN", "RELEASE_CANARY_DURATION_MIN"),
    )
    release_rollback_after_failures: int = Field(default=2, ge=1, le=20)
    rollback_max_minutes: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("FAULTLENS_ROLLBACK_MAX_MINUTES", "ROLLBACK_MAX_MINUTES")
    )
    p6_readiness_required: bool = Field(
        default=True, validation_alias=AliasChoices("FAULTLENS_P6_READINESS_REQUIRED", "P6_READINESS_REQUIRED")
    )
    # Canary statistics (DECISIONS.md "Release gates"): one-sided tests at this alpha, at least this many outcomes
    # per arm (and enough power) before any verdict but inconclusive.
    release_canary_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    release_canary_min_samples: int = Field(default=200, ge=1)
    # Rollouts are analysed by the one process holding the "release_analyzer" lease; it looks for due ones this often.
    release_analyzer_interval_s: float = Field(default=15.0, gt=0)
    start_release_analyzer: bool = True
    # Failure groups (docs/groups.md): an open group first seen within this many hours is "new"; a regressed one
    # counts as "ongoing" once it regressed this many days ago; the one process holding the "group_lifecycle" lease
    # reopens ignored groups and marks resolved ones that failed again this often.
    group_new_hours: float = Field(
        default=24.0, gt=0, le=8760, validation_alias=AliasChoices("FAULTLENS_GROUP_NEW_HOURS", "GROUP_NEW_HOURS")
    )
    group_regressed_days: float = Field(
        default=7.0,
        gt=0,
        le=365,
        validation_alias=AliasChoices("FAULTLENS_GROUP_REGRESSED_DAYS", "GROUP_REGRESSED_DAYS"),
    )
    group_lifecycle_interval_s: float = Field(
        default=15.0,
        gt=0,
        validation_alias=AliasChoices("FAULTLENS_GROUP_LIFECYCLE_INTERVAL_S", "GROUP_LIFECYCLE_INTERVAL_S"),
    )
    start_group_lifecycle: bool = True
    # Replay (POST /api/v1/internal/release/replay/e2e): only base URLs on this comma-separated allow-list are called
    # (empty: replay is refused); requests in flight at once, each one's deadline, and the whole run's deadline.
    replay_targets: str = Field(default="", validation_alias=AliasChoices("FAULTLENS_REPLAY_TARGETS", "REPLAY_TARGETS"))
    replay_concurrency: int = Field(default=4, ge=1, le=32)
    replay_request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    replay_run_timeout_s: float = Field(default=120.0, gt=0, le=900)
    # Readiness: the rollback check wants a rollback (drill or real) recovered within this many days.
    readiness_rollback_drill_days: int = Field(default=30, ge=1, le=365)
    # Alert evaluation and delivery start with the server (tests turn them off and call one pass by hand).
    start_alerting: bool = True
    start_jobs: bool = True
