"""Leave-one-ecosystem-out accuracy: how the shipped rules do on an ecosystem none of its own rules were written for.

Usage: .venv/bin/python bench/classify_loeo.py [--pack FILE] [--corpus tests/unit/corpus] [--json]

Every corpus row names its `ecosystem` (java, go, chinese, proxy_lb, ...) and every rule its `origin`: the
ecosystems whose cases it was written from, or `general` for rules taken from standards and documentation
shared by many systems (HTTP status semantics, errno names, gRPC codes). For each ecosystem E, E's rows are
classified by the pack without the rules whose origin is only {E}: what is left is what the other ecosystems'
rules and the general ones know, so the score estimates how the pack does on text of a stack it was not
tuned on. Rules without an origin are never removed (they are counted in the header line).

Scores, beside the in-sample ones (the whole pack):
  class       failure_class equals expected_class
  actionable  is_actionable equals "expected_class is service_failure" (the engine's default for a rule)
  category    category equals expected_category, over the rows that give one
  abort rec.  rows expected client_abort that are decided client_abort
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import GENERAL_ORIGIN, RulePack, default_pack, load_pack
from faultlens.classify.snapshot import read_corpus

DEFAULT_CORPUS = Path("tests/unit/corpus")


@dataclass
class Score:
    """Hit counts of one set of rows under one pack."""

    n: int = 0
    klass: int = 0
    actionable: int = 0
    n_category: int = 0
    category: int = 0
    n_abort: int = 0
    abort: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        self.n += other.n
        self.klass += other.klass
        self.actionable += other.actionable
        self.n_category += other.n_category
        self.category += other.category
        self.n_abort += other.n_abort
        self.abort += other.abort

    def ratios(self) -> dict[str, float | None]:
        def r(hit: int, n: int) -> float | None:
            return hit / n if n else None

        return {
            "class": r(self.klass, self.n),
            "actionable": r(self.actionable, self.n),
            "category": r(self.category, self.n_category),
            "abort_recall": r(self.abort, self.n_abort),
        }


def score(pack: RulePack, rows: Iterable[dict[str, Any]]) -> Score:
    clf = Classifier([pack])
    out = Score()
    for row in rows:
        got = clf.classify(
            status=row["status"],
            http_status=row.get("http_status"),
            error_code=row.get("error_code"),
            error_message=row.get("message"),
        )
        want = row["expected_class"]
        out.n += 1
        ok_class = got.failure_class.value == want
        out.klass += ok_class
        out.actionable += got.is_actionable == (want == "service_failure")
        if "expected_category" in row:
            out.n_category += 1
            out.category += str(got.category) == row["expected_category"]
        if want == "client_abort":
            out.n_abort += 1
            out.abort += ok_class
        if not ok_class:
            out.misses.append(
                f"{row['corpus']}: want {want}, got {got.failure_class.value} by {got.rule_name}: "
                f"{str(row.get('message'))[:100]!r}"
            )
    return out


def without_origin(pack: RulePack, ecosystem: str) -> tuple[RulePack, int]:
    """The pack without the rules written from `ecosystem` alone, and how many were dropped."""
    kept = tuple(r for r in pack.rules if r.origin is None or set(r.origin) != {ecosystem})
    return pack.model_copy(update={"rules": kept}), len(pack.rules) - len(kept)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def report(pack: RulePack, rows: Sequence[dict[str, Any]], *, show_misses: bool = False) -> dict[str, Any]:
    ecosystems = sorted({str(r.get("ecosystem", "unknown")) for r in rows})
    total_in, total_out = Score(), Score()
    per: list[dict[str, Any]] = []
    misses: list[str] = []
    for eco in ecosystems:
        mine = [r for r in rows if str(r.get("ecosystem", "unknown")) == eco]
        inside = score(pack, mine)
        reduced, dropped = without_origin(pack, eco)
        outside = score(reduced, mine)
        total_in.add(inside)
        total_out.add(outside)
        misses.extend(f"[{eco}] {m}" for m in outside.misses)
        per.append(
            {
                "ecosystem": eco,
                "rows": inside.n,
                "rules_dropped": dropped,
                "in_sample": inside.ratios(),
                "loeo": outside.ratios(),
                "n_category": inside.n_category,
                "n_abort": inside.n_abort,
            }
        )
    untagged = sum(1 for r in pack.rules if r.origin is None)
    general = sum(1 for r in pack.rules if r.origin == (GENERAL_ORIGIN,))
    return {
        "pack": pack.id,
        "rules": len(pack.rules),
        "general_rules": general,
        "untagged_rules": untagged,
        "rows": len(rows),
        "ecosystems": per,
        "overall": {
            "in_sample": total_in.ratios(),
            "loeo": total_out.ratios(),
            "n_category": total_in.n_category,
            "n_abort": total_in.n_abort,
        },
        **({"loeo_misses": misses} if show_misses else {}),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"pack {result['pack']}: {result['rules']} rules ({result['general_rules']} general, "
        f"{result['untagged_rules']} without origin), {result['rows']} corpus rows",
        "",
        "| ecosystem | rows | rules dropped | class in / loeo | actionable in / loeo | category in / loeo (n) "
        "| abort recall in / loeo (n) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cells(entry: dict[str, Any]) -> str:
        i, o = entry["in_sample"], entry["loeo"]
        return (
            f"{_pct(i['class'])} / {_pct(o['class'])} | {_pct(i['actionable'])} / {_pct(o['actionable'])} | "
            f"{_pct(i['category'])} / {_pct(o['category'])} ({entry['n_category']}) | "
            f"{_pct(i['abort_recall'])} / {_pct(o['abort_recall'])} ({entry['n_abort']})"
        )

    for entry in result["ecosystems"]:
        lines.append(f"| {entry['ecosystem']} | {entry['rows']} | {entry['rules_dropped']} | {cells(entry)} |")
    lines.append(f"| **overall** | {result['rows']} | | {cells(result['overall'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, help="a pack file (default: the shipped default pack)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"corpus directory (default {DEFAULT_CORPUS})")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    ap.add_argument("--misses", action="store_true", help="list the rows the leave-one-out packs get wrong")
    args = ap.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}: run from the repository root or pass --corpus", file=sys.stderr)
        return 2
    pack = load_pack(args.pack) if args.pack else default_pack()
    result = report(pack, read_corpus(args.corpus), show_misses=args.misses)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(markdown(result))
        for line in result.get("loeo_misses", []):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
