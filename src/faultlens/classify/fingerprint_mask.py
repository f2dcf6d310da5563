"""Fingerprint masking: a message reduced to one bounded line, its variable parts typed placeholders."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "MAX_LINE_CHARS",
    "MAX_TOKENS",
    "PLACEHOLDERS",
    "MaskCache",
    "bounded_put",
    "digit_shape",
    "mask",
    "mask_tokens",
    "normalize",
    "uniform_mask",
]

# Typed placeholders written by `mask`.
PLACEHOLDERS = ("<URL>", "<EMAIL>", "<UUID>", "<PATH>", "<TS>", "<IP>", "<HOST>", "<HEX>", "<NUM>", "<ID>", "<STR>")

# Bounds so a pathological message (megabyte traceback, minified JSON) costs bounded time.
MAX_LINE_CHARS = 500
MAX_TOKENS = 100
# Caches are cleared when they reach CACHE_LIMIT entries; only raw messages up to
# _RAW_CACHE_MAX_CHARS are cached verbatim, so the caches stay within tens of MB.
CACHE_LIMIT = 50_000
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
_NUMBER = r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?"
# Go-style compound durations: "1h30m", "2m3.5s".
_COMPOUND_DURATION = r"(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+"
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
        _NB
        + r"(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}|[a-f]{8,}|[A-F]{8,})"
        + _NA,
    ),
    ("NUM", _NB + _COMPOUND_DURATION + _NA),
    ("NUM", r"(?:(?:^|(?<=[(\[{=]))[<>]=?)?" + _NB + _NUMBER + r"(?:" + _UNITS + r"(?![\w%]))?" + _NA),
    # Generated identifiers mix letters and digits ("jA9J1UvC004306", "KB2928562"): 8+ characters,
    # 3+ digits. Shorter or digit-poor names ("eth0", "x86", "Win32Exception") stay words.
    ("ID", _NB + r"(?=[A-Za-z0-9]*[A-Za-z])(?=(?:[A-Za-z]*\d){3})[A-Za-z0-9]{8,}" + _NA),
)
_TOKEN_RE = re.compile("|".join(f"(?P<{kind}{i}>{alt})" for i, (kind, alt) in enumerate(_KINDS)))
_REPLACEMENT = {f"{kind}{i}": f"<{kind}>" for i, (kind, _) in enumerate(_KINDS)}


# A quoted value of a key (key="a b", Error: 'x') may hold spaces, so it is masked on the whole
# line first; the quotes stay so the template still shows where the value was. A quoted text
# standing on its own ("GET /v2/x HTTP/1.1", 'hlt') is part of the sentence and is masked token
# by token: its first word often names the event. An opening quote glued to a word is an
# apostrophe ("don't"), not a quote.
_QUOTED_RE = re.compile(r"(?:(?<==)|(?<=:)|(?<=: ))(?:\"[^\"]{1,200}\"|'[^']{1,200}'(?!\w))")


# Dates written with day and month names span several tokens (ctime "Sun Jul 10 03:55:15 2005",
# syslog "Jul 10 03:55:15", RFC 2822 "Sun, 10 Jul 2005 03:55:15 +0000"), so they are masked on the
# whole line too; otherwise "Sun"/"Mon" and "Jun"/"Jul" would read as words of the event.
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]{0,6}"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
_NAMED_DATE_RE = re.compile(
    rf"\b(?:(?:{_DAY},? +)?{_MONTH} +\d{{1,2}},?(?: +\d{{4}})? +{_CLOCK}(?: +\d{{4}})?"
    rf"|{_DAY},? +\d{{1,2}} +{_MONTH} +\d{{4}}(?: +{_CLOCK})?(?: +[+-]\d{{4}}| +[A-Z]{{2,4}}\b)?)(?![\w:])"
)
_MONTH_NAME = re.compile(_MONTH).search


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
# Every kind needs a digit, a slash, a backslash, an "@" or a run of 8 hex letters ("ffffffff");
# other tokens skip the big regex.
_MAY_MASK = re.compile(r"[\d/\\@]|[a-f]{8}|[A-F]{8}").search
# Where the kinds match depends on digits only through their count and a "0x" prefix, so all
# tokens of one digit shape ("blk_-1608999687919862906", "blk_-5555912345678901234") share
# one regex scan: its spans are cached per shape and spliced into each token.
_DIGIT_SHAPE = bytes.maketrans(b"23456789", b"11111111")  # bytes.translate is the fast one

_Spans = tuple[tuple[int, int, str], ...]


class MaskCache:
    """Raw token -> masked token, and digit shape -> masked spans; both bounded."""

    __slots__ = ("shapes", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.shapes: dict[bytes, _Spans] = {}


_shared_cache = MaskCache()  # for the module-level mask(); each Fingerprinter has its own


def _mask_token(token: str, cache: MaskCache) -> str:
    if token.isdigit():
        return "<NUM>"
    if _MAY_MASK(token) is None:
        return token
    shape = token.encode("utf-8").translate(_DIGIT_SHAPE)
    spans = cache.shapes.get(shape)
    if spans is None:
        text = shape.decode("utf-8")
        spans = tuple((m.start(), m.end(), _replace(m)) for m in _TOKEN_RE.finditer(text))
        if len(cache.shapes) >= CACHE_LIMIT:
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


def mask_tokens(text: str, cache: MaskCache) -> list[str]:
    """Masked tokens of an already normalised line."""
    if '"' in text or "'" in text:
        text = _QUOTED_RE.sub(_quoted, text)
    if ":" in text and _MONTH_NAME(text) is not None:
        text = _NAMED_DATE_RE.sub("<TS>", text)
    known = cache.tokens
    out: list[str] = []
    for tok in text.split(" ", MAX_TOKENS)[:MAX_TOKENS]:
        masked = known.get(tok)
        if masked is None:
            masked = _mask_token(tok, cache)
            bounded_put(known, tok, masked)
        if out:
            tail = _UNIT_TAILS.get(tok)
            if tail is not None and out[-1].endswith("<NUM>"):
                out[-1] += tail
                continue
        out.append(masked)
    return out


# Masking treats every digit alike except a zero before "x" ("0x1f"), so the messages that differ
# only in digit values mask alike, up to the digits masking keeps ("eth0"). A message's digit
# shape names that class: a whole-line cache keyed on it skips tokenising and masking.
_ALL_DIGITS = str.maketrans("0123456789", "1111111111")
_NONZERO_DIGITS = str.maketrans("23456789", "11111111")


def digit_shape(message: str) -> str:
    """`message` with its digits made uniform (zeros stay when the message holds a "0x")."""
    if "0x" in message or "0X" in message:
        return message.translate(_NONZERO_DIGITS)
    return message.translate(_ALL_DIGITS)


def uniform_mask(shape: str, masked: str, cache: MaskCache) -> bool:
    """True when every message of digit shape `shape` masks to `masked` (masking kept none of their digits).

    `masked` is the masked text of one such message; two probes with different digits must agree with it.
    """
    if "1" not in shape:
        return True  # no digit varies within this shape
    one = " ".join(mask_tokens(normalize(shape), cache))
    return one == masked and " ".join(mask_tokens(normalize(shape.replace("1", "2")), cache)) == masked


def mask(message: str) -> str:
    """Replace the variable parts of `message` by typed placeholders.

    Placeholders: <URL> (scheme://...), <EMAIL>, <UUID>, <PATH> (unix with >= 2 segments or a
    ~/ ./ ../ prefix; Windows drive paths), <TS> (ISO date[-time], hh:mm[:ss[.f]], d/m/y, and
    dates with day or month names: ctime, syslog, RFC 2822), <IP> (IPv4, IPv6; a port stays as
    :<NUM>), <HOST> (dotted lower-case name before :port), <HEX> (0x..., bare hex runs of >= 6
    chars mixing digits and letters, runs of >= 8 hex letters such as "ffffffff"), <NUM>
    (integers, decimals, versions, signed numbers, exponents, quantities with a unit such as
    "5.2 KB", "3.4 MiB", "<1 sec", "160ms", compound durations such as "1h30m"; digits glued to
    letters as in "eth0" or "t761" are kept), <ID> (generated identifiers: >= 8 letters and
    digits, >= 3 of them digits, as "jA9J1UvC004306"), and quoted values of a key (key="a b",
    Error: 'x') become "<STR>" or '<STR>' keeping their quotes; a quoted text standing on its own
    is masked token by token. The input is first reduced by `normalize`.

    Thread-safe: the only shared state is a cache whose single reads and writes are atomic.
    """
    return " ".join(mask_tokens(normalize(message), _shared_cache))


def bounded_put(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # crude, but the hot entries come back within a few messages
    cache[key] = value
