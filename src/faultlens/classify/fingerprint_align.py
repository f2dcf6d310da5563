"""Fingerprint alignment: token classes of a masked message and its cost of joining a template."""

from __future__ import annotations

import re
from dataclasses import dataclass

from faultlens.classify.fingerprint_mask import bounded_put

# Written by the grouping step where the members of one group disagree.
WILDCARD = "<*>"
_DIGIT_RE = re.compile(r"\d")

_PLACEHOLDER_RE = re.compile(r"<(?:URL|EMAIL|UUID|PATH|TS|IP|HOST|HEX|NUM|ID|STR|\*)>")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")
_DIGIT_RUN_RE = re.compile(r"\d+")
# Characters that make a word look like an identifier or a value (dotted names, paths, refs).
_IDENT_CHARS = frozenset("./\\@$#|")
CONST = 0  # a word: part of the event unless proven otherwise
VALUE = 1  # identifier/value-looking ("eth0", "com.foo.Bar", "uid=<NUM>"): a mismatch is cheap
VAR = 2  # nothing but placeholders and punctuation ("(<NUM>)", "<IP>:<NUM>,"): a variable slot


# An empty value: a field with nothing in it ("()", "[]", "-", '""') holds the place of a variable.
_EMPTY_VALUES = frozenset(("()", "[]", "{}", "<>", '""', "''", "-", "--"))


def classify_token(token: str) -> int:
    if token.rstrip(".,;:") in _EMPTY_VALUES:
        return VAR
    if "<" in token:
        stripped = _PLACEHOLDER_RE.sub("", token)
        if len(stripped) != len(token):
            return VAR if _ALNUM_RE.search(stripped) is None else VALUE
    if _DIGIT_RE.search(token) is not None:
        return VALUE
    core = token.rstrip(".,;:!?)]}'\"")
    return VALUE if any(c in _IDENT_CHARS for c in core) else CONST


class Shape:
    """A masked message as the grouping sees it: tokens, their classes and the group key.

    A run of variable-slot tokens is one token ("<NUM> <NUM> <NUM>"), and so is a list of like
    value tokens ("blk_<NUM> blk_<NUM> ...", "an14 an15 an16" become "blk_<NUM> ...", "an14 ..."):
    a variable may span any number of tokens. The key is the first word token; a message rarely
    starts with a variable word, and "KeyError: x" must never join "ValueError: x".
    """

    __slots__ = ("classes", "key", "tokens")

    def __init__(self, masked: list[str], classes_cache: dict[str, tuple[int, str]]) -> None:
        tokens: list[str] = []
        classes: list[int] = []
        prev_item = ""  # digit-blind form of the last value token, to spot lists
        for tok in masked:
            if not tok:
                continue
            known = classes_cache.get(tok)
            if known is None:
                cls = classify_token(tok)
                known = (cls, _DIGIT_RUN_RE.sub("0", tok) if cls == VALUE else "")
                bounded_put(classes_cache, tok, known)
            cls, item = known
            if cls == VAR and classes and classes[-1] == VAR:
                tokens[-1] = tokens[-1] + " " + tok
                continue
            if item and item == prev_item:
                if not tokens[-1].endswith(" ..."):
                    tokens[-1] += " ..."
                continue
            prev_item = item
            tokens.append(tok)
            classes.append(cls)
        name_first(tokens, classes)
        self.tokens = tokens
        self.classes = classes
        self.key = group_key(tokens, classes)


def name_first(tokens: list[str], classes: list[int]) -> None:
    # A dotted name leading a message is nearly always what the message is about (an exception
    # class, a logger, a config key), not a value: "a.b.TimeoutError: x" must not join
    # "a.b.ConnectionError: x". Digits or placeholders still make it a value.
    if classes and classes[0] == VALUE and "<" not in tokens[0] and _DIGIT_RE.search(tokens[0]) is None:
        classes[0] = CONST


_LEADING_NAME = re.compile(r"[A-Za-z_]*")


def group_key(tokens: list[str], classes: list[int]) -> str:
    """The first word token; without one, the letters leading the first value token ("setDiffTotalSteps=<NUM>")."""
    for tok, cls in zip(tokens, classes, strict=True):
        if cls == CONST:
            return tok
    for tok, cls in zip(tokens, classes, strict=True):
        if cls == VALUE:
            match = _LEADING_NAME.match(tok)
            return "\x00" + match.group(0) if match is not None else "\x00"
    return ""


def one_slot(template: list[str], tokens: list[str]) -> int:
    """The one position where `tokens` differs from an equally long `template` (its <*> match anything); else -1."""
    slot = -1
    for j, (t, m) in enumerate(zip(template, tokens, strict=True)):
        if t != m and t != WILDCARD:
            if slot >= 0:
                return -1
            slot = j
    return slot


def covers(general: list[str], specific: list[str]) -> bool:
    """True when every message of `specific` also fits `general` token for token."""
    if len(general) != len(specific):
        return False
    return all(g in (t, WILDCARD) for g, t in zip(general, specific, strict=True))


# Similarity knobs: one setting for every log source. Aligning a message with a template costs,
# per position: nothing for equal tokens, `wildcard` under a learned <*> or between two variable
# slots, `soft` when both sides look like values, `hard` when a word is involved; a variable slot
# present on one side only is skipped for `skip` (variables may be absent or span several
# tokens). A message joins the cheapest group of its key whose cost is at most `max_ratio` x the
# number of its non-variable tokens (a longer message tolerates more differing words; variable
# slots carry no evidence either way), provided at least one non-variable token agrees exactly.
# A short message has little room for a differing word, so a slot is also learned from evidence
# across templates (`slot_values`).
@dataclass(frozen=True)
class Similarity:
    """Costs of aligning a message with a template; DEFAULT_SIMILARITY is the shipped setting."""

    hard: float = 1.0
    soft: float = 0.6
    wildcard: float = 0.1
    skip: float = 0.1
    max_ratio: float = 0.15
    # A message too far from every template still joins when `slot_values` - 1 templates of its key
    # and length differ from it in one and the same position and nowhere else: that many distinct
    # words in one slot make it a variable ("session closed for user <*>"). 0 turns this off.
    slot_values: int = 3


DEFAULT_SIMILARITY = Similarity()

DIAG, SKIP_MSG, SKIP_TPL = 1, 2, 3


def _sub_cost(t: str, tc: int, m: str, mc: int, sim: Similarity) -> float:
    if t == m:
        return 0.0
    if t == WILDCARD or (tc == VAR and mc != CONST) or (mc == VAR and tc != CONST):
        return sim.wildcard
    if tc != CONST and mc != CONST:
        # "vis=<NUM>" and "vis=<HEX>", "blk_<NUM>" and "blk_<NUM> ...": the same field holding
        # differently typed values, or one value and a list of them.
        if "<" in t and "<" in m and _skeleton(t) == _skeleton(m):
            return sim.wildcard
        return sim.soft
    return sim.hard


_skeletons: dict[str, str] = {}


def _skeleton(token: str) -> str:
    """`token` with every placeholder written <*> and no list marker."""
    known = _skeletons.get(token)
    if known is None:
        known = _PLACEHOLDER_RE.sub(WILDCARD, token.removesuffix(" ..."))
        bounded_put(_skeletons, token, known)
    return known


def positional(tokens: list[str], tcls: list[int], shape: Shape, limit: float, sim: Similarity) -> float:
    """Cost of aligning a template's `tokens` (classes `tcls`) one-to-one with an equally long shape."""
    cost = 0.0
    agree = False
    mcls = shape.classes
    for j, (t, m) in enumerate(zip(tokens, shape.tokens, strict=True)):
        if t == m:
            if mcls[j] != VAR:
                agree = True
            continue
        cost += _sub_cost(t, tcls[j], m, mcls[j], sim)
        if cost > limit:
            return cost
    return cost if agree or (CONST not in mcls and VALUE not in mcls) else limit + 1.0


def aligned(t: list[str], tc: list[int], shape: Shape, limit: float, sim: Similarity) -> tuple[float, list[int]]:
    """Cheapest alignment of template tokens `t` (classes `tc`) with `shape` where only variable slots
    may be left unpaired; returns cost, ops."""
    m, mc = shape.tokens, shape.classes
    a, b = len(m), len(t)
    inf = float("inf")
    skip = sim.skip
    cost = [[inf] * (b + 1) for _ in range(a + 1)]
    back = [[0] * (b + 1) for _ in range(a + 1)]
    cost[0][0] = 0.0
    for i in range(a + 1):
        row = cost[i]
        nxt = cost[i + 1] if i < a else row
        for j in range(b + 1):
            d = row[j]
            if d > limit:
                continue
            if i < a and j < b:
                c = d + _sub_cost(t[j], tc[j], m[i], mc[i], sim)
                if c < nxt[j + 1]:
                    nxt[j + 1] = c
                    back[i + 1][j + 1] = DIAG
            if i < a and mc[i] == VAR and d + skip < nxt[j]:
                nxt[j] = d + skip
                back[i + 1][j] = SKIP_MSG
            if j < b and tc[j] == VAR and d + skip < row[j + 1]:
                row[j + 1] = d + skip
                back[i][j + 1] = SKIP_TPL
    total = cost[a][b]
    if total > limit:
        return total, []
    ops: list[int] = []
    i, j = a, b
    agree = False
    while i or j:
        op = back[i][j]
        ops.append(op)
        if op == DIAG:
            i -= 1
            j -= 1
            if t[j] == m[i] and mc[i] != VAR:
                agree = True
        elif op == SKIP_MSG:
            i -= 1
        else:
            j -= 1
    if not agree and (CONST in mc or VALUE in mc):
        return limit + 1.0, []
    ops.reverse()
    return total, ops
