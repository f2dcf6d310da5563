"""Decision text: the lowercased part of an event's message that rules look at (no frames, no URL paths)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

__all__ = ["decision_text"]

_MAX_TEXT = 8192
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
