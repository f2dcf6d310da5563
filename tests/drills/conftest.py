"""Drill tests: a fast-mode DrillConfig per test (SQLite, or PostgreSQL when the server is there)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from faultlens.drills.harness import DrillConfig
from tests.conftest import PG_ADMIN_URL, missing_service

FAST = 0.1
# Like the rest of the suite: a metric label outside the dictionary's closed sets raises in the servers drills start.
STRICT = {"obs_metrics_strict": True}


@pytest.fixture
def drill_config(tmp_path: Path) -> DrillConfig:
    return DrillConfig(time_scale=FAST, work_dir=tmp_path, server_settings=dict(STRICT))


@pytest.fixture
def drill_config_pg(tmp_path: Path) -> DrillConfig:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    return DrillConfig(
        time_scale=FAST,
        database="postgresql",
        pg_admin_url=PG_ADMIN_URL,
        work_dir=tmp_path,
        server_settings=dict(STRICT),
    )
