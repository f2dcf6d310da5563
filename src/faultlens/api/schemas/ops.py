"""Models of the ops summary contract (GET /api/v1/internal/ops/metrics/summary; docs/ops-summary.md)."""

from __future__ import annotations

from pydantic import Field

from faultlens.api.schemas.base import RFC3339, Number, Out


class OpsFigure(Out):
    name: str = Field(description="The metric dictionary's full name, with the namespace")
    value: Number | None = Field(description="null when there is nothing to estimate it from (p95 without requests)")
    unit: str
    help: str
    labels: dict[str, str]


class OpsWindow(Out):
    label: str = Field(description="1h|6h|24h|7d|14d|30d|90d, or custom for since/until")
    since: str = Field(description=RFC3339)
    until: str = Field(description=RFC3339 + " (exclusive)")


class OpsSections(Out):
    api: list[OpsFigure]
    worker: list[OpsFigure]
    quality: list[OpsFigure]
    cost: list[OpsFigure]
    slo: list[OpsFigure]


class OpsSummary(Out):
    tenant: str
    generated_at: str = Field(description=RFC3339)
    window: OpsWindow
    sections: OpsSections
