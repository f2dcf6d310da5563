"""Secret redaction speed: the current faultlens.classify.redact against an earlier revision of it, in one run.

Usage: .venv/bin/python bench/redact.py [--baseline-rev f243000] [--messages 100000] [--repeats 5]
The baseline is `git show REV:src/faultlens/classify/redact.py`, written to a temporary module and imported.
Input: --messages distinct messages made from the "message" field of tests/unit/corpus/*.jsonl, every run of
digits replaced by random digits of the same length per copy (a copy that still repeats gets a request id),
and a variant of that set where 2% (--secret-share) are the secret-holding lines of
tests/security/test_secrets_corpus.py (POSITIVE), each copy made distinct by a request id. Compared per set,
baseline vs current: the uncached internal function (`_redact`) and the public `redact()` with its cache
cleared before each pass (100k distinct messages: every call is a miss). Baseline and current passes alternate
(their order flips every round) and the best of --repeats is kept; the time is the process CPU time, so other
load on the machine counts less. The ratio is current / baseline: above 1.00 the current one is slower.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from faultlens.classify import redact as current

ROOT = Path(__file__).resolve().parent.parent
MODULE_PATH = "src/faultlens/classify/redact.py"
_DIGITS = re.compile(r"\d+")


def load_revision(rev: str, workdir: Path) -> ModuleType:
    """The redaction module as it was at git revision `rev`, imported from a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODULE_PATH}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = workdir / f"redact_at_{re.sub(r'[^A-Za-z0-9]', '_', rev)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus_messages() -> list[str]:
    out = []
    for path in sorted((ROOT / "tests/unit/corpus").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip() and (message := json.loads(line).get("message")):
                out.append(message)
    return out


def secret_lines() -> list[str]:
    """The secret-holding lines of the security test corpus (its POSITIVE list), imported by path."""
    path = ROOT / "tests/security/test_secrets_corpus.py"
    spec = importlib.util.spec_from_file_location("faultlens_bench_secrets_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return [leak.text for leak in module.POSITIVE]


def distinct_copies(base: Sequence[str], count: int, rng: random.Random, *, vary: bool = True) -> list[str]:
    """`count` distinct messages cycling through `base`, numbers varied per copy when `vary`."""
    seen: set[str] = set()
    out = []
    for i in range(count):
        message = base[i % len(base)]
        if vary:
            message = _DIGITS.sub(lambda m: f"{rng.randrange(10 ** len(m[0])):0{len(m[0])}d}", message)
        if message in seen:
            message = f"{message} request_id={rng.getrandbits(48):012x}"
        seen.add(message)
        out.append(message)
    return out


def with_secrets(clean: list[str], secrets: Sequence[str], share: float, rng: random.Random) -> list[str]:
    """`clean` with every 1/share-th message swapped for a secret line (made distinct by a request id; its digits
    stay, since some token shapes have fixed digits)."""
    step = max(1, round(1 / share)) if share > 0 else len(clean) + 1
    picks = distinct_copies(secrets, len(range(0, len(clean), step)), rng, vary=False)
    out = list(clean)
    for n, i in enumerate(range(0, len(clean), step)):
        out[i] = picks[n]
    return out


def cpu_seconds(call: Callable[[str], str], messages: list[str], before: Callable[[], None] | None) -> float:
    if before is not None:
        before()
    started = time.process_time()
    for message in messages:
        call(message)
    return time.process_time() - started


def best_pair(
    old: Callable[[str], str],
    new: Callable[[str], str],
    messages: list[str],
    repeats: int,
    before: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Best-of-`repeats` us/message for `old` and `new`, their passes interleaved."""
    best = {"old": float("inf"), "new": float("inf")}
    for round_ in range(repeats):
        order = (("old", old), ("new", new)) if round_ % 2 == 0 else (("new", new), ("old", old))
        for name, call in order:
            best[name] = min(best[name], cpu_seconds(call, messages, before))
    return best["old"] * 1e6 / len(messages), best["new"] * 1e6 / len(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-rev", default="f243000", help="git revision of the baseline redact.py")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--secret-share", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=5, help="passes per side; the best is kept")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="faultlens-bench-redact-") as tmp:
        old = load_revision(args.baseline_rev, Path(tmp))
    rng = random.Random(args.seed)
    base, secrets = corpus_messages(), secret_lines()
    clean = distinct_copies(base, args.messages, rng)
    mixed = with_secrets(clean, secrets, args.secret_share, rng)
    planted = sum(a != b for a, b in zip(clean, mixed, strict=True))
    print(
        f"input: {len(clean):,} distinct messages from {len(base)} corpus lines, "
        f"mean {sum(map(len, clean)) / len(clean):.0f} chars; secret set: {planted:,} of them "
        f"({planted / len(clean):.1%}) from {len(secrets)} secret lines"
    )
    print(
        f"baseline: {MODULE_PATH} at {args.baseline_rev}; current: the working tree; best of {args.repeats}, CPU time"
    )

    def clear_caches() -> None:
        old._redact_short.cache_clear()
        current._redact_short.cache_clear()

    print()
    print(f"{'set':<18} {'function':<22} {'baseline us/msg':>16} {'current us/msg':>15} {'current/baseline':>17}")
    for label, messages in (("corpus only", clean), (f"{planted / len(clean):.0%} secrets", mixed)):
        for function, pair in (
            ("_redact (uncached)", best_pair(old._redact, current._redact, messages, args.repeats)),
            ("redact(), cold cache", best_pair(old.redact, current.redact, messages, args.repeats, clear_caches)),
        ):
            print(f"{label:<18} {function:<22} {pair[0]:>16.2f} {pair[1]:>15.2f} {pair[1] / pair[0]:>16.2f}x")
    planted_lines = [m for m, c in zip(mixed, clean, strict=True) if m != c]
    print()
    for label, messages in (("corpus messages", clean), ("planted secret lines", planted_lines)):
        changed_old = sum(old._redact(m) != m for m in messages)
        changed_new = sum(current._redact(m) != m for m in messages)
        print(
            f"{label} changed by redaction: baseline {changed_old:,}/{len(messages):,}, "
            f"current {changed_new:,}/{len(messages):,}"
        )


if __name__ == "__main__":
    main()
