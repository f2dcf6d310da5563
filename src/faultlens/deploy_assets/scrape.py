"""The prometheus.yml example: scrape faultlens' /metrics with an operator key and load the generated rules."""

from __future__ import annotations

from typing import Any

from faultlens.deploy_assets.names import SCRAPE_JOB


def config(
    *,
    target: str = "127.0.0.1:8000",
    credentials_file: str = "/etc/prometheus/faultlens-operator-key",
    rule_files: list[str] | None = None,
    interval: str = "15s",
) -> dict[str, Any]:
    """A Prometheus configuration; the shipped example and the live test both come from here."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": rule_files if rule_files is not None else ["rules/*.yml"],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "metrics_path": "/metrics",
                # process-wide series (HTTP, ingest, database, loops) are served to operator keys only
                "authorization": {"type": "Bearer", "credentials_file": credentials_file},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
