"""RQ job functions for the task tests: each fails the way a real task does (timeout, permission, disk, data, crash)."""

from __future__ import annotations

import errno
import os
import signal
import time
from typing import Any

from rq import get_current_job


def _progress(files: int) -> None:
    job = get_current_job()
    if job is not None:
        job.meta["processed_files"] = files
        job.save_meta()


def embed_codebase(client_id: str, codebase_path: str, seconds: float = 30.0) -> None:
    """Hangs past its job_timeout: the worker's death penalty raises JobTimeoutException."""
    _progress(75)
    time.sleep(seconds)


def index_codebase(*, client_id: str, codebase_path: str) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", codebase_path)


def clean_codebase(options: dict[str, Any]) -> None:
    _progress(50)
    raise OSError(errno.ENOSPC, "No space left on device")


def parse_manifest(client_id: str, codebasePath: str) -> None:
    raise ValueError("invalid manifest: expected a JSON object, got a list")


def crash(client_id: str) -> None:
    """The work-horse dies without a Python exception (like the OOM killer)."""
    os.kill(os.getpid(), signal.SIGKILL)


def succeed() -> str:
    return "ok"
