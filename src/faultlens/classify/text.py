"""Decision text: the lowercased part of an event's message that rules look at, and how a literal is found in it."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Literal", "char_kind", "decision_text", "token_in"]

_MAX_TEXT = 8192
# Starts with the literal "://" so the regex engine jumps from one URL to the next.
_URL_PATH_RE = re.compile(r"(://[^/\s\"'<>()]+)[^\s\"'<>()]*")
# re.sub(r"\1", ...) expands its template in Python per match; a C-level getter does the same.
_GROUP_1: Callable[[re.Match[str]], str] = operator.itemgetter(1)


def _names(line: str, frames: tuple[str, ...]) -> bool:
    """Whether a frame line names one of a pack's frame_evidence strings."""
    low = line.lower()
    return any(f in low for f in frames)


def _strip_stack(message: str, frames: tuple[str, ...] = ()) -> str:
    """Keep the lines of a stack trace that say what failed, dropping frames except those naming `frames`."""
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
                # The innermost frame (the last) says where it was raised; outer ones are on every request's path.
                if frames and _names(lines[last], frames):
                    tail.insert(0, lines[last].strip())
                if frames:
                    # A log line before the traceback is the logger's own message ("Error handling request /x"):
                    # read with frame_evidence, so a pack written before it decides exactly as it did.
                    start = next(i for i, ln in enumerate(lines) if "Traceback (most recent call last)" in ln)
                    tail = [ln for ln in lines[:start] if ln.strip()] + tail
                return "\n".join(tail)
    kept: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            stripped = line.lstrip()
            if stripped.startswith("at ") or (stripped.startswith("... ") and stripped.endswith(" more")):
                if frames and _names(stripped, frames):
                    kept.append(stripped)
                continue
        if line.startswith("goroutine ") and line.rstrip().endswith("]:"):
            break  # Go panics: the goroutine dumps after this are frames only
        if line.startswith("--- End of "):
            continue
        kept.append(line)
    return "\n".join(kept)


def decision_text(message: str | None, frames: tuple[str, ...] = ()) -> str:
    """The lowercased part of a message that rules look at.

    Stack frames are dropped (a frame path like ``timeout_handler.py`` is not evidence) unless they name
    one of `frames` (the packs' frame_evidence; a Python traceback's innermost frame only), URLs keep
    their host but lose their path (``/v1/rate-limits/7`` is not a rate limit), and the
    ``, client: ..., request: "GET /..."`` tail of an nginx error line is cut so a URL cannot match.
    A huge message keeps only its head and tail, which say what failed, to bound the cost per event.
    """
    if not message:
        return ""
    if "\n" in message:
        message = _strip_stack(message, frames)
    if len(message) > _MAX_TEXT:
        message = message[: _MAX_TEXT // 2] + "\n" + message[-_MAX_TEXT // 2 :]
    cut = message.find(", client: ")
    if cut > 0 and (", server: " in message or ", request: " in message or ", upstream: " in message):
        message = message[:cut]
    if "://" in message:
        message = _URL_PATH_RE.sub(_GROUP_1, message)
    return message.lower()


# ------------------------------------------------------------------------------ literals and tokens

_LETTER, _DIGIT = "L", "D"
# Scripts written without spaces between words start here (CJK radicals, kana, ideographs, Hangul ...):
# their letters never make a token boundary fail, so 超时 is found inside 连接超时.
_SPACELESS_FROM = "\u2e80"


def char_kind(ch: str) -> str:
    """The kind of a character: "D" a digit, "L" a letter of a script written with spaces, "" anything else.

    A token is a run of one kind: "errno111" is the tokens "errno" and "111", "read_timeout" is
    "read" and "timeout", "InternalServerErrorHandler" is one token. CJK letters are "" (no boundary
    needed around them); every character the message masks fold into "0" is a digit or a hex letter
    inside a run that starts with a digit, so a mask never changes the kind next to a mask-stable literal.
    """
    if ch.isdigit():
        return _DIGIT
    if ch.isalpha() and ch < _SPACELESS_FROM:
        return _LETTER
    return ""


def token_in(core: str, left: str, right: str, text: str) -> bool:
    """Whether `core` occurs in `text` with a token boundary on each side whose kind is given.

    `left`/`right` are the kind of the literal's own edge character that must not continue into the
    text ("" when that side needs no boundary): the neighbouring character must be of another kind.
    """
    i = text.find(core)
    if i < 0:
        return False
    n = len(core)
    size = len(text)
    while i >= 0:
        if (not left or i == 0 or char_kind(text[i - 1]) != left) and (
            not right or i + n >= size or char_kind(text[i + n]) != right
        ):
            return True
        i = text.find(core, i + 1)
    return False


@dataclass(frozen=True, slots=True)
class Literal:
    """A pack's `error_message`/`text` string as the classifier looks for it.

    In a `literal_match: token` pack, a literal's letter or digit edge must meet a token boundary
    (`servererror` is not in "internalservererrorhandler", `111` is not in "11111") unless the literal
    opens that end with `*` (`*timeoutexception` is in "java.net.sockettimeoutexception"). Edges of
    punctuation, whitespace or CJK need nothing. In a `substring` pack a literal is found anywhere.
    `key` names the literal in the classifier's index: the string itself for a substring literal.
    """

    key: str
    core: str
    left: str
    right: str

    @classmethod
    def of(cls, literal: str, *, token: bool) -> Literal:
        if not token:
            return cls(literal, literal, "", "")
        open_left, open_right = literal.startswith("*"), literal.endswith("*")
        core = literal.strip("*")
        left = "" if open_left else char_kind(core[0])
        right = "" if open_right else char_kind(core[-1])
        if not left and not right:
            return cls(core, core, "", "")  # nothing to check: the same as the substring
        # NUL never occurs in a pack literal, so token keys cannot collide with substring ones.
        return cls(f"\x00{left}{right}\x00{core}", core, left, right)

    def found_in(self, text: str) -> bool:
        if not (self.left or self.right):
            return self.core in text
        return token_in(self.core, self.left, self.right, text)
