"""Alertmanager-style matchers: the four operators, quoting, anchored regexes, the JSON form, refused input."""

from __future__ import annotations

import pytest

from faultlens.alerting.matchers import Matcher, matcher_from_dict, matches_all, parse_matcher, parse_matchers
from faultlens.errors import InvalidRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("level=P0", Matcher("level", "P0")),
        ("level!=P2", Matcher("level", "P2", is_equal=False)),
        ("source=~checkout|payments", Matcher("source", "checkout|payments", is_regex=True)),
        ("source!~test-.*", Matcher("source", "test-.*", is_regex=True, is_equal=False)),
        ('  owner = "team a"  ', Matcher("owner", "team a")),
        ('summary="say \\"hi\\"\\nand \\\\ bye"', Matcher("summary", 'say "hi"\nand \\ bye')),
        ("environment=", Matcher("environment", "")),
        ('environment=""', Matcher("environment", "")),
        ("x==y", Matcher("x", "=y")),
        ("_a1=~a=b", Matcher("_a1", "a=b", is_regex=True)),
    ],
)
def test_parse(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("level", "expected name=value"),
        ("=P0", "label name is missing"),
        ("1level=P0", "invalid label name"),
        ("le-vel=P0", "invalid label name 'le-vel'"),
        ("le vel=P0", "expected name=value"),
        ('level="P0', "must end with an unescaped"),
        ('level="P"0"', 'must be escaped as \\"'),
        ('level="\\t"', "unknown escape"),
        ("source=~(a+)+$", "exponential time"),
        ("source=~[unclosed", "invalid regex"),
        ("source=~" + "a" * 1001, "at most 1000"),
    ],
)
def test_parse_refuses(text: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_matcher(text)
    assert why in caught.value.message
    assert caught.value.code == "invalid_request"


def test_a_missing_label_matches_as_the_empty_string() -> None:
    assert parse_matcher("environment=").matches({"level": "P0"})
    assert not parse_matcher("environment!=").matches({"level": "P0"})
    assert parse_matcher("environment!=prod").matches({})
    assert parse_matcher("environment=~|staging").matches({})
    assert not parse_matcher("environment=~.+").matches({})


def test_regexes_are_anchored_at_both_ends() -> None:
    m = parse_matcher("source=~checkout|payments")
    assert m.matches({"source": "checkout"})
    assert m.matches({"source": "payments"})
    assert not m.matches({"source": "checkout-eu"})
    assert not m.matches({"source": "old-payments"})
    assert parse_matcher("source=~check.*").matches({"source": "checkout-eu"})
    assert not parse_matcher("source!~check.*").matches({"source": "checkout-eu"})
    assert parse_matcher("source!~check.*").matches({"source": "payments"})


def test_equality_is_exact_and_case_sensitive() -> None:
    m = parse_matcher("level=P0")
    assert m.matches({"level": "P0"})
    assert not m.matches({"level": "p0"})
    assert not m.matches({"level": "P0 "})
    assert not parse_matcher("source=~Checkout").matches({"source": "checkout"})


def test_matches_all() -> None:
    ms = parse_matchers(
        ["level=P0", "source=~checkout|payments", {"name": "environment", "value": "test", "isEqual": False}]
    )
    assert matches_all(ms, {"level": "P0", "source": "payments", "environment": "prod"})
    assert not matches_all(ms, {"level": "P0", "source": "payments", "environment": "test"})
    assert not matches_all(ms, {"level": "P1", "source": "payments"})
    assert matches_all([], {"anything": "x"})


def test_alertmanager_json_form_both_ways() -> None:
    m = parse_matcher("source!~test-.*")
    assert m.as_dict() == {"name": "source", "value": "test-.*", "isRegex": True, "isEqual": False}
    assert matcher_from_dict(m.as_dict()) == m
    assert matcher_from_dict({"name": "level", "value": "P0"}) == Matcher("level", "P0", False, True)
    assert str(parse_matcher('summary="a \\"b\\""')) == 'summary="a \\"b\\""'
    assert parse_matcher(str(m)) == m


@pytest.mark.parametrize(
    ("d", "why"),
    [
        ({"name": "level"}, "string name and a string value"),
        ({"name": 1, "value": "x"}, "string name and a string value"),
        ({"name": "level", "value": "P0", "isRegex": "yes"}, "true or false"),
        ({"name": "level", "value": "P0", "regex": True}, "unknown matcher field"),
        ({"name": "level", "value": "(a*)*", "isRegex": True}, "exponential time"),
        ({"name": "le vel", "value": "P0"}, "invalid label name"),
    ],
)
def test_from_dict_refuses(d: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        matcher_from_dict(d)
    assert why in caught.value.message


def test_parse_matchers_names_the_bad_item() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_matchers(["level=P0", "source=~(x+)+"])
    assert caught.value.message.startswith("matchers[1]: invalid matcher 'source=~(x+)+'")
    assert caught.value.details["index"] == 1
    with pytest.raises(InvalidRequest, match="matchers must be a list"):
        parse_matchers("level=P0")
    with pytest.raises(InvalidRequest, match=r"matchers\[0\]: a matcher must be an object"):
        parse_matchers([3])  # type: ignore[list-item]


def test_constructing_a_bad_regex_directly_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="invalid regex"):
        Matcher("source", "(", is_regex=True)
    assert Matcher("source", "(", is_regex=False).matches({"source": "("})
