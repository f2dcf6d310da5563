"""A fingerprinter's limit of templates: past it, the least recently used are forgotten, ids stay stable."""

from __future__ import annotations

import random

import pytest

from faultlens.classify.fingerprint import Fingerprinter
from tests.helpers import distinct_message


@pytest.mark.parametrize("one_key", [True, False])
def test_the_limit_holds_and_the_templates_in_use_stay(one_key: bool) -> None:
    fp = Fingerprinter(max_templates=100)
    hot = "payment gateway answered 502 for order 77 after 30 ms"
    hot_id = fp.add(hot).id
    for k in range(1, 1000):
        fp.add(distinct_message(k, one_key=one_key))
        assert len(fp) <= 100
        if k % 7 == 0:  # a template messages keep joining is never the least recently used
            assert fp.add(hot.replace("77", str(k))).id == hot_id
    ids = {t.id for t in fp.templates()}
    assert hot_id in ids
    assert fp.forgotten == 1000 - len(fp)
    # The newest templates are the ones kept (besides the hot one).
    assert fp.add(distinct_message(999, one_key=one_key)).id in ids
    assert len(fp) >= 90


def test_a_forgotten_shape_comes_back_under_its_old_id() -> None:
    fp = Fingerprinter(max_templates=50)
    first = fp.add("disk quota exceeded on volume vol-12 for tenant 8")
    for k in range(200):
        fp.add(distinct_message(k, one_key=False))
    assert first.id not in {t.id for t in fp.templates()}  # forgotten
    again = fp.add("disk quota exceeded on volume vol-99 for tenant 3")
    assert again.id == first.id and again.text == first.text


def test_without_reaching_the_limit_grouping_is_unchanged() -> None:
    rng = random.Random(5)
    lines = [
        f"{rng.choice(['timeout', 'refused', 'reset'])} talking to {rng.choice(['db', 'cache', 'queue'])} "
        f"node {rng.randint(1, 40)} after {rng.randint(1, 900)} ms"
        for _ in range(2000)
    ] + [distinct_message(k, one_key=True) for k in range(300)]
    rng.shuffle(lines)
    plain, limited = Fingerprinter(), Fingerprinter(max_templates=10_000)
    assert [(t.id, t.text) for t in map(plain.add, lines)] == [(t.id, t.text) for t in map(limited.add, lines)]
    assert limited.forgotten == 0


def test_a_saved_state_over_a_lower_limit_loads_its_most_recently_used() -> None:
    fp = Fingerprinter()
    templates = [fp.add(distinct_message(k, one_key=k % 2 == 0)).id for k in range(300)]
    for k in range(0, 300, 3):  # used again, most recently: these are the ones to keep
        fp.add(distinct_message(k, one_key=k % 2 == 0))
    state = fp.export_state()
    assert len(state["groups"]) == 300
    loaded = Fingerprinter.from_state(state, max_templates=120)
    kept = {t.id for t in loaded.templates()}
    assert len(kept) == 108  # down to 90% of the limit
    reused = {templates[k] for k in range(0, 300, 3)}
    newest_others = {templates[k] for k in (299, 298, 296, 295, 293, 292, 290, 289)}
    assert kept == reused | newest_others
    # The loaded instance keeps learning with its index intact: a known message finds its template.
    assert loaded.add(distinct_message(297, one_key=False)).id == templates[297]
    assert len(loaded.export_state()["groups"]) <= 120


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_templates"):
        Fingerprinter(max_templates=0)
