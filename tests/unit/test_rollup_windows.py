"""Window decomposition into signed day, hour and raw pieces: an exact cover with short raw scans."""

from __future__ import annotations

import random

from faultlens.store.rollups import DAY_MS, HOUR_MS, decompose

Piece = tuple[str, int, int]


def _weight(pieces: list[Piece], t: int) -> int:
    return sum((-1 if kind == "raw-" else 1) for kind, lo, hi in pieces if lo <= t < hi)


def _check(start: int, end: int, pieces: list[Piece], rng: random.Random) -> None:
    for kind, lo, hi in pieces:
        assert lo < hi
        if kind == "hour":
            assert lo % HOUR_MS == 0 and hi % HOUR_MS == 0
        if kind == "day":
            assert lo % DAY_MS == 0 and hi % DAY_MS == 0
        if kind in ("raw", "raw-"):
            assert hi - lo <= HOUR_MS // 2, "no raw scan longer than half an hour"
    # Every instant is counted exactly once inside the window and zero times outside it.
    probes = [start, end - 1, end, start - 1, *(p[1] for p in pieces), *(p[2] - 1 for p in pieces)]
    probes += [rng.randrange(start - DAY_MS, end + DAY_MS) for _ in range(200)]
    for t in probes:
        assert _weight(pieces, t) == (1 if start <= t < end else 0), (start, end, t, pieces)


def test_ninety_days_unaligned() -> None:
    end = 1_763_812_345_678
    start = end - 90 * DAY_MS
    pieces = decompose(start, end)
    _check(start, end, pieces, random.Random(1))
    assert sum(1 for p in pieces if p[0] == "day") == 1
    assert sum(p[2] - p[1] for p in pieces if p[0] in ("raw", "raw-")) <= HOUR_MS


def test_window_ending_now_reads_the_current_hour_from_rollups() -> None:
    hour = 20_000 * DAY_MS + 5 * HOUR_MS
    now = hour + 50 * 60_000
    pieces = decompose(now - 24 * HOUR_MS, now + 1)
    assert ("hour", hour, hour + HOUR_MS) in pieces
    assert ("raw-", now + 1, hour + HOUR_MS) in pieces


def test_short_window_is_raw() -> None:
    assert decompose(1000, 2000) == [("raw", 1000, 2000)]


def test_aligned_window_has_no_raw_edges() -> None:
    start = 20_000 * DAY_MS
    assert decompose(start, start + 3 * DAY_MS) == [("day", start, start + 3 * DAY_MS)]


def test_hours_only_when_days_disabled() -> None:
    start = 20_000 * DAY_MS + 5 * 60_000
    pieces = decompose(start, start + 3 * DAY_MS, days=False)
    _check(start, start + 3 * DAY_MS, pieces, random.Random(2))
    assert {p[0] for p in pieces} <= {"raw", "raw-", "hour"}


def test_random_windows_cover_exactly() -> None:
    rng = random.Random(3)
    for _ in range(500):
        start = rng.randrange(0, 2_000_000_000_000)
        end = start + rng.randrange(1, rng.choice([HOUR_MS, 3 * HOUR_MS, 100 * DAY_MS]))
        _check(start, end, decompose(start, end), rng)
