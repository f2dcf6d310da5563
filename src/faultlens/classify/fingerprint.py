"""Error-message fingerprinting: variable masking and online template grouping with stable ids."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PLACEHOLDERS",
    "WILDCARD",
    "Fingerprinter",
    "Template",
    "mask",
    "normalize",
]

STATE_VERSION = 1

# Typed placeholders written by `mask`; WILDCARD is written by the grouping step where the
# members of one group disagree.
WILDCARD = "<*>"
PLACEHOLDERS = ("<URL>", "<EMAIL>", "<UUID>", "<PATH>", "<TS>", "<IP>", "<HOST>", "<HEX>", "<NUM>", "<STR>")

# Bounds so a pathological message (megabyte traceback, minified JSON) costs bounded time.
MAX_LINE_CHARS = 500
MAX_TOKENS = 100
# Caches are cleared when they reach _CACHE_LIMIT entries; only raw messages up to
# _RAW_CACHE_MAX_CHARS are cached verbatim, so the caches stay within tens of MB.
_CACHE_LIMIT = 50_000
_RAW_CACHE_MAX_CHARS = 1024
_PY_TRACEBACK = "Traceback (most recent call last)"
_LINE_BREAK = re.compile(r"[\r\n]")

# ---------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------

# Applied to one whitespace-free token at a time (results are cached per token, which is what
# makes masking cheap: most tokens of a log stream repeat), in a single pass of one alternation:
# at each position the first alternative that matches wins, so more specific kinds come first.
_NB = r"(?<![A-Za-z0-9])"  # digits glued to letters ("eth0", "t761") are identifiers, not numbers
_NA = r"(?![A-Za-z0-9])"
_NUMBER = r"[-+]?\d+(?:[.,]\d+)*"
_UNIT_WORDS = (
    "B", "KB", "kB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB",
    "ms", "us", "µs", "ns", "s", "sec", "secs", "min", "mins", "h", "hr", "hrs",
    "%", "Hz", "kHz", "MHz", "GHz",
)  # fmt: skip
_UNITS = "(?:" + "|".join(sorted((re.escape(u) for u in _UNIT_WORDS), key=len, reverse=True)) + ")"
_SOURCE_EXT = r"(?:java|py|pyx|c|cc|cpp|cxx|h|hpp|go|rs|js|ts|rb|kt|scala|cs|php|swift|m|pl|lua|log)"
# (kind, regex) in priority order.
_KINDS: tuple[tuple[str, str], ...] = (
    ("URL", r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*[^\s\"'<>.,;:)\]}]"),
    ("EMAIL", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # Unix paths need two segments (or a ~/ ./ ../ prefix) so "/" or "and/or" stay text.
    (
        "PATH",
        r"(?<![\w.:/\\])(?:(?:~|\.{1,2})?/[\w.@%+,#-]+(?:/[\w.@%+,#-]*)+|(?:~|\.{1,2})/[\w.@%+,#-]+|"
        r"[A-Za-z]:\\[^\s\"'<>|]*)",
    ),
    (
        "TS",
        _NB + r"(?:\d{4}-\d{2}-\d{2}(?:[T_-]\d{2}[:.]\d{2}[:.]\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?|"
        r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?|\d{1,4}/\d{1,2}/\d{2,4})(?![\w:])",
    ),
    # IPv4 (a port after it stays ":<NUM>"), then IPv6, which must not stop at a colon.
    ("IP", _NB + r"\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)"),
    (
        "IP",
        _NB + r"(?=[0-9a-fA-F:]*[0-9a-fA-F]:)(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}"
        r"(?![\w:])",
    ),
    # A dotted lower-case name followed by a port is a host; "Foo.java:12" is a source location
    # and "state.clipTopAmount:180" a field.
    ("HOST", r"\b(?:[A-Za-z0-9-]+\.)+(?!" + _SOURCE_EXT + r":)[a-z][a-z0-9-]*(?=:\d+\b)"),
    (
        "HEX",
        _NB + r"(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,})" + _NA,
    ),
    ("NUM", r"(?:(?:^|(?<=[(\[{=]))[<>]=?)?" + _NB + _NUMBER + r"(?:" + _UNITS + r"(?![\w%]))?" + _NA),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{kind}{i}>{alt})" for i, (kind, alt) in enumerate(_KINDS)))
_REPLACEMENT = {f"{kind}{i}": f"<{kind}>" for i, (kind, _) in enumerate(_KINDS)}


# Quoted values may hold spaces, so they are masked on the whole line first; the quotes stay
# so the template still shows where the value was. An opening quote glued to a word is an
# apostrophe ("don't"), not a quote.
_QUOTED_RE = re.compile(r"(?<![\w\\])\"[^\"]{1,200}\"|(?<![\w\\])'[^']{1,200}'(?!\w)")


def _quoted(match: re.Match[str]) -> str:
    quote = match.group(0)[0]
    return f"{quote}<STR>{quote}"


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    return _REPLACEMENT[kind] if kind is not None else match.group(0)


# "5.2 KB)" / "160 ms," / "<1 sec": a unit token right after a number folds into the number.
_UNIT_TAILS: dict[str, str] = {
    unit + tail: tail for unit in _UNIT_WORDS for tail in ("", ",", ")", "),", ").", ";", ".", "]", "],")
}
_DIGIT_RE = re.compile(r"\d")
# Every kind needs a digit, a slash, a backslash or an "@"; other tokens skip the big regex.
_MAY_MASK = re.compile(r"[\d/\\@]").search
# Where the kinds match depends on digits only through their count and a "0x" prefix, so all
# tokens of one digit shape ("blk_-1608999687919862906", "blk_-5555912345678901234") share
# one regex scan: its spans are cached per shape and spliced into each token.
_DIGIT_SHAPE = bytes.maketrans(b"23456789", b"11111111")  # bytes.translate is the fast one

_Spans = tuple[tuple[int, int, str], ...]


class _MaskCache:
    """Raw token -> masked token, and digit shape -> masked spans; both bounded."""

    __slots__ = ("shapes", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.shapes: dict[bytes, _Spans] = {}


_shared_cache = _MaskCache()  # for the module-level mask(); each Fingerprinter has its own


def _mask_token(token: str, cache: _MaskCache) -> str:
    if token.isdigit():
        return "<NUM>"
    if _MAY_MASK(token) is None:
        return token
    shape = token.encode("utf-8").translate(_DIGIT_SHAPE)
    spans = cache.shapes.get(shape)
    if spans is None:
        text = shape.decode("utf-8")
        spans = tuple((m.start(), m.end(), _replace(m)) for m in _TOKEN_RE.finditer(text))
        if len(cache.shapes) >= _CACHE_LIMIT:
            cache.shapes.clear()
        cache.shapes[shape] = spans
    if not spans:
        return token
    parts: list[str] = []
    pos = 0
    for start, end, placeholder in spans:
        parts.append(token[pos:start])
        parts.append(placeholder)
        pos = end
    parts.append(token[pos:])
    return "".join(parts)


def normalize(message: str) -> str:
    """Reduce a (possibly multi-line) message to the single bounded line that is fingerprinted.

    A multi-line message keeps its first and last non-blank lines: the first says what failed
    (a log line, or a Java-style exception line) and the last is the final exception of a
    traceback, while the frames in between vary with call paths and line numbers. A Python
    "Traceback (most recent call last):" header is boilerplate, so such a text keeps only its last
    line. Each kept line is cut to MAX_LINE_CHARS and runs of whitespace become one space, so a
    huge message costs bounded time; characters UTF-8 cannot encode (lone surrogates) become "?".
    """
    if not message.isascii():
        try:
            message.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (bytes decoded with surrogateescape) would break hashing and any
            # strict JSON encoder that later stores the templates.
            message = message.encode("utf-8", "replace").decode("utf-8")
    if "\n" in message or "\r" in message:
        # Only C-level scans (strip/find), never a split of a possibly huge text into lines.
        text = message.strip()
        end_first = _LINE_BREAK.search(text)
        if end_first is not None:
            first = _cut(text[: end_first.start()].strip(), MAX_LINE_CHARS)
            start_last = max(text.rfind("\n"), text.rfind("\r")) + 1
            last = _cut(text[start_last:].strip(), MAX_LINE_CHARS)
            message = last if first.startswith(_PY_TRACEBACK) else first + " " + last
    return " ".join(_cut(message, 2 * MAX_LINE_CHARS).split())


def _cut(text: str, limit: int) -> str:
    # Cut at a space when there is one, so no half token (a clipped id, half a word) is left
    # to tell two cuts of one event apart.
    if len(text) <= limit:
        return text
    text = text[: limit + 1]
    space = text.rfind(" ", limit // 2)
    return text[:space] if space > 0 else text[:limit]


def _mask_tokens(text: str, cache: _MaskCache) -> list[str]:
    """Masked tokens of an already normalised line."""
    if '"' in text or "'" in text:
        text = _QUOTED_RE.sub(_quoted, text)
    known = cache.tokens
    out: list[str] = []
    for tok in text.split(" ", MAX_TOKENS)[:MAX_TOKENS]:
        masked = known.get(tok)
        if masked is None:
            masked = _mask_token(tok, cache)
            _bounded_put(known, tok, masked)
        if out:
            tail = _UNIT_TAILS.get(tok)
            if tail is not None and out[-1].endswith("<NUM>"):
                out[-1] += tail
                continue
        out.append(masked)
    return out


def mask(message: str) -> str:
    """Replace the variable parts of `message` by typed placeholders.

    Placeholders: <URL> (scheme://...), <EMAIL>, <UUID>, <PATH> (unix with >= 2 segments or a
    ~/ ./ ../ prefix; Windows drive paths), <TS> (ISO date[-time], hh:mm[:ss[.f]], d/m/y), <IP>
    (IPv4, IPv6; a port stays as :<NUM>), <HOST> (dotted lower-case name before :port), <HEX>
    (0x..., bare hex runs of >= 6 chars mixing digits and letters), <NUM> (integers, decimals,
    versions, signed numbers, quantities with a unit such as "5.2 KB", "<1 sec", "160ms"; digits
    glued to letters as in "eth0" or "t761" are kept), and quoted values become "<STR>" or
    '<STR>' keeping their quotes. The input is first reduced by `normalize`.

    Thread-safe: the only shared state is a cache whose single reads and writes are atomic.
    """
    return " ".join(_mask_tokens(normalize(message), _shared_cache))


# ---------------------------------------------------------------------------------------
# Token classes
# ---------------------------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(r"<(?:URL|EMAIL|UUID|PATH|TS|IP|HOST|HEX|NUM|STR|\*)>")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")
_DIGIT_RUN_RE = re.compile(r"\d+")
# Characters that make a word look like an identifier or a value (dotted names, paths, refs).
_IDENT_CHARS = frozenset("./\\@$#|")
_CONST = 0  # a word: part of the event unless proven otherwise
_VALUE = 1  # identifier/value-looking ("eth0", "com.foo.Bar", "uid=<NUM>"): a mismatch is cheap
_VAR = 2  # nothing but placeholders and punctuation ("(<NUM>)", "<IP>:<NUM>,"): a variable slot


def _classify(token: str) -> int:
    if "<" in token:
        stripped = _PLACEHOLDER_RE.sub("", token)
        if len(stripped) != len(token):
            return _VAR if _ALNUM_RE.search(stripped) is None else _VALUE
    if _DIGIT_RE.search(token) is not None:
        return _VALUE
    core = token.rstrip(".,;:!?)]}'\"")
    return _VALUE if any(c in _IDENT_CHARS for c in core) else _CONST


class _Shape:
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
                cls = _classify(tok)
                known = (cls, _DIGIT_RUN_RE.sub("0", tok) if cls == _VALUE else "")
                _bounded_put(classes_cache, tok, known)
            cls, item = known
            if cls == _VAR and classes and classes[-1] == _VAR:
                tokens[-1] = tokens[-1] + " " + tok
                continue
            if item and item == prev_item:
                if not tokens[-1].endswith(" ..."):
                    tokens[-1] += " ..."
                continue
            prev_item = item
            tokens.append(tok)
            classes.append(cls)
        _name_first(tokens, classes)
        self.tokens = tokens
        self.classes = classes
        self.key = _key(tokens, classes)


def _name_first(tokens: list[str], classes: list[int]) -> None:
    # A dotted name leading a message is nearly always what the message is about (an exception
    # class, a logger, a config key), not a value: "a.b.TimeoutError: x" must not join
    # "a.b.ConnectionError: x". Digits or placeholders still make it a value.
    if classes and classes[0] == _VALUE and "<" not in tokens[0] and _DIGIT_RE.search(tokens[0]) is None:
        classes[0] = _CONST


def _key(tokens: list[str], classes: list[int]) -> str:
    for tok, cls in zip(tokens, classes, strict=True):
        if cls == _CONST:
            return tok
    return ""


def _covers(general: list[str], specific: list[str]) -> bool:
    """True when every message of `specific` also fits `general` token for token."""
    if len(general) != len(specific):
        return False
    return all(g in (t, WILDCARD) for g, t in zip(general, specific, strict=True))


def _bounded_put(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()  # crude, but the hot entries come back within a few messages
    cache[key] = value


# ---------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A message template: `id` is stable for the life of the group, `text` may generalise."""

    id: str
    text: str


# Similarity knobs: one setting for every log source. Aligning a message with a template costs,
# per position: nothing for equal tokens, WILDCARD_COST under a learned <*> or between two
# variable slots, SOFT_COST when both sides look like values, HARD_COST when a word is involved;
# a variable slot present on one side only is skipped for SKIP_COST (variables may be absent
# or span several tokens). A message joins the cheapest group of its key whose cost is at most
# MAX_COST_RATIO x the number of its non-variable tokens (a longer message tolerates more
# differing words; variable slots carry no evidence either way), provided at least one
# non-variable token agrees exactly.
HARD_COST = 1.0
SOFT_COST = 0.6
WILDCARD_COST = 0.1
SKIP_COST = 0.1
MAX_COST_RATIO = 0.25

_DIAG, _SKIP_MSG, _SKIP_TPL = 1, 2, 3


def _sub_cost(t: str, tc: int, m: str, mc: int) -> float:
    if t == m:
        return 0.0
    if t == WILDCARD or (tc == _VAR and mc == _VAR):
        return WILDCARD_COST
    if tc != _CONST and mc != _CONST:
        return SOFT_COST
    return HARD_COST


class _Group:
    __slots__ = ("classes", "count", "first_text", "id", "key", "merged_into", "seq", "template", "tokens")

    def __init__(self, gid: str, seq: int, tokens: list[str], classes: list[int]) -> None:
        self.id = gid
        self.seq = seq
        self.tokens = tokens
        self.classes = classes
        self.count = 0
        self.first_text = " ".join(tokens)
        self.key = _key(tokens, classes)
        self.merged_into: _Group | None = None
        self.template = Template(gid, self.first_text)

    def refresh(self) -> None:
        self.template = Template(self.id, " ".join(self.tokens))


def _template_id(text: str, taken: Callable[[str], bool]) -> str:
    # Hash of the group's first text, so a fresh process fed the same first message derives the
    # same id. A clash (same first text in a separate group, or the id of a merged-away group)
    # gets a deterministic suffix.
    salt = 0
    while True:
        seed = text if salt == 0 else f"{text}\x00{salt}"
        tid = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
        if not taken(tid):
            return tid
        salt += 1


def _positional(group: _Group, shape: _Shape, limit: float) -> float:
    """Cost of the one-to-one alignment of equally long token lists (the common case)."""
    cost = 0.0
    agree = False
    tcls = group.classes
    mcls = shape.classes
    for j, (t, m) in enumerate(zip(group.tokens, shape.tokens, strict=True)):
        if t == m:
            if mcls[j] != _VAR:
                agree = True
            continue
        cost += _sub_cost(t, tcls[j], m, mcls[j])
        if cost > limit:
            return cost
    return cost if agree or (_CONST not in mcls and _VALUE not in mcls) else limit + 1.0


def _aligned(group: _Group, shape: _Shape, limit: float) -> tuple[float, list[int]]:
    """Cheapest alignment where only variable slots may be left unpaired; returns cost, ops."""
    t, tc = group.tokens, group.classes
    m, mc = shape.tokens, shape.classes
    a, b = len(m), len(t)
    inf = float("inf")
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
                c = d + _sub_cost(t[j], tc[j], m[i], mc[i])
                if c < nxt[j + 1]:
                    nxt[j + 1] = c
                    back[i + 1][j + 1] = _DIAG
            if i < a and mc[i] == _VAR and d + SKIP_COST < nxt[j]:
                nxt[j] = d + SKIP_COST
                back[i + 1][j] = _SKIP_MSG
            if j < b and tc[j] == _VAR and d + SKIP_COST < row[j + 1]:
                row[j + 1] = d + SKIP_COST
                back[i][j + 1] = _SKIP_TPL
    total = cost[a][b]
    if total > limit:
        return total, []
    ops: list[int] = []
    i, j = a, b
    agree = False
    while i or j:
        op = back[i][j]
        ops.append(op)
        if op == _DIAG:
            i -= 1
            j -= 1
            if t[j] == m[i] and mc[i] != _VAR:
                agree = True
        elif op == _SKIP_MSG:
            i -= 1
        else:
            j -= 1
    if not agree and (_CONST in mc or _VALUE in mc):
        return limit + 1.0, []
    ops.reverse()
    return total, ops


class Fingerprinter:
    """Online template grouping of error messages.

    Messages are normalised and masked; each group is keyed by its first word token. A message
    is aligned with the templates of its key (one-to-one when the lengths agree, otherwise by a
    small edit alignment in which only variable slots may be skipped) and joins the cheapest one
    within the length-adaptive cost bound, generalising disagreeing positions to <*>; otherwise
    it founds a new group. A group's id is a 16-hex hash of its first text and never changes.
    When a template generalises so far that it covers another group's template, the two merge
    under the older id; `resolve` maps the other id to the survivor.

    Exact repeats of a raw or masked message are answered from caches without re-aligning.

    Thread-safety: an instance may be shared by threads. Learning and lookups run under an
    internal lock; only an exact repeat of an already seen message is answered without it, so
    under concurrent use a member count (export_state's "count") may miss an increment. Not
    shared across processes: give each its own instance and move state with
    export_state/from_state.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._groups: dict[str, _Group] = {}
        self._aliases: dict[str, str] = {}
        self._index: dict[str, list[_Group]] = {}
        self._seq = 0
        self._raw_cache: dict[str, _Group] = {}
        self._masked_cache: dict[str, _Group] = {}
        self._mask_cache = _MaskCache()
        self._class_cache: dict[str, tuple[int, str]] = {}

    # -- public API --------------------------------------------------------------------

    def add(self, message: str) -> Template:
        """Learn from `message` and return the template it now belongs to."""
        # An exact repeat changes no template, so it is answered without the lock: a dict read
        # is atomic, and the only shared write is the (informational) member count.
        group = self._raw_cache.get(message)
        if group is not None:
            while group.merged_into is not None:
                group = group.merged_into
            group.count += 1
            return group.template
        with self._lock:
            group = self._raw_cache.get(message)
            if group is None:
                masked = _mask_tokens(normalize(message), self._mask_cache)
                text = " ".join(masked)
                group = self._masked_cache.get(text)
                if group is None:
                    shape = _Shape(masked, self._class_cache)
                    group, ops = self._best(shape)
                    group = self._create(shape) if group is None else self._absorb(group, shape, ops)
                    _bounded_put(self._masked_cache, text, group)
                if len(message) <= _RAW_CACHE_MAX_CHARS:
                    _bounded_put(self._raw_cache, message, group)
            while group.merged_into is not None:
                group = group.merged_into
            group.count += 1
            return group.template

    def match(self, message: str) -> Template | None:
        """Return the template `message` would join, without learning; None if it is new."""
        with self._lock:
            group = self._raw_cache.get(message)
            if group is None:
                masked = _mask_tokens(normalize(message), self._mask_cache)
                group = self._masked_cache.get(" ".join(masked))
                if group is None:
                    group, _ = self._best(_Shape(masked, self._class_cache))
                    if group is None:
                        return None
            while group.merged_into is not None:
                group = group.merged_into
            return group.template

    def templates(self) -> list[Template]:
        """All current templates, oldest group first."""
        with self._lock:
            return [g.template for g in sorted(self._groups.values(), key=lambda g: g.seq)]

    def resolve(self, template_id: str) -> str:
        """The id under which a template lives now (differs only for a group merged away)."""
        with self._lock:
            hops = 0
            while template_id in self._aliases and hops <= len(self._aliases):
                template_id = self._aliases[template_id]
                hops += 1
            return template_id

    def export_state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot; `from_state` rebuilds an equivalent instance."""
        with self._lock:
            return {
                "version": STATE_VERSION,
                "seq": self._seq,
                "groups": [
                    {"id": g.id, "seq": g.seq, "tokens": list(g.tokens), "first_text": g.first_text,
                     "count": g.count}
                    for g in sorted(self._groups.values(), key=lambda g: g.seq)
                ],
                "aliases": dict(self._aliases),
            }  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Fingerprinter:
        """Rebuild a Fingerprinter from `export_state` output (the caches start empty)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported fingerprint state version: {state.get('version')!r}")
        fp = cls()
        for raw in state["groups"]:
            tokens = [str(t) for t in raw["tokens"]]
            classes = [_classify(t) for t in tokens]
            _name_first(tokens, classes)
            group = _Group(str(raw["id"]), int(raw["seq"]), tokens, classes)
            group.count = int(raw["count"])
            group.first_text = str(raw["first_text"])
            fp._groups[group.id] = group
            fp._index.setdefault(group.key, []).append(group)
        fp._aliases = {str(k): str(v) for k, v in state.get("aliases", {}).items()}
        fp._seq = max([int(state.get("seq", 0)), *(g.seq for g in fp._groups.values())])
        return fp

    def __len__(self) -> int:
        with self._lock:
            return len(self._groups)

    # -- internals ---------------------------------------------------------------------

    def _create(self, shape: _Shape) -> _Group:
        self._seq += 1
        group = _Group("", self._seq, list(shape.tokens), list(shape.classes))
        group.id = _template_id(group.first_text, lambda tid: tid in self._groups or tid in self._aliases)
        group.refresh()
        self._groups[group.id] = group
        self._index.setdefault(group.key, []).append(group)
        return group

    def _best(self, shape: _Shape) -> tuple[_Group | None, list[int]]:
        candidates = self._index.get(shape.key)
        if not candidates:
            return None, []
        n = len(shape.tokens)
        limit = MAX_COST_RATIO * (n - shape.classes.count(_VAR))
        has_var = _VAR in shape.classes
        best: _Group | None = None
        best_ops: list[int] = []
        best_cost = limit
        for group in candidates:
            size = len(group.tokens)
            if size == n:
                cost = _positional(group, shape, best_cost)
                ops: list[int] = []
                if cost > best_cost and (has_var or _VAR in group.classes):
                    cost, ops = _aligned(group, shape, best_cost)
            elif has_var or _VAR in group.classes:
                cost, ops = _aligned(group, shape, best_cost)
            else:
                continue
            # Ties go to the older group: it is the one the stream has been using.
            if cost < best_cost or (cost == best_cost and best is None):
                best, best_cost, best_ops = group, cost, ops
                if cost == 0.0:
                    break
        return best, best_ops

    def _absorb(self, group: _Group, shape: _Shape, ops: list[int]) -> _Group:
        """Generalise `group` to cover `shape` along `ops` (empty: one-to-one)."""
        t, tc = group.tokens, group.classes
        m = shape.tokens
        tokens: list[str] = []
        classes: list[int] = []
        if not ops:
            ops = [_DIAG] * len(t)
        i = j = 0
        for op in ops:
            if op == _DIAG:
                same = t[j] == m[i]
                tokens.append(t[j] if same else WILDCARD)
                classes.append(tc[j] if same else _VAR)
                i += 1
                j += 1
            elif op == _SKIP_MSG:
                tokens.append(WILDCARD)
                classes.append(_VAR)
                i += 1
            else:
                tokens.append(WILDCARD)
                classes.append(_VAR)
                j += 1
        if tokens == t:
            return group
        group.tokens = tokens
        group.classes = classes
        group.refresh()
        key = _key(tokens, classes)
        if key != group.key:
            self._index[group.key].remove(group)
            group.key = key
            self._index.setdefault(key, []).append(group)
        return self._merge_converged(group)

    def _merge_converged(self, group: _Group) -> _Group:
        """Fold the groups `group` now covers (templates converged) into the oldest of them.

        The survivor keeps the oldest id and takes the generalised template; the other ids stay
        resolvable through `resolve`.
        """
        pool = self._index[group.key]
        same = [g for g in pool if g is not group and _covers(group.tokens, g.tokens)]
        if not same:
            return group
        ordered = sorted([group, *same], key=lambda g: g.seq)
        keep = ordered[0]
        if keep is not group:
            keep.tokens, keep.classes = group.tokens, group.classes
            keep.refresh()
        for other in ordered[1:]:
            keep.count += other.count
            pool.remove(other)
            del self._groups[other.id]
            self._aliases[other.id] = keep.id
            other.merged_into = keep
        return keep
