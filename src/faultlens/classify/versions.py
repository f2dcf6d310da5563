"""Shipped rule pack versions: each dated id, the package file that holds it and the digest pinning its content."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from faultlens.classify.rules import RulePack, load_pack
from faultlens.errors import RulePackError

__all__ = [
    "MANIFEST_SUFFIX",
    "ShippedVersion",
    "canonical_json",
    "find_shipped_pack",
    "list_shipped_versions",
    "load_shipped_pack",
    "manifest_text",
    "pack_digest",
    "packs_dir",
]

# One manifest per shipped version, next to the packs: `<id>.manifest.yaml` (the package data
# already ships packs/*.yaml). A manifest is written once; only its `file` may change, when a
# newer version takes that file over and the old content moves to a file of its own.
MANIFEST_SUFFIX = ".manifest.yaml"


@dataclass(frozen=True, slots=True)
class ShippedVersion:
    """A shipped pack version: its id, the pack file (relative to the packs directory) and its digest."""

    id: str
    file: str
    sha256: str
    manifest: str


def canonical_json(pack: RulePack) -> str:
    """The parsed pack as sorted, compact JSON: YAML layout, comments and spelled-out defaults do not show."""
    data = pack.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def pack_digest(pack: RulePack) -> str:
    """sha256 (hex) of the pack's canonical JSON: equal digests, equal rules, examples and metadata."""
    return hashlib.sha256(canonical_json(pack).encode("utf-8")).hexdigest()


@contextlib.contextmanager
def packs_dir(root: Path | None = None) -> Iterator[Path]:
    """The directory holding the shipped packs and manifests (`root` instead, when given)."""
    if root is not None:
        yield Path(root)
        return
    with importlib.resources.as_file(importlib.resources.files("faultlens.classify").joinpath("packs")) as path:
        yield Path(path)


def _read_manifest(path: Path) -> ShippedVersion:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RulePackError(f"cannot read pack manifest {path.name}: {exc}", details={"path": str(path)}) from None
    fields = ("id", "file", "sha256")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in fields):
        raise RulePackError(
            f"pack manifest {path.name} must be a mapping with string id, file and sha256",
            details={"path": str(path)},
        )
    return ShippedVersion(id=data["id"], file=data["file"], sha256=data["sha256"], manifest=path.name)


def list_shipped_versions(root: Path | None = None) -> list[ShippedVersion]:
    """Every shipped version's manifest, ordered by id."""
    with packs_dir(root) as directory:
        manifests = sorted(directory.glob(f"*{MANIFEST_SUFFIX}"))
        return sorted((_read_manifest(p) for p in manifests), key=lambda v: v.id)


def load_shipped_pack(version: ShippedVersion, root: Path | None = None) -> RulePack:
    """The pack a manifest names, parsed from its file (not checked against the digest: tests do that)."""
    with packs_dir(root) as directory:
        return load_pack(directory / version.file)


def find_shipped_pack(pack_id: str, root: Path | None = None) -> RulePack | None:
    """The shipped pack with this id, or None when no manifest names it."""
    version = next((v for v in list_shipped_versions(root) if v.id == pack_id), None)
    return None if version is None else load_shipped_pack(version, root)


def manifest_text(pack: RulePack, file: str) -> str:
    """The manifest that pins `pack`, held in `file`, to its content."""
    return (
        f"# Shipped rule pack {pack.id}: its content is pinned by sha256 of its canonical JSON.\n"
        "# Never edit this file, except `file` when a newer version takes that file over\n"
        '# (docs/rules.md, "Shipped pack versions and decision snapshots").\n'
        f"id: {json.dumps(pack.id)}\n"
        f"file: {json.dumps(file)}\n"
        f"sha256: {pack_digest(pack)}\n"
    )
