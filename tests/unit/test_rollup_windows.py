"""Window decomposition into signed week, day, hour and raw pieces: an exact cover with short raw scans."""

from __future__ import annotations

import random

import pytest

from faultlens.store.rollup_shapes import DAY_MS, FINE_MS, HOUR_MS, WEEK_MS, shape_for
from faultlens.store.rollup_windows import decompose

Piece = tuple[str, int, int]
MINUTE_MS = FINE_MS


def _weight(pieces: list[Piece], t: int) -> int:
    return sum((-1 if kind == "raw-" else 1) for kind, lo, hi in pieces if lo <= t < hi)


def _check(start: int, end: int, pieces: list[Piece], rng: random.Random, now: int | None = None) -> None:
    for kind, lo, hi in pieces:
        assert lo < hi
        if kind == "hour":
            assert lo % HOUR_MS == 0 and hi % HOUR_MS == 0
        if kind == "day":
            assert lo % DAY_MS == 0 and hi % DAY_MS == 0
        if kind == "week":
            assert lo % WEEK_MS == 0 and hi % WEEK_MS == 0
        if kind in ("raw", "raw-"):
            past = hi - lo if now is None else min(hi, now) - lo
            assert past <= HOUR_MS // 2, "no raw scan of more than half an hour of written events"
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
    assert [p[0] for p in pieces if p[0] in ("week", "day")] == ["day", "week", "day"]
    weeks = [p for p in pieces if p[0] == "week"]
    assert (weeks[0][2] - weeks[0][1]) // WEEK_MS == 12
    # Fewer than a week of days on each side, fewer than a day of hours beyond them.
    assert all(p[2] - p[1] < WEEK_MS for p in pieces if p[0] == "day")
    assert all(p[2] - p[1] < DAY_MS for p in pieces if p[0] == "hour")
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


def test_hours_only_when_coarser_grains_are_excluded() -> None:
    start = 20_000 * DAY_MS + 5 * 60_000
    pieces = decompose(start, start + 30 * DAY_MS, grains=(HOUR_MS,))
    _check(start, start + 30 * DAY_MS, pieces, random.Random(2))
    assert {p[0] for p in pieces} <= {"raw", "raw-", "hour"}
    days_only = decompose(start, start + 30 * DAY_MS, grains=(HOUR_MS, DAY_MS))
    _check(start, start + 30 * DAY_MS, days_only, random.Random(4))
    assert "day" in {p[0] for p in days_only} and "week" not in {p[0] for p in days_only}


def test_grains_must_start_with_the_hour() -> None:
    with pytest.raises(ValueError):
        decompose(0, WEEK_MS, grains=(DAY_MS, WEEK_MS))


def test_queries_read_the_narrowest_shape_that_keeps_their_dimensions() -> None:
    assert shape_for(("source", "status", "failure_class", "is_actionable")) == 2
    assert shape_for(("failure_class", "failure_kind", "source")) == 1
    assert shape_for(("status", "operation")) == 0
    assert shape_for(("source", "attr_name", "attr_value")) == 3, "attribute rows only under an attribute filter"
    with pytest.raises(ValueError, match="attribute rows keep only"):
        shape_for(("operation", "attr_name", "attr_value"))
    with pytest.raises(ValueError, match="attributes"):
        shape_for(("attributes",))


def test_random_windows_cover_exactly() -> None:
    rng = random.Random(3)
    for _ in range(500):
        start = rng.randrange(0, 2_000_000_000_000)
        end = start + rng.randrange(1, rng.choice([HOUR_MS, 3 * HOUR_MS, 100 * DAY_MS, 400 * DAY_MS]))
        _check(start, end, decompose(start, end), rng)
        _check(start, end, decompose(start, end, grains=(HOUR_MS, DAY_MS)), rng)


def _raw_before(pieces: list[Piece], now: int) -> int:
    """How much of the pieces' raw ranges lies before `now`: the events they may read."""
    return sum(max(0, min(hi, now) - lo) for kind, lo, hi in pieces if kind in ("raw", "raw-"))


def test_minutes_leave_raw_edges_under_a_minute_where_they_are_complete() -> None:
    rng = random.Random(5)
    for _ in range(500):
        start = rng.randrange(0, 2_000_000_000_000)
        end = start + rng.randrange(1, rng.choice([10 * MINUTE_MS, HOUR_MS, 3 * HOUR_MS, 30 * DAY_MS]))
        hours = [start // HOUR_MS * HOUR_MS, end // HOUR_MS * HOUR_MS]
        pieces = decompose(start, end, fine_ms=MINUTE_MS, fine_hours=hours)
        _check(start, end, pieces, rng)
        for kind, lo, hi in pieces:
            if kind == "minute":
                assert lo % MINUTE_MS == 0 and hi % MINUTE_MS == 0
            if kind in ("raw", "raw-"):
                assert hi - lo <= MINUTE_MS // 2, (start, end, pieces)
        # An hour without complete minute rows is answered as before.
        without = decompose(start, end, fine_ms=MINUTE_MS, fine_hours=hours[:1])
        _check(start, end, without, rng)
        if end % HOUR_MS and end // HOUR_MS * HOUR_MS != hours[0]:
            assert not [p for p in without if p[0] == "minute" and p[1] >= hours[1]]


def test_windows_ending_now_read_no_event_already_written_but_the_edges() -> None:
    rng = random.Random(8)
    for _ in range(300):
        now = rng.randrange(1_700_000_000_000, 1_800_000_000_000)
        for width in (5 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 7 * DAY_MS):
            start, end = now + 1 - width, now + 1
            hours = [start // HOUR_MS * HOUR_MS, now // HOUR_MS * HOUR_MS]
            pieces = decompose(start, end, fine_ms=MINUTE_MS, fine_hours=hours, now=now)
            _check(start, end, pieces, rng, now)
            # Only the start edge may read written events, under half a minute of them; the end edge none.
            assert _raw_before(pieces, now) <= MINUTE_MS // 2, (now, width, pieces)
            # Without minutes (other shapes): the current hour minus its (empty) rest, never its raw events.
            hourly = decompose(start, end, now=now)
            _check(start, end, hourly, rng, now)
            if width > HOUR_MS:
                assert ("hour", now // HOUR_MS * HOUR_MS, now // HOUR_MS * HOUR_MS + HOUR_MS) in hourly
