"""Decision snapshots: every corpus message's decision under one shipped pack version, as sorted JSON lines.

Check every shipped version against its snapshot, or regenerate them, from the repository root:

    python -m faultlens.classify.snapshot            # exit 1 and print the changed lines on a difference
    python -m faultlens.classify.snapshot --write    # rewrite the snapshots (and pin a new default version)
    python -m faultlens.classify.snapshot --flips default@2026-12-07 default@2026-12-08   # what a version flips
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import DEFAULT_PACK_RESOURCE, RulePack, default_pack
from faultlens.classify.versions import (
    MANIFEST_SUFFIX,
    ShippedVersion,
    list_shipped_versions,
    load_shipped_pack,
    manifest_text,
    pack_digest,
    packs_dir,
)

__all__ = [
    "DECISION_FIELDS",
    "EVENT_FIELDS",
    "check_versions",
    "decision_lines",
    "diff_lines",
    "flip_summary",
    "main",
    "read_corpus",
    "snapshot_path",
    "write_versions",
]

# What a corpus row hands the classifier, and what the snapshot records of its decision.
EVENT_FIELDS = ("status", "http_status", "error_code", "message")
DECISION_FIELDS = ("failure_kind", "failure_class", "is_actionable", "category", "retryable", "rule_name")
DEFAULT_CORPUS = Path("tests/unit/corpus")
DEFAULT_SNAPSHOTS = Path("tests/unit/snapshots")
REGENERATE = "python -m faultlens.classify.snapshot --write"


def read_corpus(corpus_dir: Path) -> list[dict[str, Any]]:
    """Every row of the corpus' *.jsonl files, each with `corpus`: the file it came from."""
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(corpus_dir).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["corpus"] = path.name
                rows.append(row)
    return rows


def decision_lines(pack: RulePack, rows: Iterable[dict[str, Any]]) -> list[str]:
    """One sorted JSON line per distinct corpus row: the event as given, then the pack's decision.

    The pack decides alone (no tenant pack above it), so a line changes only when this version does.
    """
    clf = Classifier([pack])
    lines: set[str] = set()
    for row in rows:
        got = clf.classify(
            status=row["status"],
            http_status=row.get("http_status"),
            error_code=row.get("error_code"),
            error_message=row.get("message"),
        )
        out: dict[str, Any] = {"corpus": row["corpus"]}
        out.update((k, row[k]) for k in EVENT_FIELDS if row.get(k) is not None)
        decision = {
            "failure_kind": got.failure_kind,
            "failure_class": got.failure_class.value,
            "is_actionable": got.is_actionable,
            "category": str(got.category),
            "retryable": got.retryable,
            "rule_name": got.rule_name,
        }
        out.update((k, decision[k]) for k in DECISION_FIELDS)
        lines.add(json.dumps(out, ensure_ascii=False))
    return sorted(lines)


def diff_lines(expected: Sequence[str], actual: Sequence[str], *, name: str) -> list[str]:
    """The changed lines only (a unified diff without context): `-` the snapshot's, `+` today's."""
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            list(expected), list(actual), fromfile=f"{name} (snapshot)", tofile=f"{name} (now)", n=0, lineterm=""
        )
    ]


def _by_event(lines: Iterable[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in lines:
        row = json.loads(line)
        out[(row["corpus"], *(row.get(k) for k in EVENT_FIELDS))] = row
    return out


def flip_summary(old: Iterable[str], new: Iterable[str], *, examples: int = 1) -> list[str]:
    """Markdown: the corpus events two snapshots decide differently, grouped by the move between decisions.

    Only events both snapshots hold are compared (rows added to the corpus since are counted apart); a move is
    (failure_class, failure_kind) before -> after, and a change of category, flags or rule alone that keeps
    them shows as a move onto itself, as in a rules preview.
    """
    before, after = _by_event(old), _by_event(new)
    common = before.keys() & after.keys()
    moves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key in sorted(common, key=str):
        a, b = before[key], after[key]
        if any(a[k] != b[k] for k in DECISION_FIELDS):
            frm = f"{a['failure_class']}/{a['failure_kind']}"
            to = f"{b['failure_class']}/{b['failure_kind']}"
            moves.setdefault((frm, to), []).append(b)
    changed = sum(len(v) for v in moves.values())
    class_flips = sum(len(v) for (frm, to), v in moves.items() if frm.split("/")[0] != to.split("/")[0])
    lines = [
        f"{len(common)} corpus events in both snapshots: {changed} decided differently, {class_flips} of them in "
        f"failure_class; {len(after.keys() - before.keys())} events are new to the corpus.",
        "",
        "| from (class/kind) | to (class/kind) | events | e.g. |",
        "|---|---|---:|---|",
    ]
    for (frm, to), rows in sorted(moves.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        sample = "; ".join(repr(str(r.get("message", "")).replace("|", "/")[:70]) for r in rows[:examples])
        lines.append(f"| {frm} | {to} | {len(rows)} | {sample} |")
    return lines


def snapshot_path(snapshots_dir: Path, pack_id: str) -> Path:
    return Path(snapshots_dir) / f"{pack_id}.jsonl"


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _pin_problems(versions: Sequence[ShippedVersion], packs_root: Path | None) -> list[str]:
    """Versions whose file no longer holds the content their manifest pins."""
    problems: list[str] = []
    for version in versions:
        pack = load_shipped_pack(version, packs_root)
        if pack.id != version.id:
            problems.append(
                f"{version.manifest}: {version.file} now holds {pack.id}; keep {version.id} in a file of its own "
                f"and point this manifest's `file` at it"
            )
        elif pack_digest(pack) != version.sha256:
            problems.append(
                f"{version.manifest}: {version.file} changed but kept the id {version.id}; a shipped version is "
                f"immutable: give the changed pack a new dated id"
            )
    return problems


def check_versions(
    corpus_dir: Path, snapshots_dir: Path, packs_root: Path | None = None
) -> tuple[list[str], list[str]]:
    """(pin problems, changed decision lines) over every shipped version; both empty when all hold."""
    versions = list_shipped_versions(packs_root)
    problems = _pin_problems(versions, packs_root)
    rows = read_corpus(corpus_dir)
    changed: list[str] = []
    for version in versions:
        path = snapshot_path(snapshots_dir, version.id)
        if not path.exists():
            problems.append(f"{version.id}: no decision snapshot at {path}")
            continue
        now = decision_lines(load_shipped_pack(version, packs_root), rows)
        changed.extend(diff_lines(_read_lines(path), now, name=path.name))
    return problems, changed


def write_versions(
    corpus_dir: Path, snapshots_dir: Path, packs_root: Path | None = None, *, current: RulePack | None = None
) -> list[str]:
    """Pin `current` (the shipped default) when no manifest names it yet, then rewrite every snapshot.

    Returns what was written; raises SystemExit when a pinned version's content changed, since
    rewriting its snapshot would hide the change.
    """
    current = default_pack() if current is None else current
    written: list[str] = []
    versions = list_shipped_versions(packs_root)
    if not any(v.id == current.id for v in versions):
        with packs_dir(packs_root) as directory:
            manifest = directory / f"{current.id}{MANIFEST_SUFFIX}"
            manifest.write_text(manifest_text(current, Path(DEFAULT_PACK_RESOURCE).name), encoding="utf-8")
        written.append(str(manifest))
        versions = list_shipped_versions(packs_root)
    problems = _pin_problems(versions, packs_root)
    if problems:
        raise SystemExit("\n".join(problems))
    rows = read_corpus(corpus_dir)
    Path(snapshots_dir).mkdir(parents=True, exist_ok=True)
    for version in versions:
        path = snapshot_path(snapshots_dir, version.id)
        lines = decision_lines(load_shipped_pack(version, packs_root), rows)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        written.append(str(path))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m faultlens.classify.snapshot",
        description="Check every shipped pack version against its pin and decision snapshot, or rewrite them.",
    )
    ap.add_argument("--write", action="store_true", help="rewrite the snapshots instead of checking them")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"corpus directory (default {DEFAULT_CORPUS})")
    ap.add_argument(
        "--snapshots", type=Path, default=DEFAULT_SNAPSHOTS, help=f"snapshot directory (default {DEFAULT_SNAPSHOTS})"
    )
    ap.add_argument(
        "--flips",
        nargs=2,
        metavar=("OLD_ID", "NEW_ID"),
        help="summarise, as markdown, the corpus decisions NEW_ID's snapshot changes from OLD_ID's",
    )
    args = ap.parse_args(argv)
    if args.flips:
        old_path, new_path = (snapshot_path(args.snapshots, pack_id) for pack_id in args.flips)
        for path in (old_path, new_path):
            if not path.exists():
                print(f"no decision snapshot at {path}", file=sys.stderr)
                return 2
        print("\n".join(flip_summary(_read_lines(old_path), _read_lines(new_path))))
        return 0
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}: run from the repository root or pass --corpus", file=sys.stderr)
        return 2
    if args.write:
        for written in write_versions(args.corpus, args.snapshots):
            print(f"wrote {written}")
        return 0
    problems, changed = check_versions(args.corpus, args.snapshots)
    for line in problems + changed:
        print(line)
    if problems or changed:
        print(f"\nif the change is intended: {REGENERATE}, and review the diff", file=sys.stderr)
        return 1
    print("every shipped pack version matches its pin and its decision snapshot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
