"""Static safety check of rule-pack regexes: refuses patterns that can backtrack for super-linear time."""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["MAX_PATTERN_LENGTH", "MAX_REPEAT_COUNT", "UnsafeRegexError", "check_regex"]

# Rule regexes are short phrases; anything longer is almost certainly generated or hostile.
MAX_PATTERN_LENGTH = 1000
# Largest {m,n} count a rule may use; larger counts only serve to make matching slow.
MAX_REPEAT_COUNT = 1000
# A bounded repeat of a bounded body is harmless when it has at most this many ways to split a text.
_SMALL_WAYS = 10_000

# The parser re.compile itself uses (re._parser since 3.11, sre_parse before).
try:
    _parser: Any = importlib.import_module("re._parser")
    _c: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - Python < 3.11
    _parser = importlib.import_module("sre_parse")
    _c = importlib.import_module("sre_constants")

_INF = math.inf
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
_SINGLE = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN}
_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}

# Characters tried when deciding whether two character sets share one: all of ASCII, some
# non-ASCII letters, digits and spaces (what \w, \d and \s match beyond ASCII) and the edges
# of every literal and range involved.
_REPRESENTATIVE = [chr(i) for i in range(128)] + list("\x85\xa0é߀ßΩЖ中密٣०\u2003\u3000\u200b\ufeff\U0001f600")


class UnsafeRegexError(ValueError):
    """A regex refused by the safety check; the message says why and how to rewrite it."""


Node = tuple[Any, Any]


def check_regex(pattern: str) -> None:
    """Refuse `pattern` (raise UnsafeRegexError) unless it is short, valid and cannot backtrack catastrophically."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafeRegexError(
            f"regex {_show(pattern)} is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed"
        )
    try:
        tree = list(_parser.parse(pattern, re.IGNORECASE))
    except re.error as exc:
        raise UnsafeRegexError(f"invalid regex {_show(pattern)}: {exc}") from None
    except OverflowError:
        raise UnsafeRegexError(
            f"invalid regex {_show(pattern)}: a repetition count is too large (at most {MAX_REPEAT_COUNT})"
        ) from None
    except RecursionError:
        raise UnsafeRegexError(f"invalid regex {_show(pattern)}: it is nested too deeply") from None
    except Exception as exc:  # whatever the parser raises refuses the pattern, never a 500
        raise UnsafeRegexError(f"invalid regex {_show(pattern)}: {type(exc).__name__}: {exc}") from None
    try:
        _walk(tree, pattern, _Sets(tree))
    except RecursionError:
        raise UnsafeRegexError(f"invalid regex {_show(pattern)}: it is nested too deeply") from None
    try:
        re.compile(pattern, re.IGNORECASE)
    except Exception as exc:  # e.g. re.error, OverflowError, RecursionError
        raise UnsafeRegexError(f"invalid regex {_show(pattern)}: {exc}") from None


def _show(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "...")


# --- the walk ---------------------------------------------------------------------------------


def _children(op: Any, av: Any) -> list[list[Node]]:
    """The sub-sequences of one node (lookaround bodies included: they backtrack too)."""
    if op in _REPEATS:
        return [list(av[2])]
    if op is _c.SUBPATTERN:
        return [list(av[-1])]
    if op is _ATOMIC:
        return [list(av)]
    if op is _c.BRANCH:
        return [list(b) for b in av[1]]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [list(av[1])]
    if op is _c.GROUPREF_EXISTS:
        return [list(b) for b in av[1:] if b is not None]
    return []


def _walk(seq: Sequence[Node], pattern: str, sets: _Sets) -> None:
    _check_chain(seq, pattern, sets)
    for op, av in seq:
        if op in _REPEATS:
            lo, hi = av[0], av[1]
            for count in (lo, hi):
                if count != _c.MAXREPEAT and count > MAX_REPEAT_COUNT:
                    raise UnsafeRegexError(
                        f"regex {_show(pattern)} repeats {count} times; at most {MAX_REPEAT_COUNT} are allowed"
                    )
            _check_repeat(hi, list(av[2]), pattern, sets)
        for child in _children(op, av):
            _walk(child, pattern, sets)


def _check_repeat(hi: int, body: list[Node], pattern: str, sets: _Sets) -> None:
    """A repeat that can run more than once must split any text into iterations in one way only."""
    if hi <= 1:
        return
    unbounded = hi == _c.MAXREPEAT
    if not unbounded:
        ways = _ways(body)
        if ways != _INF and hi * math.log(max(ways, 1)) <= math.log(_SMALL_WAYS):
            return  # e.g. (\d{1,3}\.){3}: a handful of ways, whatever the text
    for branch_node in _branches(body):
        problem = _ambiguous_branch(branch_node, sets)
        if problem:
            raise UnsafeRegexError(
                f"regex {_show(pattern)} can take {_cost(hi)} on some inputs (a repeated group "
                f"{problem}); make the alternatives start with different characters and none of them empty"
            )
    flat = _flatten(body)
    n = len(flat)
    variable = {i for i, node in enumerate(flat) if _is_variable(node)}
    sig = [sets.sig(_chars([node])) for node in flat]
    mandatory = [_node_width(*node)[0] >= 1 for node in flat]
    for i in sorted(variable):
        # Walk forward from item i, wrapping into the next iteration, up to and including i itself.
        # Two repeats over common characters split the text between them one way only if a mandatory
        # item lies between them that one of the two cannot consume.
        passed: set[int] = set()
        for step in range(1, n + 1):
            j = (i + step) % n
            if j in variable:
                disjoint = j != i and not sig[i] & sig[j]
                if not disjoint and not any(not s & sig[j] for s in passed):
                    raise UnsafeRegexError(_nested_message(pattern, hi, flat[i], flat[j]))
            if mandatory[j]:
                if not sig[j] & sig[i]:
                    break  # item i cannot run past j, so it is separated from everything after
                passed.add(sig[j])


def _check_chain(seq: Sequence[Node], pattern: str, sets: _Sets) -> None:
    """Two unbounded repeats in a row that contend for the same text cost the cube of its length.

    A search tries every start, the first repeat every end, the second every end again: `.*a.*b`
    takes 40 s on 3,000 characters, and messages may hold 16,384.
    """
    flat = _flatten(seq)
    unbounded = [i for i, (op, av) in enumerate(flat) if op in _REPEATS and av[1] == _c.MAXREPEAT]
    if len(unbounded) < 2:
        return
    sig = [sets.sig(_chars([node])) for node in flat]
    later = set(unbounded)
    for i in unbounded:
        if not sig[i] & sets.sig(_first(flat[i + 1 :])):
            continue  # it cannot give back a character the rest could start with: it ends in one place
        passed: set[int] = set()
        for j in range(i + 1, len(flat)):
            if j in later and sig[i] & sig[j] and not any(not s & sig[j] for s in passed):
                raise UnsafeRegexError(
                    f"regex {_show(pattern)} can take time growing with the cube of the input length on some "
                    "inputs (two unbounded repeats in a row can match the same text); bound one of them, "
                    "e.g. .{0,200} instead of .*, or separate them by a character one of them cannot match"
                )
            if _node_width(*flat[j])[0] >= 1:
                if not sig[j] & sig[i]:
                    break
                passed.add(sig[j])


def _cost(hi: int) -> str:
    return "exponential time" if hi == _c.MAXREPEAT else f"time growing with the input length to the power {hi}"


def _nested_message(pattern: str, hi: int, a: Node, b: Node) -> str:
    if any(op in (_c.GROUPREF, _c.GROUPREF_EXISTS) for op, _ in (a, b)):
        why = "a repeated group holds a backreference"
    elif _has_repeat(a) or _has_repeat(b):
        inner = "unbounded repeat" if max(_node_width(*a)[1], _node_width(*b)[1]) == _INF else "repeat"
        why = f"a repeated group holds another {inner}"
    else:
        why = "a repeated group can match the same text in more than one way"
    return (
        f"regex {_show(pattern)} can take {_cost(hi)} on some inputs ({why}); "
        "rewrite it without nested quantifiers, or separate the repeated parts by a character they cannot match"
    )


def _flatten(seq: Iterable[Node]) -> list[Node]:
    """Inline groups (their items are items of the sequence) and drop zero-width items."""
    out: list[Node] = []
    for op, av in seq:
        if op is _c.SUBPATTERN:
            out.extend(_flatten(av[-1]))
        elif op is _ATOMIC:
            out.extend(_flatten(av))
        elif op in _ZERO_WIDTH:
            continue
        else:
            out.append((op, av))
    return out


def _branches(seq: Iterable[Node]) -> Iterable[Node]:
    for op, av in seq:
        if op is _c.BRANCH:
            yield (op, av)
        for child in _children(op, av):
            yield from _branches(child)


def _ambiguous_branch(node: Node, sets: _Sets) -> str | None:
    alternatives = [list(b) for b in node[1][1]]
    for alt in alternatives:
        if _width(alt)[0] == 0:
            return "has alternatives that can match the same text, or nothing"
    firsts = [sets.sig(_first(alt)) for alt in alternatives]
    for a in range(len(firsts)):
        for b in range(a + 1, len(firsts)):
            if firsts[a] & firsts[b]:
                return "has alternatives that can start with the same character"
    return None


def _has_repeat(node: Node) -> bool:
    op, av = node
    if op in _REPEATS and av[1] > 1:
        return True
    return any(_has_repeat(child) for seq in _children(op, av) for child in seq)


def _is_variable(node: Node) -> bool:
    """Whether an item can match texts of different lengths in ways the engine must try one by one."""
    op, av = node
    if op in _SINGLE or op in _ZERO_WIDTH:
        return False
    if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
        return True
    if op is _c.BRANCH:
        # Alternatives starting with different characters are chosen by the first character.
        return any(_is_variable(child) for alt in av[1] for child in alt)
    if op in _REPEATS:
        return bool(av[0] != av[1] or any(_is_variable(child) for child in av[2]))
    return any(_is_variable(child) for seq in _children(op, av) for child in seq)


def _width(seq: Iterable[Node]) -> tuple[float, float]:
    lo: float = 0
    hi: float = 0
    for op, av in seq:
        a, b = _node_width(op, av)
        lo, hi = lo + a, hi + b
    return lo, hi


def _node_width(op: Any, av: Any) -> tuple[float, float]:
    if op in _SINGLE:
        return 1, 1
    if op in _ZERO_WIDTH:
        return 0, 0
    if op in _REPEATS:
        a, b = _width(av[2])
        top = _INF if av[1] == _c.MAXREPEAT else av[1] * b
        return av[0] * a, top
    if op is _c.BRANCH:
        widths = [_width(alt) for alt in av[1]]
        return min(w[0] for w in widths), max(w[1] for w in widths)
    if op is _c.SUBPATTERN:
        return _width(av[-1])
    if op is _ATOMIC:
        return _width(av)
    if op is _c.GROUPREF_EXISTS:
        widths = [_width(b) if b is not None else (0.0, 0.0) for b in av[1:]]
        return min(w[0] for w in widths), max(w[1] for w in widths)
    return 0, _INF  # GROUPREF and anything unknown


def _ways(seq: Iterable[Node]) -> float:
    """An upper bound on how many ways one iteration of a bounded repeat can match the same text."""
    total: float = 1
    for op, av in seq:
        if op in _REPEATS:
            if av[1] == _c.MAXREPEAT:
                return _INF
            total *= (av[1] - av[0] + 1) * _ways(av[2]) ** av[1]
        elif op is _c.BRANCH:
            total *= sum(_ways(alt) for alt in av[1])
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            return _INF
        else:
            for child in _children(op, av):
                total *= _ways(child)
        if total > _SMALL_WAYS:
            return _INF
    return total


# --- character sets ---------------------------------------------------------------------------

_Atom = tuple[Any, Any]  # a single-character node: (LITERAL|NOT_LITERAL|IN|ANY, argument)


def _chars(seq: Iterable[Node]) -> list[_Atom]:
    """Every character-matching node an item may use (so: the characters it can consume)."""
    out: list[_Atom] = []
    for op, av in seq:
        if op in _SINGLE:
            out.append((op, av))
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            out.append((_c.ANY, None))
            for child in _children(op, av):
                out.extend(_chars(child))
        elif op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):
            continue
        else:
            for child in _children(op, av):
                out.extend(_chars(child))
    return out


def _first(seq: Iterable[Node]) -> list[_Atom]:
    """The characters a sequence can start with."""
    out: list[_Atom] = []
    for op, av in seq:
        if op in _SINGLE:
            out.append((op, av))
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            out.append((_c.ANY, None))
        elif op in _ZERO_WIDTH:
            continue
        elif op is _c.BRANCH:
            for alt in av[1]:
                out.extend(_first(alt))
        else:
            for child in _children(op, av):
                out.extend(_first(child))
        if _node_width(op, av)[0] >= 1:
            break
    return out


def _variants(ch: str) -> set[str]:
    """A character and its case variants (rule regexes run with IGNORECASE)."""
    return {v for v in (ch, ch.lower(), ch.upper(), ch.casefold()) if len(v) == 1}


def _in_category(cat: Any, ch: str) -> bool:
    name = str(cat)
    if name.endswith("DIGIT"):
        hit = ch.isdecimal()
    elif name.endswith("SPACE"):
        hit = ch.isspace() or ch in "\x1c\x1d\x1e\x1f"
    elif name.endswith("WORD"):
        hit = ch.isalnum() or ch == "_"
    elif name.endswith("LINEBREAK"):
        hit = ch == "\n"
    else:  # pragma: no cover - unknown category: assume it can match anything
        return True
    return not hit if "NOT" in name else hit


def _atom_has(atom: _Atom, ch: str) -> bool:
    op, av = atom
    variants = _variants(ch)
    if op is _c.ANY:
        return True
    if op is _c.LITERAL:
        return any(ord(v) == av for v in variants)
    if op is _c.NOT_LITERAL:
        return not any(ord(v) == av for v in variants)
    negate = bool(av) and av[0][0] is _c.NEGATE
    hit = False
    for iop, iav in av:
        if iop is _c.LITERAL:
            hit = any(ord(v) == iav for v in variants)
        elif iop is _c.RANGE:
            hit = any(iav[0] <= ord(v) <= iav[1] for v in variants)
        elif iop is _c.CATEGORY:
            hit = any(_in_category(iav, v) for v in variants)
        elif iop is _c.NEGATE:
            continue
        else:  # e.g. a compiled charset: assume it can match anything
            hit = True
        if hit:
            break
    return hit != negate


def _edges(atoms: Iterable[_Atom]) -> set[str]:
    out: set[str] = set()
    for op, av in atoms:
        if op in (_c.LITERAL, _c.NOT_LITERAL):
            out.add(chr(av))
        elif op is _c.IN:
            for iop, iav in av:
                if iop is _c.LITERAL:
                    out.add(chr(iav))
                elif iop is _c.RANGE:
                    out.update((chr(iav[0]), chr(iav[1])))
    return {v for ch in out for v in _variants(ch)}


def _all_atoms(seq: Iterable[Node]) -> list[_Atom]:
    out: list[_Atom] = []
    for op, av in seq:
        if op in _SINGLE:
            out.append((op, av))
        for child in _children(op, av):
            out.extend(_all_atoms(child))
    return out


class _Sets:
    """Character sets of one pattern as bit masks over sample characters, so an overlap is one `&`.

    The sample is every ASCII character, a few non-ASCII letters, digits and spaces, and the edges
    (with case variants) of every literal and range in the pattern: two sets built from these
    share a character exactly when they share one of the sample.
    """

    def __init__(self, tree: Sequence[Node]) -> None:
        self._sample = tuple(dict.fromkeys((*_REPRESENTATIVE, *sorted(_edges(_all_atoms(tree))))))
        self._all = (1 << len(self._sample)) - 1
        self._atoms: dict[tuple[int, Any], int] = {}

    def sig(self, atoms: Iterable[_Atom]) -> int:
        mask = 0
        for atom in atoms:
            key = (0, id(atom[1])) if atom[0] is _c.IN else (1, atom)
            bits = self._atoms.get(key)
            if bits is None:
                bits = self._all if atom[0] is _c.ANY else self._bits(atom)
                self._atoms[key] = bits
            mask |= bits
        return mask

    def _bits(self, atom: _Atom) -> int:
        return sum(1 << k for k, ch in enumerate(self._sample) if _atom_has(atom, ch))
