"""The one cursor format: what it issues reads back; anything else is a 400 naming the cursor, never a 500."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faultlens.cursors import LIMIT, decode_keyed, decode_numbers, encode_cursor
from faultlens.errors import InvalidRequest


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@given(st.integers(0, LIMIT - 1), st.integers(0, LIMIT - 1))
def test_number_cursors_round_trip(a: int, b: int) -> None:
    assert decode_numbers(encode_cursor(a, b), numbers=2) == (a, b)


@given(st.integers(0, LIMIT - 1), st.text())
def test_keyed_cursors_round_trip_any_key(n: int, key: str) -> None:
    # Redis keys hold ":" (rq:job:1), newlines and any Unicode; the key is the cursor's tail, read as written.
    assert decode_keyed(encode_cursor(n, text=key)) == (n, key)


def test_the_event_cursor_is_the_text_it_always_was() -> None:
    # Cursors issued before the formats were unified still read back.
    assert encode_cursor(1_764_000_000_000, 42) == _raw("1764000000000:42")
    assert decode_numbers(_raw("9223372036854775807:9223372036854775807"), numbers=2) == (LIMIT - 1, LIMIT - 1)


FORGED_NUMBERS = [
    "9223372036854775808:1",
    "1:9223372036854775808",
    "1:99999999999999999999999",
    "-1:5",
    "+1:5",
    " 1:5",
    "1_0:5",
    "1:5\n",
    "1:2:3",
    "1",
    "",
    "١:5",
    "1:k",
]
FORGED_KEYED = [
    "9223372036854775808:k",
    "-5:k",
    "k",
    "1",  # no key at all
    '[true,"k"]',  # the task cursors' former JSON form
    '[5,"k"]',
    "١:k",
]


def _refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(InvalidRequest) as caught:
        call()
    assert caught.value.message == "cursor is not one this server issued"
    assert [p["name"] for p in caught.value.details["params"]] == ["cursor"]


@pytest.mark.parametrize("raw", FORGED_NUMBERS)
def test_forged_number_cursors_are_refused(raw: str) -> None:
    _refused(lambda: decode_numbers(_raw(raw) or "AAAA", numbers=2))


@pytest.mark.parametrize("raw", FORGED_KEYED)
def test_forged_keyed_cursors_are_refused(raw: str) -> None:
    _refused(lambda: decode_keyed(_raw(raw)))


@pytest.mark.parametrize("cursor", ["%%%", "A", "_w", base64.urlsafe_b64encode(b"\xff\xfe:1").decode()])
def test_cursors_that_are_not_base64_text_are_refused(cursor: str) -> None:
    _refused(lambda: decode_numbers(cursor, numbers=2))
    _refused(lambda: decode_keyed(cursor))
