"""Response and request-body models of the native API: what /openapi.json and /docs describe.

The routes build plain dicts; these models only describe them. Every model allows extra keys, so a field a
service adds is passed through (and shows up here when someone documents it) instead of being dropped, and
fields are required exactly when the route always sends them, so validating a response never adds a key.
Routes use them as `schemas.<Name>`; the submodules group them by the routes they describe.
"""

from __future__ import annotations

from faultlens.api.schemas.base import RFC3339, WINDOW_LABELS, Health, Number, Out
from faultlens.api.schemas.bodies import DOWNLOAD, EVENT_IN, INGEST_BODY, PACK_BODY, RULE_PACK
from faultlens.api.schemas.errors import STATUS_TEXT, ErrorBody, ErrorDetail, error_responses
from faultlens.api.schemas.events import (
    Event,
    EventDetail,
    EventPage,
    FingerprintItem,
    FingerprintList,
    FingerprintMix,
    FingerprintRef,
    IngestResult,
    RejectedError,
    RejectedEvent,
)
from faultlens.api.schemas.jobs import (
    Activation,
    ClassKind,
    Job,
    JobList,
    JobProgress,
    Move,
    PackInfo,
    PackVersion,
    Preview,
    ReplicaRules,
    Rules,
    RuleVersions,
)
from faultlens.api.schemas.ops import OpsFigure, OpsSections, OpsSummary, OpsWindow
from faultlens.api.schemas.tasks import Retried, SyncResult, Task, TaskHint, TaskHints, TaskPage
from faultlens.api.schemas.traces import StepLinks, TraceStep, TraceView
from faultlens.api.schemas.triage import (
    Alerts,
    CodeCount,
    ErrorDistribution,
    FailurePage,
    Hint,
    KindCount,
    Overview,
    Pagination,
    Partition,
    SourcePartition,
    Summary,
    TrendBucket,
    TrendPoint,
    Trends,
    WindowInfo,
)

__all__ = [
    "DOWNLOAD",
    "EVENT_IN",
    "INGEST_BODY",
    "PACK_BODY",
    "RFC3339",
    "RULE_PACK",
    "STATUS_TEXT",
    "WINDOW_LABELS",
    "Activation",
    "Alerts",
    "ClassKind",
    "CodeCount",
    "ErrorBody",
    "ErrorDetail",
    "ErrorDistribution",
    "Event",
    "EventDetail",
    "EventPage",
    "FailurePage",
    "FingerprintItem",
    "FingerprintList",
    "FingerprintMix",
    "FingerprintRef",
    "Health",
    "Hint",
    "IngestResult",
    "Job",
    "JobList",
    "JobProgress",
    "KindCount",
    "Move",
    "Number",
    "OpsFigure",
    "OpsSections",
    "OpsSummary",
    "OpsWindow",
    "Out",
    "Overview",
    "PackInfo",
    "PackVersion",
    "Pagination",
    "Partition",
    "Preview",
    "RejectedError",
    "RejectedEvent",
    "ReplicaRules",
    "Retried",
    "RuleVersions",
    "Rules",
    "SourcePartition",
    "StepLinks",
    "Summary",
    "SyncResult",
    "Task",
    "TaskHint",
    "TaskHints",
    "TaskPage",
    "TraceStep",
    "TraceView",
    "TrendBucket",
    "TrendPoint",
    "Trends",
    "WindowInfo",
    "error_responses",
]
