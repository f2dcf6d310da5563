"""Window decomposition into day, hour and raw pieces: exact cover, no overlap, biggest grains inside."""

from __future__ import annotations

import itertools
import random

from faultlens.store.rollups import DAY_MS, HOUR_MS, decompose


def _check_cover(start: int, end: int, pieces: list[tuple[str, int, int]]) -> None:
    assert pieces[0][1] == start and pieces[-1][2] == end
    for (_, _, hi), (_, lo, _) in itertools.pairwise(pieces):
        assert hi == lo
    for kind, lo, hi in pieces:
        assert lo < hi
        if kind == "hour":
            assert lo % HOUR_MS == 0 and hi % HOUR_MS == 0
        if kind == "day":
            assert lo % DAY_MS == 0 and hi % DAY_MS == 0
        if kind == "raw":
            assert hi - lo < HOUR_MS


def test_ninety_days_unaligned() -> None:
    end = 1_763_812_345_678
    start = end - 90 * DAY_MS
    pieces = decompose(start, end)
    _check_cover(start, end, pieces)
    assert [p[0] for p in pieces] == ["raw", "hour", "day", "hour", "raw"]


def test_short_window_is_raw() -> None:
    assert decompose(1000, 2000) == [("raw", 1000, 2000)]


def test_aligned_window_has_no_raw_edges() -> None:
    start = 20_000 * DAY_MS
    pieces = decompose(start, start + 3 * DAY_MS)
    assert pieces == [("day", start, start + 3 * DAY_MS)]


def test_hours_only_when_days_disabled() -> None:
    start = 20_000 * DAY_MS + 5 * 60_000
    pieces = decompose(start, start + 3 * DAY_MS, days=False)
    _check_cover(start, start + 3 * DAY_MS, pieces)
    assert {p[0] for p in pieces} == {"raw", "hour"}


def test_random_windows_cover_exactly() -> None:
    rng = random.Random(3)
    for _ in range(500):
        start = rng.randrange(0, 2_000_000_000_000)
        end = start + rng.randrange(1, 100 * DAY_MS)
        _check_cover(start, end, decompose(start, end))
