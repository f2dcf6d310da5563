"""The classifier: layered rule packs compiled into one prefiltered, cached decision function."""

from __future__ import annotations

import importlib
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faultlens.classify.rules import Match, Rule, RulePack
from faultlens.errors import RulePackError
from faultlens.model import Category, Classification, FailureClass, Status

__all__ = [
    "SUCCESS_RULE",
    "UNCLASSIFIED_RULE",
    "Classifier",
    "ExampleFailure",
    "Problem",
    "check_pack",
    "decision_text",
    "test_pack",
]

SUCCESS_RULE = "success"
UNCLASSIFIED_RULE = "unclassified"

_STATUS_VALUES = frozenset(s.value for s in Status)
_SUCCESS: str = Status.SUCCESS.value  # a plain str compares faster than the enum member
_DEFAULT_CACHE_SIZE = 65536
_MAX_TEXT = 8192
# Longer decision texts are not cached by their mask (the cache holds up to 2 x 16384 of them).
_MAX_CACHED_TEXT = 1024
# Starts with the literal "://" so the regex engine jumps from one URL to the next.
_URL_PATH_RE = re.compile(r"(://[^/\s\"'<>()]+)[^\s\"'<>()]*")
# re.sub(r"\1", ...) expands its template in Python per match; a C-level getter does the same.
_GROUP_1: Callable[[re.Match[str]], str] = operator.itemgetter(1)


def _strip_stack(message: str) -> str:
    """Keep the lines of a stack trace that say what failed, dropping frames."""
    lines = message.splitlines()
    if "Traceback (most recent call last)" in message:
        # A Python traceback ends with the exception that escaped: the last frame's tail decides.
        last = -1
        for i, line in enumerate(lines):
            if line.startswith(("  File ", '\tFile "')):
                last = i
        if last >= 0:
            j = last + 1
            while j < len(lines) and lines[j].startswith("    "):
                j += 1
            tail = [ln for ln in lines[j:] if ln.strip()]
            if tail:
                return "\n".join(tail)
    kept: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            stripped = line.lstrip()
            if stripped.startswith("at ") or (stripped.startswith("... ") and stripped.endswith(" more")):
                continue
        if line.startswith("goroutine ") and line.rstrip().endswith("]:"):
            break  # Go panics: the goroutine dumps after this are frames only
        if line.startswith("--- End of "):
            continue
        kept.append(line)
    return "\n".join(kept)


def decision_text(message: str | None) -> str:
    """The lowercased part of a message that rules look at.

    Stack frames are dropped (a frame path like ``timeout_handler.py`` is not evidence), URLs keep
    their host but lose their path (``/v1/rate-limits/7`` is not a rate limit), and the
    ``, client: ..., request: "GET /..."`` tail of an nginx error line is cut so a URL cannot match.
    A huge message keeps only its head and tail, which say what failed, to bound the cost per event.
    """
    if not message:
        return ""
    if "\n" in message:
        message = _strip_stack(message)
    if len(message) > _MAX_TEXT:
        message = message[: _MAX_TEXT // 2] + "\n" + message[-_MAX_TEXT // 2 :]
    cut = message.find(", client: ")
    if cut > 0 and (", server: " in message or ", request: " in message or ", upstream: " in message):
        message = message[:cut]
    if "://" in message:
        message = _URL_PATH_RE.sub(_GROUP_1, message)
    return message.lower()


@dataclass(frozen=True, slots=True)
class Problem:
    """A defect check_pack found in a pack; `severity` is "error" or "warning"."""

    rule: str | None
    code: str
    message: str
    severity: str = "error"


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example that did not classify the way its rule declares."""

    rule: str
    index: int
    example: dict[str, Any]
    expected: dict[str, Any]
    actual: Classification
    message: str


@dataclass(slots=True)
class _Compiled:
    index: int
    pack_id: str
    rule: Rule
    result: Classification
    msg_subs: tuple[str, ...] | None
    txt_subs: tuple[str, ...] | None
    msg_regex: tuple[re.Pattern[str], ...] | None
    txt_regex: tuple[re.Pattern[str], ...] | None
    codes: frozenset[str] | None
    http: tuple[tuple[int, int], ...] | None
    statuses: frozenset[str] | None
    sources: frozenset[str] | None
    operations: frozenset[str] | None
    anchored: bool = field(default=False)
    # Only substring conditions of one kind: being a prefilter candidate already proves the match.
    simple: bool = field(default=False)
    # Strings the text must contain for one of msg_regex / txt_regex to match it (None: unknown).
    msg_regex_needs: tuple[str, ...] | None = field(default=None)
    txt_regex_needs: tuple[str, ...] | None = field(default=None)


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

    run: list[str] = []
    for op, av in items:
        name = getattr(op, "name", None)
        if name == "LITERAL" and av < 128 and chr(av) not in _CASE_FOLDED:
            run.append(chr(av))
            continue
        consider(frozenset({"".join(run)}) if run else None)
        run = []
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
    consider(frozenset({"".join(run)}) if run else None)
    return best


def _regex_needs(patterns: tuple[str, ...] | None) -> tuple[str, ...] | None:
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


def _compile_rule(index: int, pack_id: str, rule: Rule) -> _Compiled:
    m = rule.match

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
    return _Compiled(
        index=index,
        pack_id=pack_id,
        rule=rule,
        result=result,
        msg_subs=m.error_message,
        txt_subs=m.text,
        msg_regex=rx(m.error_message_regex),
        txt_regex=rx(m.text_regex),
        codes=fs(m.error_code),
        http=m.http_status,
        statuses=fs(m.status),
        sources=fs(m.source),
        operations=fs(m.operation),
        anchored=m.error_message is not None or m.text is not None,
        msg_regex_needs=_regex_needs(m.error_message_regex),
        txt_regex_needs=_regex_needs(m.text_regex),
        simple=(m.error_message is None) != (m.text is None)
        and all(getattr(m, name) is None for name in type(m).model_fields if name not in ("error_message", "text")),
    )


# Words as the index sees them: a run of word characters from its first non-digit on. Numbers,
# the commonest unique words, never reach Python; a core starting with a non-digit still lies
# inside the word cut from any run that contains it.
_WORD_RE = re.compile(r"[^\W\d]\w*")
# Ids, numbers and hashes make most chunks of a message unique. A chunk's verdict is also cached
# under its mask: whole hex words that hold a digit, and every other digit run, become "0".
_MASK_RE = re.compile(r"\b[0-9a-f]*\d[0-9a-f]*\b|\d+")
_FIRST_RUN_RE = re.compile(r"^\w+")
_LAST_RUN_RE = re.compile(r"\w+$")
_HEX_LETTERS = frozenset("abcdef")
_HEXDIGITS = frozenset("0123456789abcdef")
_CACHE_SIZE = 100_000
_Hits = tuple[frozenset[int], frozenset[int]]
# Per whitespace-separated chunk of text: rules whose substring certainly occurs in it (for
# error_message, for text) and the substrings to confirm with an `in` on the whole text.
_Entry = tuple[frozenset[int], frozenset[int], tuple[str, ...]]
_EQUALS, _ENDS, _STARTS = 0, 1, 2
# What is left of a decision once its key settled everything else: rules in order, each with the
# checks to run on the text: (_SUB, a substring), (_ANY_SUB, substrings of which one must occur),
# (_REGEX, a pattern) or (_ANY_REGEX, patterns of which one must match).
_Checks = tuple[tuple[int, Any], ...]
_SUB, _ANY_SUB, _REGEX, _ANY_REGEX = 0, 1, 2, 3
_Program = tuple[tuple["_Compiled", _Checks], ...]
_MISSING: Any = object()
# Compared by identity: a lookup that found nothing, as opposed to a cached "nothing here" (None).
_NOT_CACHED: _Entry = (frozenset(), frozenset(), ("",))


# The whole-message mask a decision is cached under. Every replaced region starts with an ASCII
# digit and is either a run of them or one plus the hex characters after it up to the end of its
# word, so the regex engine only ever starts at digits (a charset prefix scan) and most ids,
# numbers and hashes of a message fold into "0". (The possessive quantifiers only save the
# backtracking into hex runs that could never end a word.) _stable_under_message_mask and
# _masked_guard say what the mask provably keeps.
_MESSAGE_MASK_RE = re.compile(r"[0-9](?:[0-9a-f]*+(?!\w)|[0-9]*+)")


def _stable_under_message_mask(pattern: str) -> bool:
    """Whether `pattern in text` equals `pattern in _MESSAGE_MASK_RE.sub("0", text)` for every text.

    A masked region starts with a digit and holds digits or hex letters only; when it holds hex
    letters it ends where its word ends. A pattern without digits therefore cannot contain a
    region, nor the "0" that replaces one, nor end inside one (that would need a digit at the
    overlap's start). It can only start inside one: then its leading run of word characters is a
    tail of a region, made of hex letters a-f alone. Excluding those patterns, an occurrence in
    the text lies outside every region and survives the mask, and an occurrence in the masked text
    lies between placeholders, in text the mask left as it was.
    """
    if any(ch.isdigit() for ch in pattern):
        return False
    first = _FIRST_RUN_RE.search(pattern)
    return not (first and set(first.group()) <= _HEX_LETTERS)


def _masked_guard(pattern: str) -> str | None:
    """A string in the masked text of every text `pattern` occurs in (None: no such guard known).

    Masking starts at digits and only covers digits and hex letters a-f, so a region cannot cover
    the pattern's first character that is neither: from there on the text is masked exactly like
    the pattern alone, except the last region when it runs to the pattern's end (the text may
    continue it). That region still starts with its "0", where the guard ends.
    """
    start = next((i for i, ch in enumerate(pattern) if ch not in _HEXDIGITS and not ch.isdigit()), None)
    if start is None:
        return None
    rest = pattern[start:]
    out: list[str] = []
    pos = 0
    for m in _MESSAGE_MASK_RE.finditer(rest):
        out.append(rest[pos : m.start()])
        out.append("0")
        pos = m.end()
    out.append(rest[pos:])
    return "".join(out)


def _mask_stable_run(run: str) -> bool:
    """A run no mask can create or destroy: no digit, and not made of hex letters only."""
    return not any(ch.isdigit() for ch in run) and not set(run) <= _HEX_LETTERS


def _mask_stable(pattern: str) -> bool:
    """Whether `pattern in chunk` is the same for every chunk with the same mask.

    A digit-free substring cannot overlap a masked digit run; it can only overlap a masked hex
    word through a run of hex letters at its own start or end, so those must not be hex-only.
    """
    if any(ch.isdigit() for ch in pattern):
        return False
    first, last = _FIRST_RUN_RE.search(pattern), _LAST_RUN_RE.search(pattern)
    return not (first and set(first.group()) <= _HEX_LETTERS) and not (last and set(last.group()) <= _HEX_LETTERS)


class _SubstringIndex:
    """Which rules' substrings occur in a text, in work proportional to its new chunks and words.

    Every substring is filed under one run of word characters it contains (its "core": the run
    least seen in the packs' examples, and one no mask can touch), and that run can only occur
    inside one word of a text. A text is split on whitespace into chunks; a chunk's verdict is
    cached under the chunk and under its mask, and on a miss it is built from its words, whose
    candidate substrings are cached too. A mask-stable substring without whitespace lies inside
    one chunk, so the chunk settles it; the others (with whitespace, or with digits or hex-letter
    edges) are confirmed with `in` on the whole text. Repeated wording therefore costs a few set
    operations, and a new id one small regex substitution. (One regex alternation over all
    substrings walks its branches at every position of every text: about a hundred times slower.)
    """

    def __init__(self, table: dict[str, _Hits], samples: Sequence[str]) -> None:
        self._table = table
        pats = sorted(table)
        runs_of = {p: [r for r in _WORD_RE.findall(p) if _mask_stable_run(r)] for p in pats}
        seen_in: dict[str, int] = {}
        for run in {r for rs in runs_of.values() for r in rs}:
            seen_in[run] = sum(1 for text in samples if run in text)

        def cost(run: str) -> tuple[float, int, str]:
            # Short runs hide inside countless words.
            weight = {1: 50.0, 2: 8.0, 3: 2.0}.get(len(run), 1.0)
            return ((seen_in[run] + 1) * weight, -len(run), run)

        by_core: dict[str, list[str]] = {}
        unanchored: list[str] = []
        for p in pats:
            if runs_of[p]:
                by_core.setdefault(min(runs_of[p], key=cost), []).append(p)
            else:
                unanchored.append(p)  # no run a mask leaves alone: checked on every text
        self._by_core = {c: tuple(ps) for c, ps in by_core.items()}
        self._unanchored = tuple(unanchored)
        self._single = frozenset(c for c in by_core if len(c) == 1)
        bigrams: dict[str, list[str]] = {}
        for c in by_core:
            if len(c) >= 2:
                bigrams.setdefault(c[:2], []).append(c)
        self._bigrams = {k: tuple(v) for k, v in bigrams.items()}
        # Substrings the whole text must confirm. One with whitespace spans several chunks; the
        # chunk holding its core must equal the whitespace-free piece around the core (or end or
        # start with it, for the first or last piece), which rules most out per chunk. Substrings
        # a mask could change are always deferred, with no piece test (the piece may hold digits).
        self._deferred: dict[str, tuple[tuple[str, int], ...]] = {}
        for c, ps in self._by_core.items():
            for p in ps:
                if not _mask_stable(p):
                    self._deferred[p] = ()
                    continue
                pieces = p.split()
                if len(pieces) == 1 and p == p.strip():
                    continue
                modes = []
                for i, piece in enumerate(pieces):
                    if c in piece:
                        first = i == 0 and not p[0].isspace()
                        last = i == len(pieces) - 1 and not p[-1].isspace()
                        modes.append((piece, _ENDS if first else _STARTS if last else _EQUALS))
                self._deferred[p] = tuple(modes)
        self._words: dict[str, tuple[str, ...]] = {}
        self._chunks: dict[str, _Entry] = {}
        self._masked: dict[str, _Entry | None] = {}
        self._dead: set[str] = set()

    def candidates(self, text: str) -> set[str]:
        """Every substring that may occur in `text`: those whose core does, and the unanchored ones.

        The cores of a text's substrings are stable under the message mask (a run with no digit
        and not of hex letters only), so this set is the same for every text with the same mask.
        """
        found = set(self._unanchored)
        words = self._words
        for word in set(_WORD_RE.findall(text)):
            pats = words.get(word)
            if pats is None:
                # Hex ids and the like hold no core (cores have a letter beyond a-f): skip them.
                pats = () if set(word) <= _HEX_LETTERS.union("0123456789") else self._word(word)
            found.update(pats)
        return found

    def _word(self, word: str) -> tuple[str, ...]:
        """Substrings whose core occurs in `word`."""
        found: set[str] = set()
        bigrams = self._bigrams
        for i in range(len(word) - 1):
            listed = bigrams.get(word[i : i + 2])
            if listed:
                found.update(c for c in listed if word.startswith(c, i))
        if self._single:
            found.update(self._single.intersection(word))
        pats = tuple(p for c in sorted(found) for p in self._by_core[c])
        if len(self._words) >= _CACHE_SIZE:
            self._words.clear()
        self._words[word] = pats
        return pats

    def _verdict(self, chunk: str) -> _Entry | None:
        words = self._words
        candidates: set[str] = set()
        for word in set(_WORD_RE.findall(chunk)):
            pats = words.get(word)
            if pats is None:
                # Hex ids and the like hold no core (cores have a letter beyond a-f): skip them.
                pats = () if set(word) <= _HEX_LETTERS.union("0123456789") else self._word(word)
            candidates.update(pats)
        if not candidates:
            return None
        msg_ids: set[int] = set()
        txt_ids: set[int] = set()
        deferred: list[str] = []
        for p in candidates:
            modes = self._deferred.get(p)
            if modes is not None:
                if not modes or any(
                    chunk == piece
                    if mode == _EQUALS
                    else chunk.endswith(piece)
                    if mode == _ENDS
                    else chunk.startswith(piece)
                    for piece, mode in modes
                ):
                    deferred.append(p)
            elif p in chunk:
                msg_ids |= self._table[p][0]
                txt_ids |= self._table[p][1]
        if not (msg_ids or txt_ids or deferred):
            return None
        return frozenset(msg_ids), frozenset(txt_ids), tuple(deferred)

    def _chunk(self, chunk: str) -> _Entry | None:
        masked = _MASK_RE.sub("0", chunk)
        entry = self._masked.get(masked, _NOT_CACHED) if masked != chunk else _NOT_CACHED
        if entry is _NOT_CACHED:
            entry = self._verdict(chunk)
            if masked != chunk:
                if len(self._masked) >= _CACHE_SIZE:
                    self._masked.clear()
                self._masked[masked] = entry
        # Cached as itself too: "(110:" or "port=443):" recur verbatim and then skip the mask.
        if entry is None:
            if len(self._dead) >= _CACHE_SIZE:
                self._dead.clear()
            self._dead.add(chunk)
        else:
            if len(self._chunks) >= _CACHE_SIZE:
                self._chunks.clear()
            self._chunks[chunk] = entry
        return entry

    def find(self, text: str) -> tuple[set[int], set[int]]:
        """Rule indexes whose error_message substrings, and whose text substrings, occur in `text`."""
        msg_ids: set[int] = set()
        txt_ids: set[int] = set()
        deferred: set[str] = set()
        chunks = self._chunks
        # Most chunks are known to hold nothing; dropping them is one C-level set difference.
        for chunk in set(text.split()) - self._dead:
            entry = chunks.get(chunk)
            if entry is None:
                entry = self._chunk(chunk)
                if entry is None:
                    continue
            msg_ids |= entry[0]
            txt_ids |= entry[1]
            if entry[2]:
                deferred.update(entry[2])
        if self._unanchored:
            deferred.update(self._unanchored)
        table = self._table
        for p in deferred:
            if p in text:
                msg_ids |= table[p][0]
                txt_ids |= table[p][1]
        return msg_ids, txt_ids


class Classifier:
    """Classifies events against packs tried in order; the first matching rule decides.

    Built-in decisions, outside any pack: a successful event is always ``none``; a failed event no
    rule matches is ``unclassified``. Those carry the whole stack's `version` as rule_version,
    since "no rule matched" is a statement about every pack.
    """

    def __init__(self, packs: Sequence[RulePack], *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        self._packs: tuple[RulePack, ...] = tuple(packs)
        ids = [p.id for p in self._packs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise RulePackError(f"rule pack ids must be unique in a classifier: {dupes}", details={"ids": ids})
        self._version = "+".join(ids) if ids else "builtin"
        self._cache_size = max(1, cache_size // 2)
        self._cache: dict[tuple[Any, ...], Classification] = {}
        self._old: dict[tuple[Any, ...], Classification] = {}

        rules: list[_Compiled] = []
        for pack in self._packs:
            for rule in pack.rules:
                rules.append(_compile_rule(len(rules), pack.id, rule))
        self._rules = rules

        self._success = Classification(
            failure_kind="none",
            failure_class=FailureClass.NONE,
            is_actionable=False,
            category=Category.NONE.value,
            retryable=False,
            rule_name=SUCCESS_RULE,
            rule_version=self._version,
        )
        self._unclassified = Classification(
            failure_kind="unclassified",
            failure_class=FailureClass.SERVICE_FAILURE,
            is_actionable=True,
            category=Category.UNKNOWN.value,
            retryable=False,
            rule_name=UNCLASSIFIED_RULE,
            rule_version=self._version,
        )
        self._build_prefilter()

    def _build_prefilter(self) -> None:
        msg_of: dict[str, set[int]] = {}
        txt_of: dict[str, set[int]] = {}
        for cr in self._rules:
            for s in cr.msg_subs or ():
                msg_of.setdefault(s, set()).add(cr.index)
            for s in cr.txt_subs or ():
                txt_of.setdefault(s, set()).add(cr.index)
        self._hit_table = {
            w: (frozenset(msg_of.get(w, ())), frozenset(txt_of.get(w, ()))) for w in set(msg_of) | set(txt_of)
        }
        samples = [decision_text(ex.error_message) for cr in self._rules for ex in cr.rule.examples if ex.error_message]
        self._index = _SubstringIndex(self._hit_table, samples)

        # Rules without substrings are indexed by their most selective condition, so an event
        # only ever checks the few that could apply to it.
        by_http: dict[int, list[int]] = {}
        by_code: dict[str, list[int]] = {}
        by_status: dict[str, list[int]] = {}
        by_source: dict[str, list[int]] = {}
        by_op: dict[str, list[int]] = {}
        always: list[int] = []
        for cr in self._rules:
            if cr.anchored:
                continue
            if cr.http is not None:
                for lo, hi in cr.http:
                    for code in range(lo, hi + 1):
                        by_http.setdefault(code, []).append(cr.index)
            elif cr.codes is not None:
                for c in cr.codes:
                    by_code.setdefault(c, []).append(cr.index)
            elif cr.statuses is not None:
                for s in cr.statuses:
                    by_status.setdefault(s, []).append(cr.index)
            elif cr.sources is not None:
                for s in cr.sources:
                    by_source.setdefault(s, []).append(cr.index)
            elif cr.operations is not None:
                for s in cr.operations:
                    by_op.setdefault(s, []).append(cr.index)
            else:
                always.append(cr.index)
        self._by_http = {k: frozenset(v) for k, v in by_http.items()}
        self._by_code = {k: frozenset(v) for k, v in by_code.items()}
        self._by_status = {k: frozenset(v) for k, v in by_status.items()}
        self._by_source = {k: frozenset(v) for k, v in by_source.items()}
        self._by_op = {k: frozenset(v) for k, v in by_op.items()}
        self._always = frozenset(always)
        self._sources = frozenset(s for cr in self._rules for s in cr.sources or ())
        self._operations = frozenset(s for cr in self._rules for s in cr.operations or ())
        self._stable = frozenset(p for p in self._hit_table if _stable_under_message_mask(p))
        self._guards = {p: _masked_guard(p) for p in self._hit_table if p not in self._stable}
        self._program_cache_size = 16384
        self._programs: dict[tuple[Any, ...], _Compiled | _Program | None] = {}
        self._old_programs: dict[tuple[Any, ...], _Compiled | _Program | None] = {}

    @property
    def version(self) -> str:
        return self._version

    @property
    def packs(self) -> tuple[RulePack, ...]:
        return self._packs

    def classify(
        self,
        *,
        status: str,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        source: str | None = None,
        operation: str | None = None,
    ) -> Classification:
        key = (status, http_status, error_code, error_message, source, operation)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        hit = self._old.get(key)
        if hit is None:
            st = str(status).strip().lower()
            if st == _SUCCESS:
                hit = self._success
            else:
                cr = self._decide(st, http_status, error_code, error_message, source, operation)
                hit = self._unclassified if cr is None else cr.result
        # Two generations approximate LRU without per-hit bookkeeping: entries used since the
        # last swap survive it, the rest are dropped with the old generation.
        if len(self._cache) >= self._cache_size:
            self._old = self._cache
            self._cache = {}
        self._cache[key] = hit
        return hit

    def cache_clear(self) -> None:
        self._cache = {}
        self._old = {}
        self._programs = {}
        self._old_programs = {}

    def decide_rule(self, **event: Any) -> tuple[str, str] | None:
        """(pack id, rule name) of the rule that decides an event, or None for a built-in decision."""
        st = str(event.get("status", Status.FAILURE)).strip().lower()
        if st == Status.SUCCESS:
            return None
        cr = self._decide(
            st,
            event.get("http_status"),
            event.get("error_code"),
            event.get("error_message"),
            event.get("source"),
            event.get("operation"),
        )
        return None if cr is None else (cr.pack_id, cr.rule.name)

    def _decide(
        self,
        st: str,
        http_status: int | None,
        error_code: str | None,
        error_message: str | None,
        source: str | None,
        operation: str | None,
    ) -> _Compiled | None:
        if st not in _STATUS_VALUES:
            st = Status.FAILURE.value  # an unknown status is still a failed event
        if http_status is not None and (type(http_status) is not int):
            # Callers outside the typed API send "503" or 503.0; anything else is no evidence.
            try:
                http_status = int(http_status)
            except (TypeError, ValueError):
                http_status = None
        text = decision_text(error_message)
        code = error_code.strip().lower() if error_code else ""
        # A source or operation no rule names is as good as none.
        src = source.strip().lower() if source and self._sources else ""
        if src and src not in self._sources:
            src = ""
        op = operation.strip().lower() if operation and self._operations else ""
        if op and op not in self._operations:
            op = ""
        if len(text) > _MAX_CACHED_TEXT:
            # Rare, and too big to keep by the thousand: the chunk index bounds their cost instead.
            return self._decide_by_index(st, http_status, code, src, op, text)
        # Everything a decision depends on, with the message masked (see _program for why the
        # mask cannot change a decision).
        masked = _MESSAGE_MASK_RE.sub("0", text)
        key = (st, http_status, code, src, op, masked)
        prog: _Compiled | _Program | None = self._programs.get(key, _MISSING)
        if prog is _MISSING:
            prog = self._old_programs.get(key, _MISSING)
            if prog is _MISSING:
                prog = self._program(st, http_status, code, src, op, text, masked)
            if len(self._programs) >= self._program_cache_size:
                self._old_programs = self._programs
                self._programs = {}
            self._programs[key] = prog
        if not isinstance(prog, tuple):
            return prog
        # Rules whose match hangs on what the mask hides, in order, each with its checks left.
        for cr, checks in prog:
            for kind, item in checks:
                if kind == _SUB:
                    if item not in text:
                        break
                elif kind == _ANY_SUB:
                    if not any(p in text for p in item):
                        break
                elif kind == _REGEX:
                    if item.search(text) is None:
                        break
                elif not any(r.search(text) for r in item):
                    break
            else:
                return cr
        return None

    def _decide_by_index(
        self, st: str, http_status: int | None, code: str, src: str, op: str, msg: str
    ) -> _Compiled | None:
        """_decide for one text, uncached: the substring index finds the candidate rules."""
        if msg:
            msg_hits, txt_hits = self._index.find(msg)
        else:
            msg_hits, txt_hits = set(), set()
        if code:
            txt_hits |= self._index.find(code)[1]

        cands = msg_hits | txt_hits | self._always
        cands |= self._field_candidates(st, http_status, code, src, op)

        rules = self._rules
        if not cands:
            return None
        first = rules[min(cands)]
        if first.simple:
            return first
        for i in sorted(cands):
            cr = rules[i]
            if cr.msg_subs is not None and i not in msg_hits:
                continue
            if cr.txt_subs is not None and i not in txt_hits:
                continue
            if cr.statuses is not None and st not in cr.statuses:
                continue
            if cr.http is not None:
                if http_status is None:
                    continue
                if not any(lo <= http_status <= hi for lo, hi in cr.http):
                    continue
            if cr.codes is not None and code not in cr.codes:
                continue
            if cr.sources is not None and src not in cr.sources:
                continue
            if cr.operations is not None and op not in cr.operations:
                continue
            if cr.msg_regex is not None and not any(r.search(msg) for r in cr.msg_regex):
                continue
            if cr.txt_regex is not None and not any(r.search(msg) or (code and r.search(code)) for r in cr.txt_regex):
                continue
            return cr
        return None

    def _field_candidates(self, st: str, http_status: int | None, code: str, src: str, op: str) -> set[int]:
        """Rules that a status, HTTP status, error code, source or operation condition names."""
        out = set(self._by_status.get(st, frozenset()))
        if http_status is not None:
            out |= self._by_http.get(http_status, frozenset())
        if code:
            out |= self._by_code.get(code, frozenset())
        if src:
            out |= self._by_source.get(src, frozenset())
        if op:
            out |= self._by_op.get(op, frozenset())
        return out

    def _program(
        self, st: str, http_status: int | None, code: str, src: str, op: str, text: str, masked: str
    ) -> _Compiled | _Program | None:
        """The decision for every text with the same mask as `text`, and these other fields.

        A substring stable under the mask occurs in `text` exactly when it occurs in the masked
        text, so it is settled here; every other condition but regexes on the text reads the key.
        The result is the deciding rule, or None, when those settle it; otherwise the rules in
        order up to the first settled one, each with the checks left to run on the actual text:
        the mask-unstable substrings that may occur (their core occurs and their guard is in the
        masked text) and the text regexes, behind the literals one of which they need.
        """
        index = self._index
        table = self._hit_table
        maybe = index.candidates(text) if text else set()
        present = {p for p in maybe if p in self._stable and p in text}
        # Substrings the mask may hide: their guard must be in the masked text, they in the text.
        guards = self._guards
        shaky = {p for p in maybe if p not in self._stable and ((g := guards[p]) is None or g in masked)}
        code_hits: set[int] = index.find(code)[1] if code else set()
        cands = code_hits | self._always
        for p in maybe:
            cands |= table[p][0]
            cands |= table[p][1]
        cands |= self._field_candidates(st, http_status, code, src, op)

        steps: list[tuple[_Compiled, _Checks]] = []
        for i in sorted(cands):
            cr = self._rules[i]
            if cr.statuses is not None and st not in cr.statuses:
                continue
            if cr.http is not None and (http_status is None or not any(lo <= http_status <= hi for lo, hi in cr.http)):
                continue
            if cr.codes is not None and code not in cr.codes:
                continue
            if cr.sources is not None and src not in cr.sources:
                continue
            if cr.operations is not None and op not in cr.operations:
                continue
            checks: list[tuple[int, Any]] = []
            if cr.msg_subs is not None and present.isdisjoint(cr.msg_subs):
                left = tuple(p for p in cr.msg_subs if p in shaky)
                if not left:
                    continue
                checks.append((_SUB, left[0]) if len(left) == 1 else (_ANY_SUB, left))
            if cr.txt_subs is not None and i not in code_hits and present.isdisjoint(cr.txt_subs):
                left = tuple(p for p in cr.txt_subs if p in shaky)
                if not left:
                    continue
                checks.append((_SUB, left[0]) if len(left) == 1 else (_ANY_SUB, left))
            for regexes, needs in ((cr.msg_regex, cr.msg_regex_needs), (cr.txt_regex, cr.txt_regex_needs)):
                if regexes is None or (regexes is cr.txt_regex and code and any(r.search(code) for r in regexes)):
                    continue
                if needs is not None:
                    checks.append((_SUB, needs[0]) if len(needs) == 1 else (_ANY_SUB, needs))
                checks.append((_REGEX, regexes[0]) if len(regexes) == 1 else (_ANY_REGEX, regexes))
            if not checks:
                if not steps:
                    return cr
                steps.append((cr, ()))
                break
            steps.append((cr, tuple(checks)))
        return tuple(steps) if steps else None


def _contains_any(needles: tuple[str, ...], hay: tuple[str, ...] | None) -> bool:
    """Every string of `hay` contains one of `needles` (so matching hay implies matching needles)."""
    return hay is not None and all(any(n in h for n in needles) for h in hay)


def _subset(a: Iterable[Any] | None, b: Iterable[Any] | None) -> bool:
    return b is not None and a is not None and set(b) <= set(a)


def _subsumes(a: Match, b: Match) -> bool:
    """Whether every event `b` matches is also matched by `a` (a sound, incomplete test)."""
    if a.error_message is not None and not _contains_any(a.error_message, b.error_message):
        return False
    if a.text is not None and not (_contains_any(a.text, b.text) or _contains_any(a.text, b.error_message)):
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
    # (rule index, substring, covers the error code too) of rules whose match is substrings alone.
    takers: list[tuple[int, str, bool]] = []
    for j, rule in enumerate(pack.rules):
        m = rule.match
        if j not in skip:
            for field_name, maybe in (("error_message", m.error_message), ("text", m.text)):
                subs = maybe or ()
                for s in subs:
                    covers_code = field_name == "text"
                    # A `text` substring is only dead if an earlier one also looks at the code.
                    owner = next((i for i, t, code_too in takers if t in s and (code_too or not covers_code)), None)
                    if owner is not None:
                        problems.append(
                            Problem(
                                rule.name,
                                "redundant_pattern",
                                f"{field_name} {s!r} of rule {rule.name!r} is always taken first by rule "
                                f"{pack.rules[owner].name!r}",
                                severity="warning",
                            )
                        )
                    elif any(t != s and t in s for t in subs):
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

    unreachable: set[int] = set()
    for j, later in enumerate(pack.rules):
        for i in range(j):
            earlier = pack.rules[i]
            if earlier.match.is_empty():
                continue  # reported as empty_match already
            if _subsumes(earlier.match, later.match):
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

    solo = Classifier([pack], cache_size=2)
    own_index = {id(r): i for i, r in enumerate(pack.rules)}
    for j, rule in enumerate(pack.rules):
        if j in unreachable:
            continue
        if not rule.examples:
            problems.append(
                Problem(rule.name, "no_examples", f"rule {rule.name!r} has no examples", severity="warning")
            )
            continue
        deciders: set[str] = set()
        for ex in rule.examples:
            cr = solo._decide(
                str(ex.status),
                ex.http_status,
                ex.error_code,
                ex.error_message,
                ex.source,
                ex.operation,
            )
            if ex.status == Status.SUCCESS or cr is None or own_index[id(cr.rule)] >= j:
                break
            deciders.add(cr.rule.name)
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


def test_pack(pack: RulePack, *, base: Sequence[RulePack] = ()) -> list[ExampleFailure]:
    """Every example of every rule, classified with `pack` layered on `base`, against its expectation."""
    clf = Classifier([pack, *base], cache_size=2)
    failures: list[ExampleFailure] = []
    for rule in pack.rules:
        for k, ex in enumerate(rule.examples):
            expected: dict[str, Any] = {
                "rule_name": rule.name,
                "rule_version": pack.id,
                "failure_kind": rule.failure_kind,
                "failure_class": rule.failure_class.value,
            }
            exp = ex.expect
            if exp is not None:
                if exp.rule is not None and exp.rule != rule.name:
                    # Pointing at another rule: its outputs are checked only where spelled out.
                    expected = {"rule_name": exp.rule}
                for name in ("failure_kind", "failure_class", "category", "is_actionable", "retryable"):
                    value = getattr(exp, name)
                    if value is not None:
                        expected[name] = value.value if isinstance(value, FailureClass | Category) else value
            event = ex.event()
            got = clf.classify(**event)
            actual = {
                "rule_name": got.rule_name,
                "rule_version": got.rule_version,
                "failure_kind": got.failure_kind,
                "failure_class": got.failure_class.value,
                "category": str(got.category),
                "is_actionable": got.is_actionable,
                "retryable": got.retryable,
            }
            wrong = {k2: (v, actual[k2]) for k2, v in expected.items() if actual[k2] != v}
            if wrong:
                detail = ", ".join(f"{k2}: expected {e!r}, got {a!r}" for k2, (e, a) in wrong.items())
                failures.append(
                    ExampleFailure(
                        rule=rule.name,
                        index=k,
                        example={k2: v for k2, v in event.items() if v is not None},
                        expected=expected,
                        actual=got,
                        message=f"rule {rule.name!r} example {k}: {detail}",
                    )
                )
    return failures


# Not a pytest test despite its name; test modules import it.
test_pack.__test__ = False  # type: ignore[attr-defined]
