"""Window maths for rollup reads: [start, end) as signed week, day and hour buckets plus short raw edges."""

from __future__ import annotations

from collections.abc import Sequence

from faultlens.store.rollup_shapes import GRAIN_NAMES, GRAINS_MS, HOUR_MS

# (kind, lo, hi): "week" | "day" | "hour" | "raw" add [lo, hi); "raw-" subtracts it.
Piece = tuple[str, int, int]


def _edge(hour: int, lo: int, hi: int) -> list[Piece]:
    """[lo, hi) inside the hour starting at `hour`: raw rows, or the hour's rollup minus the raw remainder.

    Whichever reads fewer raw rows wins, so no raw piece is longer than half an hour; a window ending now
    subtracts the (normally empty) rest of the current hour.
    """
    if hi - lo <= HOUR_MS // 2:
        return [("raw", lo, hi)]
    pieces = [("hour", hour, hour + HOUR_MS)]
    if hour < lo:
        pieces.append(("raw-", hour, lo))
    if hi < hour + HOUR_MS:
        pieces.append(("raw-", hi, hour + HOUR_MS))
    return pieces


def decompose(start: int, end: int, *, grains: Sequence[int] = GRAINS_MS) -> list[Piece]:
    """Split [start, end) into signed pieces: ("week"|"day"|"hour"|"raw", lo, hi) add, ("raw-", lo, hi) subtracts.

    The coarsest grain inside, finer ones beside it, and at each edge the cheaper of raw rows or an hour minus
    its remainder. `grains` (hours first) limits which rollups may answer, e.g. to keep trend buckets whole.
    """
    if not grains or grains[0] != HOUR_MS:
        raise ValueError("grains must start with the hour")
    h1 = -(-start // HOUR_MS) * HOUR_MS
    h2 = end // HOUR_MS * HOUR_MS
    if h1 > h2:  # inside one hour
        return _edge(h2, start, end)
    pieces: list[Piece] = []
    if start < h1:
        pieces += _edge(h1 - HOUR_MS, start, h1)
    pieces += _cover(h1, h2, grains)
    if h2 < end:
        pieces += _edge(h2, h2, end)
    return pieces


def _cover(lo: int, hi: int, grains: Sequence[int]) -> list[Piece]:
    """[lo, hi), both multiples of grains[0], as whole buckets: the next grain inside, grains[0] beside it."""
    if lo >= hi:
        return []
    grain = GRAIN_NAMES[grains[0]]
    if len(grains) > 1:
        coarse = grains[1]
        c1 = -(-lo // coarse) * coarse
        c2 = hi // coarse * coarse
        if c1 < c2:
            before = [(grain, lo, c1)] if lo < c1 else []
            after = [(grain, c2, hi)] if c2 < hi else []
            return before + _cover(c1, c2, grains[1:]) + after
    return [(grain, lo, hi)]
