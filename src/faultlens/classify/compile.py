"""Compiled rules: a rule's conditions as sets, ranges and regexes, and the literals its regexes need."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faultlens.classify.rules import Rule
from faultlens.classify.text import Literal
from faultlens.model import Classification

__all__ = ["CompiledRule", "compile_rule", "regex_needs"]


@dataclass(slots=True)
class CompiledRule:
    """A rule as the classifier checks it: its conditions as sets, ranges and compiled regexes."""

    index: int
    pack_id: str
    rule: Rule
    result: Classification
    # The keys of the rule's literals (text.Literal.key); `literals` maps each to how it is found.
    msg_subs: tuple[str, ...] | None
    txt_subs: tuple[str, ...] | None
    msg_regex: tuple[re.Pattern[str], ...] | None
    txt_regex: tuple[re.Pattern[str], ...] | None
    codes: frozenset[str] | None
    http: tuple[tuple[int, int], ...] | None
    without_http: bool  # the rule holds only for an event that carries no HTTP status
    statuses: frozenset[str] | None
    sources: frozenset[str] | None
    operations: frozenset[str] | None
    anchored: bool = field(default=False)
    # Only substring conditions of one kind: being a prefilter candidate already proves the match.
    simple: bool = field(default=False)
    # Strings the text must contain for one of msg_regex / txt_regex to match it (None: unknown).
    msg_regex_needs: tuple[str, ...] | None = field(default=None)
    txt_regex_needs: tuple[str, ...] | None = field(default=None)
    literals: dict[str, Literal] = field(default_factory=dict)


_CASE_FOLDED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZiks")


def _required_in(items: Sequence[Any]) -> frozenset[str] | None:
    """Strings one of which any text a parsed regex sequence matches in contains (None: unknown).

    Rules' regexes run with IGNORECASE on lowercased text, so only literal characters that match
    nothing else there count: ASCII but no uppercase letter (absent from the text) and not i, k
    or s, which IGNORECASE also matches to "ı", "K" and "ſ".
    """
    best: frozenset[str] | None = None

    def rarity(found: frozenset[str]) -> int:
        # Longer is rarer, and digits or punctuation rarer than letters.
        return min(len(s) + 2 * sum(not ch.isalpha() for ch in s) for s in found)

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or rarity(found) > rarity(best)):
            best = found

    # The literal run being read, as every spelling it can take: a small class of literal characters
    # ("c[dhq]-") multiplies the spellings instead of ending the run.
    run: set[str] = {""}
    for op, av in items:
        name = getattr(op, "name", None)
        if name == "LITERAL" and av < 128 and chr(av) not in _CASE_FOLDED:
            run = {r + chr(av) for r in run}
            continue
        chars = _small_class(av) if name == "IN" else None
        if chars is not None and len(run) * len(chars) <= _MAX_SPELLINGS:
            run = {r + ch for r in run for ch in chars}
            continue
        consider(frozenset(run) if "" not in run else None)
        run = {""}
        if name == "SUBPATTERN":
            consider(_required_in(av[-1].data))
        elif name == "ATOMIC_GROUP":
            consider(_required_in(av.data))
        elif name == "BRANCH":
            alternatives = [_required_in(branch.data) for branch in av[1]]
            if all(alternatives):
                consider(frozenset().union(*(a for a in alternatives if a)))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            consider(_required_in(av[2].data))
    consider(frozenset(run) if "" not in run else None)
    return best


_MAX_SPELLINGS = 16


def _small_class(av: Any) -> tuple[str, ...] | None:
    """The characters of a class made only of a few literal characters ("[dhcqt]"), else None."""
    out: list[str] = []
    for op, value in av:
        if getattr(op, "name", None) != "LITERAL" or value >= 128 or chr(value) in _CASE_FOLDED:
            return None
        out.append(chr(value))
    return tuple(out) if 0 < len(out) <= 8 else None


def regex_needs(patterns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Strings one of which a text must contain for any of `patterns` to match it (None: unknown)."""
    if patterns is None:
        return None
    needs: set[str] = set()
    try:
        parser: Any = importlib.import_module("re._parser")  # the parser re.compile itself uses
        for pattern in patterns:
            found = _required_in(parser.parse(pattern, re.IGNORECASE).data)
            if found is None:
                return None
            needs |= found
    except Exception:  # a private module: no prefilter is better than no classifier
        return None
    # A string containing another of the set adds nothing.
    return tuple(sorted(n for n in needs if not any(m != n and m in n for m in needs)))


def compile_rule(index: int, pack_id: str, rule: Rule, *, token: bool = False) -> CompiledRule:
    """`token`: the rule's pack matches literals on token boundaries (RulePack.literal_match)."""
    m = rule.match
    literals: dict[str, Literal] = {}

    def keys(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        out: list[str] = []
        for value in values:
            lit = Literal.of(value, token=token)
            literals[lit.key] = lit
            out.append(lit.key)
        return tuple(dict.fromkeys(out))

    def rx(patterns: tuple[str, ...] | None) -> tuple[re.Pattern[str], ...] | None:
        return None if patterns is None else tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    def fs(values: Iterable[str] | None) -> frozenset[str] | None:
        return None if values is None else frozenset(str(v) for v in values)

    result = Classification(
        failure_kind=rule.failure_kind,
        failure_class=rule.failure_class,
        is_actionable=rule.is_actionable,
        category=rule.category.value,
        retryable=rule.retryable,
        rule_name=rule.name,
        rule_version=pack_id,
    )
    return CompiledRule(
        index=index,
        pack_id=pack_id,
        rule=rule,
        result=result,
        msg_subs=keys(m.error_message),
        txt_subs=keys(m.text),
        msg_regex=rx(m.error_message_regex),
        txt_regex=rx(m.text_regex),
        codes=fs(m.error_code),
        http=m.http_status,
        without_http=bool(m.without_http_status),
        statuses=fs(m.status),
        sources=fs(m.source),
        operations=fs(m.operation),
        anchored=m.error_message is not None or m.text is not None,
        msg_regex_needs=regex_needs(m.error_message_regex),
        txt_regex_needs=regex_needs(m.text_regex),
        literals=literals,
        simple=(m.error_message is None) != (m.text is None)
        and all(getattr(m, name) is None for name in type(m).model_fields if name not in ("error_message", "text")),
    )
