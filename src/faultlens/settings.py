"""Settings: the only place the environment (FAULTLENS_*) and config files are read."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_PATH = Path("data/faultlens.db")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Typed configuration; CLI flags override these by passing explicit values."""

    model_config = SettingsConfigDict(env_prefix="FAULTLENS_", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DB_PATH}")
    host: str = "127.0.0.1"
    port: int = 8000
    rules_file: Path | None = None
    max_batch_events: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    max_message_chars: int = 8_192
    max_field_chars: int = 512
    max_attributes: int = 64
    max_attribute_chars: int = 1_024
    default_tenant: str = "default"
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
    task_sync_interval_s: float = 30.0
    # Per-source SLO objectives (YAML/JSON); defaults apply without it.
    slo_file: Path | None = None
    backfill_batch_size: int = 2_000
    start_jobs: bool = True
