"""Models of the release list (GET /api/v1/releases): releases seen in a window with their counts, deploy markers."""

from __future__ import annotations

from pydantic import Field

from faultlens.api.schemas.base import RFC3339, Out
from faultlens.api.schemas.triage import WindowInfo


class ReleaseSeen(Out):
    release: str
    environment: str = Field(description="'' for events that named no environment")
    sources: list[str]
    first_seen: str | None = Field(description=RFC3339 + ": the release's first event in this environment")
    last_seen: str | None = Field(description=RFC3339)
    total: int
    failures: int
    actionable: int
    actionable_failure_rate: float
    client_aborts: int


class DeployMarker(Out):
    release: str
    environment: str
    at: str = Field(description=RFC3339 + ": the release's first event, inside the window")


class ReleaseList(Out):
    window: WindowInfo
    filters: dict[str, str | None]
    releases: list[ReleaseSeen]
    markers: list[DeployMarker]
