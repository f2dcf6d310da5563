"""The adapter interface every Redis task source implements: FailedTask and Adapter (errors live in errors.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

# The adapter kinds; a task is identified by (kind, task_id) because ids are only unique per system.
NATIVE = "native"
RQ = "rq"
CELERY = "celery"
KINDS = (NATIVE, RQ, CELERY)

_CLIENT_KEYS = ("client_id", "clientId")
_CODEBASE_KEYS = ("codebase_path", "codebasePath")
_FILES_KEYS = ("processed_files", "processedFiles")


@dataclass(frozen=True)
class FailedTask:
    """One failed task as an adapter reads it: the envelope's fields plus what triage needs.

    Times are epoch milliseconds (None when the source does not keep them); `kind` is the adapter
    (native, rq, celery) and `source` the faultlens event source (e.g. "rq:default").
    """

    kind: str
    task_id: str
    source: str
    task_type: str = ""
    client_id: str = ""
    codebase_path: str = ""
    start_ms: int | None = None
    fail_ms: int | None = None
    error_code: str = ""
    error_message: str = ""
    exception_type: str = ""
    traceback: str = ""
    retry_count: int = 0
    max_retries: int | None = None
    # The source's own retries are used up, though it keeps no limit to show (RQ's Retry without the hook).
    retries_exhausted: bool = False
    processed_files: int = 0
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str = ""

    @property
    def key(self) -> str:
        """The id the API and CLI accept: "<kind>:<task_id>"."""
        return f"{self.kind}:{self.task_id}"

    @property
    def error_text(self) -> str:
        """What failed, as events carry it: the exception's short type, then its message."""
        kind = short_type(self.exception_type)
        message = self.error_message
        if not kind or message.startswith(kind):
            return message or kind
        return f"{kind}: {message}" if message else kind


@dataclass(frozen=True)
class RetryRecord:
    """A retry an adapter observed or performed (a faultlens `retry` event)."""

    kind: str
    task_id: str
    source: str
    task_type: str
    attempt: int
    at_ms: int
    error_message: str = ""
    marker: str = ""  # distinguishes two retries with the same attempt number (a silent loop)


class Adapter(Protocol):
    """A Redis task source. Every method raises redis errors as they come; the service maps them."""

    kind: str

    def list_failed(self) -> list[FailedTask]:
        """Every failed task the source holds, in no particular order."""
        ...

    def find_failed(self, task_id: str) -> FailedTask | None:
        """The failed task with this id, or None when the source holds no failed task with it."""
        ...

    def retry(self, task: FailedTask, *, delay_s: float = 0.0) -> None:
        """Requeue a failed task (as it is now) for another attempt; the attempt counter grows by one."""
        ...

    def delete(self, task: FailedTask) -> bool:
        """Remove a failed task from the source; False when it was already gone."""
        ...

    def list_retries(self) -> list[RetryRecord]:
        """Retries the source records on its own (may be empty)."""
        ...


# --- helpers shared by the adapters -------------------------------------------------------------

_EXC_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::[ \t]?(.*))?", re.DOTALL)
_TYPE_SUFFIXES = ("Error", "Exception", "Interrupt", "Exit", "Timeout")


def last_exception(traceback_text: str) -> tuple[str, str]:
    """(qualified exception type, message) of what escaped a Python traceback; ("", text) when none is named.

    After the last ``  File`` frame and its source line comes e.g.
    ``rq.timeouts.JobTimeoutException: Task exceeded ...`` (the message may span lines).
    """
    lines = traceback_text.strip().splitlines()
    last_frame = -1
    for i, line in enumerate(lines):
        if line.startswith(("  File ", '\tFile "')):
            last_frame = i
    tail = lines[last_frame + 1 :]
    while last_frame >= 0 and tail and tail[0].startswith((" ", "\t")):
        tail = tail[1:]  # the frame's source line and its ^^^^ markers
    text = "\n".join(tail).strip()
    if not text:
        return "", ""
    m = _EXC_LINE.fullmatch(text)
    if m and (m.group(2) is not None or m.group(1).endswith(_TYPE_SUFFIXES)):
        return m.group(1), (m.group(2) or "").strip()
    return "", text


def short_type(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def named_value(args: Sequence[Any], kwargs: Mapping[str, Any], names: Sequence[str]) -> Any:
    """A value passed under one of `names`: a keyword argument, or a key of a dict positional argument."""
    for name in names:
        if name in kwargs and kwargs[name] not in (None, ""):
            return kwargs[name]
    for arg in args:
        if isinstance(arg, Mapping):
            for name in names:
                if name in arg and arg[name] not in (None, ""):
                    return arg[name]
    return None


def client_and_codebase(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, str]:
    client = named_value(args, kwargs, _CLIENT_KEYS)
    codebase = named_value(args, kwargs, _CODEBASE_KEYS)
    return ("" if client is None else str(client)), ("" if codebase is None else str(codebase))


def processed_files_of(*sources: Mapping[str, Any]) -> int:
    for src in sources:
        for name in _FILES_KEYS:
            if name in src:
                return as_int(src[name])
    return 0


def as_int(value: Any, default: int = 0) -> int:
    """Lenient integer: task data written by other programs may hold "3", 3.0, b"3" or junk."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def datetime_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # RQ and Celery store UTC, sometimes without an offset
    return int(value.timestamp() * 1000)


def parse_time_ms(value: Any) -> int | None:
    """Epoch milliseconds from epoch ms / epoch seconds / RFC 3339 / ISO 8601; None when unusable."""
    text = as_text(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        try:
            return datetime_ms(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
        except ValueError:
            return None
    if number != number or number <= 0:  # NaN or not a time
        return None
    # Below 1e11 the number can only be seconds (1e11 ms is 1973; 1e11 s is year 5138).
    return int(number * 1000) if number < 1e11 else int(number)
