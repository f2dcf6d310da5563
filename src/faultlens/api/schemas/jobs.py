"""Models of background jobs and of the rules routes (active packs, preview, activation)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from faultlens.api.schemas.base import Out


class JobProgress(Out):
    done: int
    total: int
    changed: int


class Job(Out):
    id: str
    kind: str = Field(description="backfill | rollup_rebuild")
    state: str = Field(description="pending | running | done | failed")
    scope: str = Field(description="tenant | global (covers every tenant; shown to all as read-only context)")
    tenant: str | None
    rule_version: str | None
    progress: JobProgress
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None


class JobList(Out):
    items: list[Job]


class PackInfo(Out):
    id: str
    description: str | None
    rules: int
    origin: str = Field(description="default | rules_file | activated")
    scope: str = Field(description="tenant | global")


class Rules(Out):
    active_version: str = Field(description="The version classifying the caller's tenant's events")
    recorded_version: str | None
    global_version: str = Field(description="The version of the packs every tenant shares")
    packs: list[PackInfo]
    backfill: Job | None


class PackVersion(Out):
    id: str
    origin: str = Field(
        description="shipped (a version faultlens ships) | activated (a pack activated over the API) | "
        "rules_file (a pack this process was started with)"
    )


class ReplicaRules(Out):
    replica: str = Field(description="An opaque, stable name of one serving process")
    rule_version: str
    started_at: str
    seen_at: str = Field(description="Its last heartbeat (every REPLICA_HEARTBEAT_INTERVAL_S)")
    on_active: bool = Field(description="It runs the active version and has adopted every activation")


class RuleVersions(Out):
    versions_total: int
    versions: list[PackVersion]
    active_version: str = Field(description="The global version history is classified with")
    tenant_version: str = Field(description="The caller's tenant's own pack, if any, over the active version")
    tenant_on_active: bool = Field(description="The answering process classifies the tenant's events with it")
    replicas_total: int = Field(description="Processes seen within three heartbeat intervals")
    replicas_on_active: int
    replicas: list[ReplicaRules]
    version_consistent: bool = Field(description="Every live replica and the tenant run the active version")
    consistency_rate: float | None = Field(description="replicas_on_active / replicas_total; null with no replica")


class ClassKind(Out):
    failure_class: str
    failure_kind: str


class Move(Out):
    from_: ClassKind = Field(alias="from")
    to: ClassKind
    count: int
    sample_ids: list[str]

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Preview(Out):
    candidate_version: str
    window: str
    total_examined: int
    total_changed: int
    moves: list[Move]


class Activation(Out):
    scope: str = Field(description="tenant | global")
    previous_version: str | None
    active_version: str
    changed: bool
    backfill: Job | None
