"""Page cursors: the one opaque format every cursor-paged route issues, and its strict reading back."""

from __future__ import annotations

import base64
import re

from faultlens.errors import InvalidRequest, param_details

# A cursor is URL-safe base64 (unpadded) of decimal integers joined by ":", then optionally ":" and a text (a Redis
# key, which may hold ":" itself). Each integer is one a BIGINT column holds (0 <= x < 2**63): a forged one outside
# that range would fail in the database driver (SQLite's OverflowError, PostgreSQL's NumericValueOutOfRange) as a
# 500 rather than as the client's mistake. Digits are ASCII only: int() would take "١" or "1_0".
LIMIT = 2**63
NOT_ISSUED = "cursor is not one this server issued"
_NUMBER = r"(\d{1,19})"


def encode_cursor(*numbers: int, text: str | None = None) -> str:
    """The cursor for `numbers` and an optional trailing text. Only numbers in 0 <= n < 2**63 read back."""
    raw = ":".join(map(str, numbers)) + ("" if text is None else ":" + text)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _not_issued() -> InvalidRequest:
    return InvalidRequest(NOT_ISSUED, details=param_details("cursor", NOT_ISSUED))


def _fields(cursor: str, numbers: int, *, text: bool) -> re.Match[str]:
    pattern = ":".join([_NUMBER] * numbers) + (":(.*)" if text else "")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise _not_issued() from None
    match = re.fullmatch(pattern, raw, re.ASCII | re.DOTALL)
    if match is None or any(int(match[i]) >= LIMIT for i in range(1, numbers + 1)):
        raise _not_issued()
    return match


def decode_numbers(cursor: str, *, numbers: int) -> tuple[int, ...]:
    """The `numbers` integers of a cursor encode_cursor made without a text; a 400 for anything else."""
    match = _fields(cursor, numbers, text=False)
    return tuple(int(match[i]) for i in range(1, numbers + 1))


def decode_keyed(cursor: str) -> tuple[int, str]:
    """The (integer, text) of a cursor encode_cursor(n, text=...) made; a 400 for anything else."""
    match = _fields(cursor, 1, text=True)
    return int(match[1]), match[2]
