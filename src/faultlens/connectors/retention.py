"""Retention of failed tasks, opt-in per store: archive (the database's task_archive table, or fsync'ed JSON Lines
files, one per fail day), then delete."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from faultlens.classify.redact import redact
from faultlens.connectors import service
from faultlens.connectors.base import CELERY, KINDS, NATIVE, RQ
from faultlens.connectors.deadline import redis_deadline
from faultlens.connectors.metrics import task_metrics
from faultlens.connectors.native import NativeAdapter
from faultlens.connectors.redis_errors import redis_errors
from faultlens.connectors.task_view import TaskView
from faultlens.errors import FaultlensError, InvalidRequest, RedisUnavailable, RetentionNotEnabled
from faultlens.settings import Settings
from faultlens.store.task_archive import ArchivedTask, add_archived
from faultlens.timeutil import ms_to_rfc3339, now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.connectors.retention")

DAY_MS = 86_400_000
DATABASE = "database"
DIRECTORY = "directory"


@dataclass
class ArchiveResult:
    stores: list[str] = field(default_factory=list)
    archived: int = 0
    deleted: int = 0
    retry_log_trimmed: int = 0
    archived_to: str = DIRECTORY  # "database" (table task_archive) or "directory" (the files)
    days: list[str] = field(default_factory=list)  # fail days archived (YYYY-MM-DD)
    files: list[str] = field(default_factory=list)  # directory only
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def archive_path(directory: Path, day: str) -> Path:
    return directory / f"failed-tasks-{day}.jsonl"


def archive_record(view: TaskView, archived_at: int) -> dict[str, Any]:
    """The archived line: the native API's task object plus the traceback and the archive time."""
    record = view.as_dict()
    record["traceback"] = redact(view.task.traceback)
    record["archived_at"] = ms_to_rfc3339(archived_at)
    return record


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_archive(path: Path, records: list[dict[str, Any]]) -> None:
    """Append the records and fsync the file (and the directory for a new file) before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    payload = b"".join(orjson.dumps(r) + b"\n" for r in records)
    with path.open("ab") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        _fsync_dir(path.parent)


def archive_target(services: Services) -> str:
    """Where archives go: Settings.task_archive_to, "auto" being the database on PostgreSQL (replicas share it, none
    keeps archives on its own disk) and the directory on SQLite (one process, its files next to the database)."""
    chosen = services.settings.task_archive_to
    if chosen == "auto":
        return DATABASE if services.engine.dialect.name == "postgresql" else DIRECTORY
    return chosen


def _archive_day(services: Services, day: str, views: list[TaskView], now: int, result: ArchiveResult) -> None:
    """Archive one fail day's tasks durably (committed, or written and fsync'ed) before any is deleted."""
    records = [archive_record(v, now) for v in views]
    if result.archived_to == DATABASE:
        tasks = [ArchivedTask(v.task.kind, v.task.key, day, r, now) for v, r in zip(views, records, strict=True)]
        with services.engine.begin() as conn:
            add_archived(conn, tenant=services.settings.default_tenant, tasks=tasks)
    else:
        path = archive_path(services.settings.task_archive_dir, day)
        write_archive(path, records)
        result.files.append(str(path))
    result.days.append(day)


def enabled_stores(settings: Settings) -> tuple[str, ...]:
    """The stores whose operator turned retention on (FAULTLENS_TASK_RETENTION_<STORE>); none by default."""
    flags = {
        NATIVE: settings.task_retention_native,
        RQ: settings.task_retention_rq,
        CELERY: settings.task_retention_celery,
    }
    return tuple(kind for kind in KINDS if flags[kind])


def _chosen(settings: Settings, stores: Sequence[str] | None) -> tuple[str, ...]:
    if stores is None:
        chosen = enabled_stores(settings)
    else:
        unknown = sorted(set(stores) - set(KINDS))
        if unknown:
            message = f"unknown task store(s) {unknown}; use {', '.join(KINDS)}"
            raise InvalidRequest(message, details={"stores": unknown})
        chosen = tuple(k for k in KINDS if k in stores)
    if not chosen:
        raise RetentionNotEnabled(
            "retention deletes failed tasks from stores faultlens does not own, so it is off until turned on: "
            "set FAULTLENS_TASK_RETENTION_NATIVE / _RQ / _CELERY=true, or name the stores (CLI: --store)",
            details={"stores": list(KINDS)},
        )
    return chosen


def archive_failed_tasks(
    services: Services,
    *,
    older_than_days: float | None = None,
    stores: Sequence[str] | None = None,
    views: list[TaskView] | None = None,
    now: int | None = None,
) -> ArchiveResult:
    """Archive then delete failed tasks of `stores` (default: those enabled in the settings) older than retention.

    RetentionNotEnabled when no store is chosen: nothing of another system is deleted unless its operator
    said so. Nothing is deleted unless its archive row was committed (or its line written and fsync'ed) first;
    a task without a fail time is never deleted. A crash between the two steps archives it again next run, so an
    archive may hold a task twice, never zero times. Every archive and delete is logged and counted per store.
    """
    settings = services.settings
    chosen = _chosen(settings, stores)
    days = settings.task_retention_days if older_than_days is None else older_than_days
    now = now_ms() if now is None else now
    cutoff = now - int(days * DAY_MS)
    if views is None:
        with redis_deadline(settings.redis_timeout_s):
            views = service.list_failed_tasks(services, kinds=chosen)
    old = [v for v in views if v.task.kind in chosen and v.task.fail_ms is not None and v.task.fail_ms < cutoff]
    result = ArchiveResult(stores=list(chosen), archived_to=archive_target(services))
    counters = task_metrics(services).retention
    by_day: dict[str, list[TaskView]] = defaultdict(list)
    for view in old:
        assert view.task.fail_ms is not None
        day = datetime.fromtimestamp(view.task.fail_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
        by_day[day].append(view)
    adapters = {a.kind: a for a in service.adapters_of(services)}
    archived: dict[str, int] = defaultdict(int)
    deleted: dict[str, int] = defaultdict(int)
    try:
        for day, day_views in sorted(by_day.items()):
            _archive_day(services, day, day_views, now, result)
            result.archived += len(day_views)
            for view in day_views:
                archived[view.task.kind] += 1
                counters.labels(view.task.kind, "archived").inc()
            for view in day_views:
                try:
                    with (
                        redis_deadline(settings.redis_timeout_s),
                        redis_errors(services, f"deleting archived task {view.task.key}"),
                    ):
                        gone = adapters[view.task.kind].delete(view.task)
                except RedisUnavailable:
                    raise
                except FaultlensError as exc:
                    result.errors.append(f"{view.task.key}: {exc.message}")
                    continue
                if gone:
                    result.deleted += 1
                    deleted[view.task.kind] += 1
                    counters.labels(view.task.kind, "deleted").inc()
        native = adapters.get(NATIVE)
        if NATIVE in chosen and isinstance(native, NativeAdapter):
            with (
                redis_deadline(settings.redis_timeout_s),
                redis_errors(services, "trimming the native retry log"),
            ):
                result.retry_log_trimmed = native.trim_retries(cutoff)
            counters.labels(NATIVE, "retry_log_trimmed").inc(result.retry_log_trimmed)
    finally:
        for kind in chosen:
            if archived[kind] or deleted[kind]:
                log.warning(
                    "task retention (%s): archived %d and deleted %d failed task(s) that failed over %g day(s) ago",
                    kind,
                    archived[kind],
                    deleted[kind],
                    days,
                )
        if result.retry_log_trimmed:
            log.warning("task retention (native): trimmed %d retry log entries", result.retry_log_trimmed)
    return result
