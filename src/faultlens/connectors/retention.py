"""Retention of failed tasks: archive to fsync'ed JSON Lines (one file per fail day), then delete from Redis."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from faultlens.classify.redact import redact
from faultlens.connectors import service
from faultlens.connectors.native import NativeAdapter
from faultlens.errors import FaultlensError, RedisUnavailable
from faultlens.services import Services
from faultlens.timeutil import ms_to_rfc3339, now_ms

log = logging.getLogger("faultlens.connectors.retention")

DAY_MS = 86_400_000


@dataclass
class ArchiveResult:
    archived: int = 0
    deleted: int = 0
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def archive_path(directory: Path, day: str) -> Path:
    return directory / f"failed-tasks-{day}.jsonl"


def archive_record(view: service.TaskView, archived_at: int) -> dict[str, Any]:
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


def archive_failed_tasks(
    services: Services,
    *,
    older_than_days: float | None = None,
    views: list[service.TaskView] | None = None,
    now: int | None = None,
) -> ArchiveResult:
    """Archive then delete failed tasks whose fail time is older than the retention.

    Nothing is deleted unless its archive line was written and fsync'ed first; a task without a
    fail time is never deleted. A crash between the two steps archives it again next run, so an
    archive may hold a task twice, never zero times.
    """
    days = services.settings.task_retention_days if older_than_days is None else older_than_days
    now = now_ms() if now is None else now
    cutoff = now - int(days * DAY_MS)
    if views is None:
        views = service.list_failed_tasks(services)
    old = [v for v in views if v.task.fail_ms is not None and v.task.fail_ms < cutoff]
    result = ArchiveResult()
    directory = services.settings.task_archive_dir
    by_day: dict[str, list[service.TaskView]] = defaultdict(list)
    for view in old:
        assert view.task.fail_ms is not None
        day = datetime.fromtimestamp(view.task.fail_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
        by_day[day].append(view)
    adapters = {a.kind: a for a in service.adapters_of(services)}
    for day, day_views in sorted(by_day.items()):
        path = archive_path(directory, day)
        write_archive(path, [archive_record(v, now) for v in day_views])
        result.archived += len(day_views)
        result.files.append(str(path))
        for view in day_views:
            try:
                with service.redis_errors(services, f"deleting archived task {view.task.key}"):
                    if adapters[view.task.kind].delete(view.task):
                        result.deleted += 1
            except RedisUnavailable:
                raise
            except FaultlensError as exc:
                result.errors.append(f"{view.task.key}: {exc.message}")
    native = adapters.get("native")
    if isinstance(native, NativeAdapter):
        with service.redis_errors(services, "trimming the native retry log"):
            native.trim_retries(cutoff)
    return result
