"""The one tally: totals by status, class and actionability from aggregate rows, their rates, grouping and merging."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faultlens.triage.counts import BY, Counts, ratio, tally, tally_by

# (source, status, failure_class, is_actionable, category) -> (events, attempt sum), as rollup reads answer.
ROWS = {
    ("api", "success", "none", False, "none"): (6, 6),
    ("api", "failure", "service_failure", True, "dependency_error"): (2, 4),
    ("api", "dead_letter", "service_failure", True, "dependency_error"): (1, 5),
    ("api", "retry", "client_abort", False, "client_abort"): (1, 3),
    ("billing", "success", "none", False, "none"): (3, 0),
    ("billing", "failure", "client_failure", False, "authorization"): (1, 0),
    ("billing", "cancelled", "none", False, "none"): (2, 0),
}
DIMS = ("source", *BY, "category")


def test_a_tally_splits_events_by_status_class_and_actionability() -> None:
    c = tally_by(ROWS, DIMS, "source")["api"]
    assert (c.total, c.success, c.failures, c.actionable, c.dead_letter, c.retry) == (10, 6, 4, 3, 1, 1)
    assert c.by_status == {"success": 6, "failure": 2, "dead_letter": 1, "retry": 1}
    # A retry that aborted is a failure of its class; a success is none of them.
    assert c.by_class == {"service_failure": 3, "client_abort": 1}
    assert c.categories == {"dependency_error": 3, "client_abort": 1}
    assert (c.of_status("cancelled"), c.of_class("client_failure")) == (0, 0)
    assert (c.success_rate, c.failure_rate, c.actionable_rate) == (0.6, 0.4, 0.3)
    assert (c.dead_letter_rate, c.retry_rate, c.avg_attempts) == (0.1, 0.1, 1.8)


def test_a_cancellation_without_a_failure_class_is_no_failure() -> None:
    billing = tally_by(ROWS, DIMS, "source")["billing"]
    assert (billing.total, billing.success, billing.failures, billing.of_status("cancelled")) == (6, 3, 1, 2)
    assert billing.actionable == 0 and billing.actionable_rate == 0.0


def test_groups_merge_into_the_whole_tally() -> None:
    whole = tally(ROWS, DIMS)
    merged = Counts()
    for part in tally_by(ROWS, DIMS, "source").values():
        merged.merge(part)
    assert merged == whole
    assert (whole.total, whole.failures, whole.actionable, whole.attempt_sum) == (16, 5, 3, 18)


def test_rates_of_nothing_are_zero_not_an_error() -> None:
    empty = Counts()
    assert (empty.success_rate, empty.failure_rate, empty.actionable_rate, empty.avg_attempts) == (0, 0, 0, 0)
    assert ratio(3, 0) == 0.0 and ratio(1, 4) == 0.25


def test_rows_must_name_the_tally_dimensions() -> None:
    with pytest.raises(KeyError):
        tally({("api", 3): (1, 0)}, ("source", "attempt"))
    with pytest.raises(ValueError):
        tally({("success",): (1, 0)}, BY)  # a key shorter than its dimension names


row = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["success", "failure", "retry", "dead_letter", "cancelled"]),
    st.sampled_from(["none", "service_failure", "client_failure", "client_abort"]),
    st.booleans(),
)


@given(st.dictionaries(row, st.tuples(st.integers(1, 1000), st.integers(0, 5000)), max_size=40))
def test_the_tally_is_consistent_for_any_rows(rows: dict[tuple[str, str, str, bool], tuple[int, int]]) -> None:
    by = ("source", *BY)
    whole = tally(rows, by)
    assert whole.total == sum(n for n, _a in rows.values()) == sum(whole.by_status.values())
    assert (
        whole.failures
        == sum(whole.by_class.values())
        == sum(n for (_s, _st, fc, _x), (n, _a) in rows.items() if fc != "none")
    )
    assert whole.actionable <= whole.failures <= whole.total
    assert whole.success + whole.dead_letter + whole.retry <= whole.total
    for rate in (whole.success_rate, whole.failure_rate, whole.actionable_rate, whole.dead_letter_rate):
        assert 0.0 <= rate <= 1.0
    merged = Counts()
    for part in tally_by(rows, by, "source").values():
        merged.merge(part)
    assert merged == whole
