"""Test helpers: event builders and timestamps relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"source": "codex-proxy", "status": "failure", "occurred_at": ago(minutes=5)}
    base.update(fields)
    return base


# Made-up words: one per code, letters only (masking keeps them), so messages made of them never share a template.
_SYLLABLES = ["ka", "ri", "mo", "te", "lu", "sa", "vo", "ne", "pi", "da", "gu", "ze", "fo", "ha", "ji"]


def distinct_words(k: int) -> str:
    """4 to 6 made-up words of five syllables that no other k's words share."""
    words = (k * 8 + i for i in range(4 + k % 3))
    return " ".join("".join(_SYLLABLES[code // 15**j % 15] for j in range(5)) for code in words)


def distinct_message(k: int, *, one_key: bool) -> str:
    """A failure message whose template no other k's shares: all under one group key ("Error"), or a key each (its
    first made-up word)."""
    words = distinct_words(k)
    return f"Error {words} gave up on item {k}" if one_key else f"{words} gave up on item {k}"
