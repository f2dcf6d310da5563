"""The one tally of events: totals by status, failure class and actionability from aggregate rows, and their rates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from faultlens.timeutil import Window
from faultlens.triage import raw

# What raw.aggregate and rollup_reads.aggregate answer: dimension values -> (events, sum of attempt numbers).
Rows = Mapping[tuple[Any, ...], tuple[int, int]]
# The dimensions a tally needs; `category` and a bucket (named "bucket", first) may come with them.
BY = ("status", "failure_class", "is_actionable")


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class _Rate:
    """A rate as a read-only attribute of Counts: one of its counts over its total."""

    def __init__(self, part: str) -> None:
        self.part = part

    def __get__(self, counts: Counts, owner: type[Counts] | None = None) -> float:
        return ratio(getattr(counts, self.part), counts.total)


@dataclass
class Counts:
    """Events of one group (a source, a bucket, a window) split the ways every view counts them.

    A failure is an event whose failure class is not "none" (a retry or a cancellation can be one); success,
    dead_letter and retry count statuses.
    """

    total: int = 0
    success: int = 0
    failures: int = 0
    actionable: int = 0
    dead_letter: int = 0
    retry: int = 0
    attempt_sum: int = 0  # events without an attempt number count 0: rollups keep the sum only
    by_status: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, int] = field(default_factory=dict)  # failure classes other than "none"
    categories: dict[str, int] = field(default_factory=dict)  # failures by category, when counted with it

    def add(
        self,
        *,
        status: str,
        failure_class: str,
        is_actionable: bool,
        n: int,
        category: str | None = None,
        attempts: int = 0,
    ) -> None:
        self.total += n
        self.attempt_sum += attempts
        self.by_status[status] = self.by_status.get(status, 0) + n
        if status == "success":
            self.success += n
        elif status == "dead_letter":
            self.dead_letter += n
        elif status == "retry":
            self.retry += n
        if failure_class != "none":
            self.failures += n
            self.by_class[failure_class] = self.by_class.get(failure_class, 0) + n
            if is_actionable:
                self.actionable += n
            if category is not None:
                self.categories[category] = self.categories.get(category, 0) + n

    def add_row(self, fields: Mapping[str, Any], n: int, attempts: int = 0) -> None:
        """Add one aggregate row given as dimension name -> value (see `tally`)."""
        self.add(
            status=fields["status"],
            failure_class=fields["failure_class"],
            is_actionable=bool(fields["is_actionable"]),
            n=n,
            category=fields.get("category"),
            attempts=attempts,
        )

    def merge(self, other: Counts) -> None:
        self.total += other.total
        self.success += other.success
        self.failures += other.failures
        self.actionable += other.actionable
        self.dead_letter += other.dead_letter
        self.retry += other.retry
        self.attempt_sum += other.attempt_sum
        for mine, theirs in (
            (self.by_status, other.by_status),
            (self.by_class, other.by_class),
            (self.categories, other.categories),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def of_status(self, status: str) -> int:
        return self.by_status.get(status, 0)

    def of_class(self, failure_class: str) -> int:
        return self.by_class.get(failure_class, 0)

    # Shares of the total (0 without events); attempts per event counts events without a number as 0.
    success_rate = _Rate("success")
    failure_rate = _Rate("failures")
    actionable_rate = _Rate("actionable")
    dead_letter_rate = _Rate("dead_letter")
    retry_rate = _Rate("retry")
    avg_attempts = _Rate("attempt_sum")


def tally(rows: Rows, by: Sequence[str]) -> Counts:
    """All of `rows` (grouped by `by`, which names at least BY) in one Counts."""
    out = Counts()
    for key, (n, attempts) in rows.items():
        out.add_row(dict(zip(by, key, strict=True)), n, attempts)
    return out


def tally_by(rows: Rows, by: Sequence[str], group: str) -> dict[Any, Counts]:
    """A Counts per value of the dimension `group` (one of `by`), in the order rows first show each value."""
    at = list(by).index(group)
    out: dict[Any, Counts] = {}
    for key, (n, attempts) in rows.items():
        counts = out.get(key[at])
        if counts is None:
            counts = out[key[at]] = Counts()
        counts.add_row(dict(zip(by, key, strict=True)), n, attempts)
    return out


def window_rows(
    conn: Connection,
    *,
    tenant: str,
    window: Window,
    by: Sequence[str] = BY,
    where: Mapping[str, Any] | None = None,
    attrs: Mapping[str, str] | None = None,
    bucket_ms: int | None = None,
) -> Rows:
    """The aggregate rows of `window` grouped by `by`: rollups first, raw events for what they cannot answer."""
    start, end = window.start_ms, window.end_ms
    return raw.aggregate(
        conn, tenant=tenant, start=start, end=end, by=by, where=where, attrs=attrs, bucket_ms=bucket_ms
    )
