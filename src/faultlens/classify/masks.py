"""The masks that fold ids, numbers and hashes into "0", and which substrings provably survive them."""

from __future__ import annotations

import re

__all__ = [
    "CHUNK_MASK_RE",
    "HEX_LETTERS",
    "MESSAGE_MASK_RE",
    "mask_stable",
    "mask_stable_run",
    "masked_guard",
    "stable_under_message_mask",
]

# Ids, numbers and hashes make most chunks of a message unique. A chunk's verdict is also cached
# under its mask: whole hex words that hold a digit, and every other digit run, become "0".
CHUNK_MASK_RE = re.compile(r"\b[0-9a-f]*\d[0-9a-f]*\b|\d+")
_FIRST_RUN_RE = re.compile(r"^\w+")
_LAST_RUN_RE = re.compile(r"\w+$")
HEX_LETTERS = frozenset("abcdef")
_HEXDIGITS = frozenset("0123456789abcdef")

# The whole-message mask a decision is cached under. Every replaced region starts with an ASCII
# digit and is either a run of them or one plus the hex characters after it up to the end of its
# word, so the regex engine only ever starts at digits (a charset prefix scan) and most ids,
# numbers and hashes of a message fold into "0". (The possessive quantifiers only save the
# backtracking into hex runs that could never end a word.) stable_under_message_mask and
# masked_guard say what the mask provably keeps.
MESSAGE_MASK_RE = re.compile(r"[0-9](?:[0-9a-f]*+(?!\w)|[0-9]*+)")


def stable_under_message_mask(pattern: str) -> bool:
    """Whether `pattern in text` equals `pattern in MESSAGE_MASK_RE.sub("0", text)` for every text.

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
    return not (first and set(first.group()) <= HEX_LETTERS)


def masked_guard(pattern: str) -> str | None:
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
    for m in MESSAGE_MASK_RE.finditer(rest):
        out.append(rest[pos : m.start()])
        out.append("0")
        pos = m.end()
    out.append(rest[pos:])
    return "".join(out)


def mask_stable_run(run: str) -> bool:
    """A run no mask can create or destroy: no digit, and not made of hex letters only."""
    return not any(ch.isdigit() for ch in run) and not set(run) <= HEX_LETTERS


def mask_stable(pattern: str) -> bool:
    """Whether `pattern in chunk` is the same for every chunk with the same mask.

    A digit-free substring cannot overlap a masked digit run; it can only overlap a masked hex
    word through a run of hex letters at its own start or end, so those must not be hex-only.
    """
    if any(ch.isdigit() for ch in pattern):
        return False
    first, last = _FIRST_RUN_RE.search(pattern), _LAST_RUN_RE.search(pattern)
    return not (first and set(first.group()) <= HEX_LETTERS) and not (last and set(last.group()) <= HEX_LETTERS)
