"""Failure groups, the pure parts: status derivation, the grouping of templates, rule drafts from templates, and the
group rollup shape (written for fingerprinted events only, read only for questions about fingerprints)."""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

import pytest

from faultlens.classify.fingerprint import Fingerprinter
from faultlens.classify.rules import Rule, RulePack
from faultlens.errors import InvalidRequest
from faultlens.store import rollup_shapes, rollup_writes
from faultlens.triage import group_rules
from faultlens.triage.groups import Grouping, Lifecycle, derive_status

HOUR = 3_600_000
DAY = 24 * HOUR
LIFECYCLE = Lifecycle(new_ms=24 * HOUR, regressed_ms=7 * DAY)
NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("state", "first_seen", "expected"),
    [
        (None, NOW - HOUR, "new"),
        (None, NOW - 25 * HOUR, "ongoing"),
        (None, None, "ongoing"),
        ({"status": "open", "regressed_at": None}, NOW - 2 * HOUR, "new"),
        ({"status": "resolved", "regressed_at": None}, NOW - HOUR, "resolved"),
        ({"status": "ignored", "regressed_at": None}, NOW - HOUR, "ignored"),
        ({"status": "regressed", "regressed_at": NOW - DAY}, NOW - 30 * DAY, "regressed"),
        ({"status": "regressed", "regressed_at": NOW - 8 * DAY}, NOW - 30 * DAY, "ongoing"),
    ],
)
def test_status_is_derived_from_state_and_first_seen(state: Any, first_seen: int | None, expected: str) -> None:
    assert derive_status(state, first_seen, NOW, LIFECYCLE) == expected


def _chain_resolver(aliases: dict[str, str]) -> tuple[Any, Any]:
    """resolve and aliases_of over an alias map, the slow way (every id followed to its end)."""

    def resolve(fid: str) -> str:
        while fid in aliases:
            fid = aliases[fid]
        return fid

    return resolve, lambda survivors: {old for old in aliases if resolve(old) in set(survivors)}


def test_overrides_win_over_the_fingerprinter_and_follow_its_merges() -> None:
    aliases = {"old": "survivor"}
    resolve, aliases_of = _chain_resolver(aliases)
    grouping = Grouping(resolve, {"moved": "other", "survivor": "folded"}, aliases_of)
    assert grouping.group_of("plain") == "plain"
    assert grouping.group_of("moved") == "other"
    # A template the fingerprinter merged into a survivor follows the survivor's override.
    assert grouping.group_of("old") == "folded"
    members = [f for f in ["folded", "plain", "old", "moved", "survivor"] if grouping.group_of(f) == "folded"]
    assert members == ["folded", "old", "survivor"]
    assert set(members) <= grouping.candidates({"folded"})


@pytest.mark.parametrize("seed", range(30))
def test_a_groups_candidates_hold_every_member_the_full_mapping_finds(seed: int) -> None:
    """A detail reads only Grouping.candidates' templates: over random merge chains and overrides (onto groups,
    onto merged-away ids, chains of overrides), no template whose group is G is ever left out of G's candidates."""
    rng = random.Random(seed)
    ids = [f"t{i}" for i in range(40)]
    aliases: dict[str, str] = {}
    for fid in rng.sample(ids, 15):  # merges point at an older id: no cycles, as the fingerprinter makes them
        older = ids[: ids.index(fid)]
        if older:
            aliases[fid] = rng.choice(older)
    overrides = {fid: rng.choice(ids) for fid in rng.sample(ids, 12)}
    resolve, aliases_of = _chain_resolver(aliases)
    grouping = Grouping(resolve, overrides, aliases_of)
    for gid in ids:
        members = {fid for fid in ids if grouping.group_of(fid) == gid}
        assert members <= grouping.candidates({gid}), gid


def test_the_fingerprinter_names_the_ids_merged_into_a_survivor() -> None:
    state = Fingerprinter().export_state()
    state["aliases"] = {"a": "b", "b": "c", "x": "y"}
    fp = Fingerprinter.from_state(state)
    assert fp.aliases_of({"c"}) == {"a", "b"}
    assert fp.aliases_of({"b"}) == set()  # b lives on as c: nothing resolves to b now
    assert fp.aliases_of({"y", "c"}) == {"a", "b", "x"}
    assert fp.aliases_of({"zzz"}) == set()


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        (
            ["frobnicator 1 exploded in sector 7", "frobnicator 2 exploded in sector 9"],
            {"error_message_regex": ["frobnicator.{0,200}exploded in sector"]},
        ),
        (["Payment gateway timeout"], {"error_message": ["payment gateway timeout"]}),
        (
            ["connection to db-1:5432 refused after 300 ms", "connection to db-2:5432 refused after 12 ms"],
            {"error_message_regex": ["connection to db-.{0,200}refused after"]},
        ),
        (
            ["user 42 (id=ab12) not found in tenant acme"],
            {"error_message_regex": [r"user.{0,200}\(id=ab12\) not found in tenant acme"]},
        ),
    ],
)
def test_rule_drafts_match_the_template_words_and_the_messages(messages: list[str], match: dict[str, Any]) -> None:
    fp = Fingerprinter()
    template = [fp.add(m) for m in messages][-1]
    rule = group_rules.draft_rule(
        group_id=template.id, template=template.text, sample=messages[0], mix_class=None, choices={}
    )
    assert rule["match"] == match
    parsed = Rule.model_validate(rule)
    for message in messages:
        lowered = message.lower()
        if parsed.match.error_message_regex:
            assert re.search(parsed.match.error_message_regex[0], lowered), (message, parsed.match)
        else:
            assert any(s in lowered for s in parsed.match.error_message or ()), message
    assert group_rules.as_yaml(rule).startswith(f"- name: group_{template.id}\n")


def test_a_template_of_placeholders_only_has_no_draft() -> None:
    with pytest.raises(InvalidRequest):
        group_rules.draft_rule(group_id="abc", template="<NUM> <*> <HEX>", sample=None, mix_class=None, choices={})


def test_the_draft_goes_first_in_the_tenants_pack() -> None:
    own = RulePack.model_validate(
        {
            "id": "team@2026-11-01",
            "rules": [
                {"name": "mine", "match": {"text": ["boom"]}, "failure_kind": "boom",
                 "failure_class": "service_failure", "category": "system_error"},
            ],
        }
    )  # fmt: skip
    rule = group_rules.draft_rule(group_id="g1", template="disk full on <*>", sample=None, mix_class=None, choices={})
    pack = group_rules.draft_pack(own, rule, today=dt.date(2026, 12, 6))
    assert pack.id == "team@2026-12-06" and [r.name for r in pack.rules] == ["group_g1", "mine"]
    assert group_rules.draft_pack(None, rule, today=dt.date(2026, 12, 6)).id == "groups@2026-12-06"


def _row(fid: str | None, **kw: Any) -> dict[str, Any]:
    row = {
        "tenant": "t",
        "occurred_at": 10 * HOUR + 5,
        "attempt": 1,
        "attributes": None,
        "source": "api",
        "operation": None,
        "item_type": "request",
        "status": "failure",
        "failure_class": "service_failure",
        "failure_kind": "timeout",
        "category": "service_timeout",
        "is_actionable": True,
        "error_code": None,
        "release": "1.0",
        "environment": "prod",
        "fingerprint_id": fid,
    }
    return row | kw


def test_group_rows_are_written_for_fingerprinted_events_only() -> None:
    counts, _ = rollup_writes.deltas([_row("abc"), _row("abc"), _row(None), _row("def", release=None)])
    group = {k: n for k, n in counts.items() if k[1] == rollup_shapes.GROUP_SHAPE}
    by_fp: dict[str, int] = {}
    for key, n in group.items():
        by_fp[key[-1]] = by_fp.get(key[-1], 0) + n
    assert by_fp == {"abc": 4, "def": 2}  # hour and day grains each
    assert {k[2] for k in group} == {3_600, 86_400}
    # Every other shape counts all four events and keeps '' as the fingerprint.
    others = [(k, n) for k, n in counts.items() if k[1] == 0 and k[2] == 3_600]
    assert sum(n for _k, n in others) == 4 and {k[-1] for k, _n in others} == {""}


def test_only_fingerprint_questions_read_the_group_shape() -> None:
    for names in (("source",), ("source", "release"), ("release", "environment", "failure_class"), ("failure_kind",)):
        assert rollup_shapes.covering_shape(names) != rollup_shapes.GROUP_SHAPE, names
    assert rollup_shapes.shape_for(("fingerprint_id", "source", "release")) == rollup_shapes.GROUP_SHAPE
    assert rollup_shapes.covering_shape(("fingerprint_id", "operation")) is None
    assert "fingerprint_id" not in rollup_shapes.SHAPES[0]
