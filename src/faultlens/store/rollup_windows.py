"""Window maths for rollup reads: [start, end) as signed week, day, hour and minute buckets plus short raw edges."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from faultlens.store.rollup_shapes import GRAIN_NAMES, GRAINS_MS, HOUR_MS

# (kind, lo, hi): "week" | "day" | "hour" | "minute" | "raw" add [lo, hi); "raw-" subtracts it.
Piece = tuple[str, int, int]


def _floor(t: int, grain: int) -> int:
    return t // grain * grain


def _ceil(t: int, grain: int) -> int:
    return -(-t // grain) * grain


class _Plan:
    """What an edge costs: raw rows already written (the part of a raw range before `now`; all of it without `now`),
    so a window ending now takes the bucket it ends in minus the (still empty) rest."""

    def __init__(self, now: int | None, fine_ms: int | None, fine_hours: Collection[int]) -> None:
        self.now = now
        self.fine_ms = fine_ms
        self.fine_hours = fine_hours

    def cost(self, pieces: list[Piece]) -> tuple[int, int]:
        raw = 0
        for kind, lo, hi in pieces:
            if kind in ("raw", "raw-"):
                raw += max(0, (hi if self.now is None else min(hi, self.now)) - lo)
        return raw, len(pieces)

    def cheaper(self, *options: list[Piece]) -> list[Piece]:
        return min(options, key=self.cost)

    def edge(self, hour: int, lo: int, hi: int) -> list[Piece]:
        """[lo, hi) inside the hour starting at `hour`: raw rows, the hour minus the raw rest, or (where minute
        rows are complete) minutes with raw edges shorter than a minute; whichever reads fewest raw rows."""
        rest = [("raw-", hour, lo)] if hour < lo else []
        if hi < hour + HOUR_MS:
            rest.append(("raw-", hi, hour + HOUR_MS))
        options = [[("raw", lo, hi)], [("hour", hour, hour + HOUR_MS), *rest]]
        if self.fine_ms and hour in self.fine_hours:
            options.append(self._fine(lo, hi, self.fine_ms))
        return self.cheaper(*options)

    def _fine(self, lo: int, hi: int, f: int) -> list[Piece]:
        m1, m2 = _ceil(lo, f), _floor(hi, f)
        if m1 > m2:  # inside one minute
            b = m2
            whole = [("minute", b, b + f), *([("raw-", b, lo)] if b < lo else []), ("raw-", hi, b + f)]
            return self.cheaper([("raw", lo, hi)], whole)
        pieces: list[Piece] = []
        if lo < m1:
            pieces += self.cheaper([("raw", lo, m1)], [("minute", m1 - f, m1), ("raw-", m1 - f, lo)])
        if m1 < m2:
            pieces.append(("minute", m1, m2))
        if m2 < hi:
            pieces += self.cheaper([("raw", m2, hi)], [("minute", m2, m2 + f), ("raw-", hi, m2 + f)])
        return pieces


def decompose(
    start: int,
    end: int,
    *,
    grains: Sequence[int] = GRAINS_MS,
    fine_ms: int | None = None,
    fine_hours: Collection[int] = (),
    now: int | None = None,
) -> list[Piece]:
    """Split [start, end) into signed pieces: ("week"|"day"|"hour"|"minute"|"raw", lo, hi) add, ("raw-", lo, hi)
    subtracts.

    The coarsest grain inside, finer ones beside it, and at each edge the cheapest of raw rows, the hour minus its
    remainder, or minutes (`fine_ms`, only in `fine_hours`: hours whose minute rows are known complete) with raw
    edges under a minute. `now` prices raw ranges by their part already past (events after it are not written yet);
    without it by their length, so no raw piece is longer than half an hour. `grains` (hours first) limits which
    rollups may answer, e.g. to keep trend buckets whole.
    """
    if not grains or grains[0] != HOUR_MS:
        raise ValueError("grains must start with the hour")
    plan = _Plan(now, fine_ms, fine_hours)
    h1 = _ceil(start, HOUR_MS)
    h2 = _floor(end, HOUR_MS)
    if h1 > h2:  # inside one hour
        return plan.edge(h2, start, end)
    pieces: list[Piece] = []
    if start < h1:
        pieces += plan.edge(h1 - HOUR_MS, start, h1)
    pieces += _cover(h1, h2, grains)
    if h2 < end:
        pieces += plan.edge(h2, h2, end)
    return pieces


def edge_hours(start: int, end: int) -> list[int]:
    """The hours holding [start, end)'s unaligned edges: where decompose may read minutes."""
    hours = []
    if start % HOUR_MS:
        hours.append(_floor(start, HOUR_MS))
    if end % HOUR_MS and _floor(end, HOUR_MS) not in hours:
        hours.append(_floor(end, HOUR_MS))
    return hours


def _cover(lo: int, hi: int, grains: Sequence[int]) -> list[Piece]:
    """[lo, hi), both multiples of grains[0], as whole buckets: the next grain inside, grains[0] beside it."""
    if lo >= hi:
        return []
    grain = GRAIN_NAMES[grains[0]]
    if len(grains) > 1:
        coarse = grains[1]
        c1 = _ceil(lo, coarse)
        c2 = _floor(hi, coarse)
        if c1 < c2:
            before = [(grain, lo, c1)] if lo < c1 else []
            after = [(grain, c2, hi)] if c2 < hi else []
            return before + _cover(c1, c2, grains[1:]) + after
    return [(grain, lo, hi)]
