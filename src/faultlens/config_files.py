"""Operator config files (SLO objectives, retry policies, rule packs): YAML or JSON by suffix, one cache."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from faultlens.errors import FaultlensError

T = TypeVar("T")

JSON = "json"
# A file modified this recently is read again on every call: a rewrite of the same size within one tick of
# the file system's clock keeps mtime and size, so the stamp alone could hand out the old content.
SETTLED_NS = 2_000_000_000
MAX_CACHED = 64  # files, not bytes: a process reads a handful of config files


@dataclass(frozen=True, eq=False)  # one instance per kind of file: the cache keys on its identity
class FileKind(Generic[T]):
    """One kind of config file: what to call it, the caller's error type, how it is validated, its suffixes.

    `parse(document, origin)` validates the decoded document (origin: the path, for messages).

    `suffixes` maps a lower-case suffix to the name of its format as the caller spells it in messages ("YAML",
    "yml", ...); the format is JSON when that name is "json" in any case, YAML otherwise. `other`: the format
    name for any other suffix, or None to refuse other suffixes.
    """

    what: str
    error: Callable[..., FaultlensError]
    parse: Callable[[Any, str], T]
    suffixes: Mapping[str, str] = field(default_factory=lambda: {".json": "JSON"})
    other: str | None = "YAML"

    def format_of(self, path: Path) -> str:
        suffix = path.suffix.lower()
        name = self.suffixes.get(suffix, self.other)
        if name is None:
            allowed = ", ".join(self.suffixes)
            allowed = " or ".join(allowed.rsplit(", ", 1))
            raise self.error(f"{self.what} {path} must end in {allowed}", details={"path": str(path), "suffix": suffix})
        return name

    def decode(self, text: str, name: str, origin: str) -> Any:
        """The document in `text`, a `name` file ("YAML", "json" ...); the caller's error when it does not parse."""
        try:
            if name.lower() == JSON:
                return json.loads(text)
            # libyaml's safe loader when present: a large rule pack parses several times faster.
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (ValueError, yaml.YAMLError) as exc:
            raise self.error(f"{self.what} {origin} is not valid {name}: {exc}", details={"path": origin}) from None


_cache: dict[tuple[FileKind[Any], Path], tuple[tuple[int, int], Any]] = {}
_lock = threading.Lock()


def load(path: Path, kind: FileKind[T]) -> T:
    """`kind.parse` of the document in `path`, kept until the file's mtime or size changes.

    Every problem (unreadable, wrong suffix, bad syntax, and whatever `parse` refuses) raises `kind.error`,
    with the path in the message and in details["path"]. Failures are not cached.
    """
    path = Path(path)
    name = kind.format_of(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise kind.error(f"cannot read {kind.what} {path}: {exc.strerror}", details={"path": str(path)}) from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    key = (kind, path)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]  # type: ignore[no-any-return]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise kind.error(f"cannot read {kind.what} {path}: {reason}", details={"path": str(path)}) from None
    value = kind.parse(kind.decode(text, name, str(path)), str(path))
    if time.time_ns() - stat.st_mtime_ns > SETTLED_NS:
        with _lock:
            _cache.pop(key, None)
            while len(_cache) >= MAX_CACHED:
                del _cache[next(iter(_cache))]  # the longest cached: files seldom come and go
            _cache[key] = (stamp, value)
    return value


def clear_cache() -> None:
    """Forget every cached file: the next load of each reads and validates it again."""
    with _lock:
        _cache.clear()
