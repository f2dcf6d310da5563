"""The pack linter: duplicate names, empty matches, unreachable, shadowed rules, dead patterns, tiers and origins."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import Match, RulePack
from faultlens.classify.text import Literal, char_kind
from faultlens.model import Status

__all__ = ["Problem", "check_pack"]


@dataclass(frozen=True, slots=True)
class Problem:
    """A defect check_pack found in a pack; `severity` is "error" or "warning"."""

    rule: str | None
    code: str
    message: str
    severity: str = "error"


def _implies(b: str, a: str, *, token: bool) -> bool:
    """Whether every text literal `b` is found in also holds literal `a` (sound, for either literal mode)."""
    if not token:
        return a in b
    if a.strip("*") not in b:  # the common answer, without building anything
        return False
    la, lb = _literal(a), _literal(b)
    core, hay = la.core, lb.core
    i = hay.find(core)
    while i >= 0:
        j = i + len(core)
        # Inside b, the boundary is b's own character; at b's edge, only b's own boundary vouches for it.
        left_ok = not la.left or (char_kind(hay[i - 1]) != la.left if i > 0 else lb.left == la.left)
        right_ok = not la.right or (char_kind(hay[j]) != la.right if j < len(hay) else lb.right == la.right)
        if left_ok and right_ok:
            return True
        i = hay.find(core, i + 1)
    return False


@functools.lru_cache(maxsize=8192)
def _literal(value: str) -> Literal:
    return Literal.of(value, token=True)


def _contains_any(needles: tuple[str, ...], hay: tuple[str, ...] | None, *, token: bool = False) -> bool:
    """Every literal of `hay` implies one of `needles` (so matching hay implies matching needles)."""
    return hay is not None and all(any(_implies(h, n, token=token) for n in needles) for h in hay)


def _subset(a: Iterable[Any] | None, b: Iterable[Any] | None) -> bool:
    return b is not None and a is not None and set(b) <= set(a)


def _subsumes(a: Match, b: Match, *, token: bool = False) -> bool:
    """Whether every event `b` matches is also matched by `a` (a sound, incomplete test)."""
    if a.error_message is not None and not _contains_any(a.error_message, b.error_message, token=token):
        return False
    if a.text is not None and not (
        _contains_any(a.text, b.text, token=token) or _contains_any(a.text, b.error_message, token=token)
    ):
        return False
    if a.error_message_regex is not None and not _subset(a.error_message_regex, b.error_message_regex):
        return False
    if a.text_regex is not None and not _subset(a.text_regex, b.text_regex):
        return False
    if a.error_code is not None and not _subset(a.error_code, b.error_code):
        return False
    if a.http_status is not None and (
        b.http_status is None
        or not all(any(alo <= blo and bhi <= ahi for alo, ahi in a.http_status) for blo, bhi in b.http_status)
    ):
        return False
    if a.without_http_status and not b.without_http_status:
        return False
    if a.status is not None and not _subset(a.status, b.status):
        return False
    if a.source is not None and not _subset(a.source, b.source):
        return False
    return a.operation is None or _subset(a.operation, b.operation)


def _only_substrings(m: Match) -> bool:
    return all(getattr(m, name) is None for name in type(m).model_fields if name not in ("error_message", "text"))


def _redundant_patterns(pack: RulePack, skip: set[int]) -> list[Problem]:
    """Substrings that can never be what makes their rule match (warnings: harmless, but dead)."""
    problems: list[Problem] = []
    token = pack.literal_match == "token"
    rules = pack.tried_in_order()
    # (rule index, substring, covers the error code too) of rules whose match is substrings alone.
    takers: list[tuple[int, str, bool]] = []
    for j, rule in enumerate(rules):
        m = rule.match
        if j not in skip:
            for field_name, maybe in (("error_message", m.error_message), ("text", m.text)):
                subs = maybe or ()
                for s in subs:
                    covers_code = field_name == "text"
                    # A `text` substring is only dead if an earlier one also looks at the code.
                    owner = next(
                        (
                            i
                            for i, t, code_too in takers
                            if _implies(s, t, token=token) and (code_too or not covers_code)
                        ),
                        None,
                    )
                    if owner is not None:
                        problems.append(
                            Problem(
                                rule.name,
                                "redundant_pattern",
                                f"{field_name} {s!r} of rule {rule.name!r} is always taken first by rule "
                                f"{rules[owner].name!r}",
                                severity="warning",
                            )
                        )
                    elif any(t != s and _implies(s, t, token=token) for t in subs):
                        problems.append(
                            Problem(
                                rule.name,
                                "redundant_pattern",
                                f"{field_name} {s!r} of rule {rule.name!r} contains another of its substrings",
                                severity="warning",
                            )
                        )
        if _only_substrings(m):
            if m.error_message is not None and m.text is None:
                takers.extend((j, s, False) for s in m.error_message)
            elif m.text is not None and m.error_message is None:
                takers.extend((j, s, True) for s in m.text)
    return problems


def _tier_and_origin_problems(pack: RulePack) -> list[Problem]:
    """A `transport` rule must read a transport fact; a pack that tags origins tags every rule."""
    problems: list[Problem] = []
    for rule in pack.rules:
        m = rule.match
        if rule.evidence == "transport" and m.http_status is None and m.error_code is None:
            problems.append(
                Problem(
                    rule.name,
                    "transport_without_fact",
                    f"rule {rule.name!r} claims evidence: transport but reads no http_status or error_code",
                )
            )
    tagged = [r for r in pack.rules if r.origin is not None]
    if tagged and len(tagged) < len(pack.rules):
        for rule in pack.rules:
            if rule.origin is None:
                problems.append(
                    Problem(
                        rule.name,
                        "missing_origin",
                        f"rule {rule.name!r} has no origin while other rules of the pack do: name the ecosystems "
                        "whose failures it was written from (or `general`)",
                    )
                )
    return problems


def check_pack(pack: RulePack, *, base: Sequence[RulePack] = ()) -> list[Problem]:
    """Structural defects of a pack: duplicate names, empty matches, unreachable and shadowed rules.

    `base` are the packs this one is layered on; they are tried after it, so they cannot hide its
    rules, but they must not share its id.
    """
    problems: list[Problem] = []
    for other in base:
        if other.id == pack.id:
            problems.append(Problem(None, "duplicate_pack_id", f"pack id {pack.id!r} is also a base pack's id"))

    first_index: dict[str, int] = {}
    for i, rule in enumerate(pack.rules):
        if rule.name in first_index:
            problems.append(
                Problem(
                    rule.name,
                    "duplicate_name",
                    f"rules[{i}] reuses the name {rule.name!r} of rules[{first_index[rule.name]}]",
                )
            )
        else:
            first_index[rule.name] = i
        if rule.match.is_empty():
            problems.append(
                Problem(
                    rule.name,
                    "empty_match",
                    f"rule {rule.name!r} has an empty match: it takes every failed event and hides all later rules",
                )
            )

    # Order and index below are the order the classifier tries the rules in (evidence tiers first).
    rules = pack.tried_in_order()
    token = pack.literal_match == "token"
    unreachable: set[int] = set()
    for j, later in enumerate(rules):
        for i in range(j):
            earlier = rules[i]
            if earlier.match.is_empty():
                continue  # reported as empty_match already
            if _subsumes(earlier.match, later.match, token=token):
                unreachable.add(j)
                problems.append(
                    Problem(
                        later.name,
                        "unreachable",
                        f"rule {later.name!r} can never decide: every event it matches is matched "
                        f"by earlier rule {earlier.name!r}",
                    )
                )
                break

    problems.extend(_redundant_patterns(pack, unreachable))
    problems.extend(_tier_and_origin_problems(pack))

    solo = Classifier([pack], cache_size=2)
    own_index = {id(r): i for i, r in enumerate(rules)}
    for j, rule in enumerate(rules):
        if j in unreachable:
            continue
        if not rule.examples:
            problems.append(
                Problem(rule.name, "no_examples", f"rule {rule.name!r} has no examples", severity="warning")
            )
            continue
        deciders: set[str] = set()
        for ex in rule.examples:
            decider = solo.deciding_rule(**ex.event())
            if ex.status == Status.SUCCESS or decider is None or own_index[id(decider)] >= j:
                break
            deciders.add(decider.name)
        else:
            problems.append(
                Problem(
                    rule.name,
                    "shadowed",
                    f"rule {rule.name!r} is shadowed: all its examples are decided by earlier rule(s) "
                    f"{', '.join(sorted(deciders))}",
                )
            )
    return problems
