"""Rule-pack regex safety: catastrophic patterns are refused at pack load, everywhere a pack enters."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.classify.regex_safety import MAX_PATTERN_LENGTH, UnsafeRegexError, check_regex
from faultlens.classify.rules import DEFAULT_PACK_RESOURCE, default_pack, load_pack_data
from faultlens.cli import app as cli_app
from faultlens.errors import RulePackError
from tests.conftest import make_services

# Known ReDoS shapes: nested quantifiers, ambiguous repeated alternations, huge counts, backreferences.
CATASTROPHIC = [
    r"^(a+)+$",
    r"(a*)*$",
    r"(a+)*b",
    r"(\w+\s?)+$",
    r"((ab)*)+$",
    r"(a|a)*$",
    r"(a|ab)+$",
    r"(a|)+$",
    r"(a|a?)+$",
    r"(a|aa)+$",
    r"(?:a|b|ab)+$",
    r"(\w|\w\w)+$",
    r"(.*a){20}",
    r"^(\w+\s?)*$",
    r"^([a-zA-Z]+)*$",
    r"^(\d+)*$",
    r"(x+x+)+y",
    r"^(a+b?)+$",
    r"(\s*\S+\s*)+$",
    r"^(\w+)+@",
    r"(.*)*x",
    r"(.+)+x",
    r"^(([a-z0-9]+)\.?)+$",
    r"^(\d+\.?)+$",
    r"^(a?){25}a{25}$",
    r"([a-z]+[0-9]*)+$",
    r"(\w+,?)+;",
    r"(a+ba+)*$",
    r"^(?:\s*\w+\s*=\s*\w+\s*;?)+$",
    r"^(\w)(\1)+x",
    # OWASP's list: e-mail, person name and "Java class name" validators.
    r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
    r"^[a-zA-Z]+(([\'\,\.\- ][a-zA-Z ])?[a-zA-Z]*)*$",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
    # A URL validator seen in the wild.
    r"^(https?://)?([\da-z\.-]+)\.([a-z\.]{2,6})([/\w \.-]*)*/?$",
    # Two unbounded repeats in a row over the same characters: cubic under search (.*a.*b: 40 s on 3,000 chars).
    r".*a.*b",
    r"foo.*bar.*baz",
    r".*.*.*.*x",
    r"\d+\w+x",
    r"^\S+@\S+\.\S+$",
    # Counts and sizes.
    r"x{99999999999}",
    r"\d{1001}",
    r"(ab){2000}",
    "a" * (MAX_PATTERN_LENGTH + 1),
]


def _default_regexes() -> list[str]:
    text = files("faultlens.classify").joinpath(DEFAULT_PACK_RESOURCE).read_text(encoding="utf-8")
    found: list[str] = []
    for rule in yaml.safe_load(text)["rules"]:
        for field in ("error_message_regex", "text_regex"):
            value = (rule.get("match") or {}).get(field)
            found.extend([value] if isinstance(value, str) else value or [])
    return found


DEFAULT_REGEXES = _default_regexes()

# Real-world shapes that must keep working: bounded inner repeats, repeats separated by a character
# they cannot match, `.*` before a literal, alternations chosen by their first character.
COMMON = [
    r"(\d{1,3}\.){3}\d{1,3}",
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}",
    r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$",
    r"^\d{4}-\d{2}-\d{2}t\d{2}:\d{2}:\d{2}",
    r".*timeout",
    r"connection (refused|reset)( by peer)?",
    r"(?:get|post|put) /api/v\d+/\S+",
    r"([a-z]{1,5},)*dc\b",
    r"(\w+=[^,]*,)*",
    r"(\s*,\s*\w+)*",
    r"(\d+\.\d+,)*",
    r"(ab|c)*",
    r"(x(a+b)*)+",
    r"errno \d+",
    r"(\d|\w)+$",  # Python's parser turns single-character alternatives into one class: [\d\w]+
    r"^(\d{1,3}){4}$",  # a handful of ways (3**4) whatever the text
    r"\bdeadline exceeded\b|context deadline",
    r"\w+\s+\w+x",
    r"(\d+)\s+(\w+)",
    r"a.*b.{0,200}c",
    r"\s*[:=]\s*",
]
SAFE = DEFAULT_REGEXES + COMMON


def test_corpora_are_large_enough() -> None:
    assert len(CATASTROPHIC) >= 25
    assert len(SAFE) >= 25
    assert len(DEFAULT_REGEXES) >= 30


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(UnsafeRegexError) as caught:
        check_regex(pattern)
    message = str(caught.value)
    assert message.startswith(("regex ", "invalid regex "))
    assert "\n" not in message
    assert len(message) < 400


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_pattern_is_accepted(pattern: str) -> None:
    check_regex(pattern)


def test_default_pack_loads_unchanged() -> None:
    default_pack.cache_clear()
    assert len(default_pack().rules) >= 170


def test_messages_say_why_and_how() -> None:
    with pytest.raises(UnsafeRegexError) as nested:
        check_regex("^(a+)+$")
    assert str(nested.value) == (
        "regex '^(a+)+$' can take exponential time on some inputs (a repeated group holds another unbounded "
        "repeat); rewrite it without nested quantifiers, or separate the repeated parts by a character they "
        "cannot match"
    )
    with pytest.raises(UnsafeRegexError) as alternation:
        check_regex("(a|a)*$")
    assert "repeated group has alternatives that can match the same text" in str(alternation.value)
    with pytest.raises(UnsafeRegexError) as power:
        check_regex("(.*a){20}")
    assert "to the power 20" in str(power.value)
    with pytest.raises(UnsafeRegexError) as chain:
        check_regex("foo.*bar.*baz")
    assert "cube of the input length" in str(chain.value)
    assert ".{0,200} instead of .*" in str(chain.value)
    with pytest.raises(UnsafeRegexError) as backref:
        check_regex(r"^(\w)(\1)+x")
    assert "backreference" in str(backref.value)


def test_huge_repetition_count_is_refused_without_overflow() -> None:
    with pytest.raises(UnsafeRegexError) as caught:
        check_regex("x{99999999999}")
    assert str(caught.value) == "invalid regex 'x{99999999999}': a repetition count is too large (at most 1000)"
    with pytest.raises(UnsafeRegexError, match="repeats 5000 times; at most 1000"):
        check_regex("x{5000}")


def test_deep_nesting_is_checked_and_bad_syntax_refused() -> None:
    # Python's own parser runs out of stack on this one: a refusal, not a RecursionError.
    with pytest.raises(UnsafeRegexError, match="it is nested too deeply"):
        check_regex("(" * 499 + "a" + ")" * 499)
    check_regex("(" * 100 + "a" + ")" * 100)
    with pytest.raises(UnsafeRegexError, match="holds another unbounded repeat"):
        check_regex("(" * 100 + "a+" + ")" * 100 + "+")
    with pytest.raises(UnsafeRegexError, match="missing \\), unterminated subpattern"):
        check_regex("(abc")


def test_accepted_shapes_run_in_linear_time() -> None:
    """The shapes accepted on purpose stay fast on the inputs that hurt their refused cousins."""
    # Their refused cousins take seconds on 28 characters; a search over 1,000 is at worst quadratic here.
    hostile = "a" * 1000 + "!"
    for pattern in (r"(\d|\w)+$", r"([a-z]{1,5},)*dc\b", r"(\w+=[^,]*,)*$", r"(\s*,\s*\w+)*$", r"^(\d{1,3}){4}$"):
        check_regex(pattern)
        started = time.perf_counter()
        re.compile(pattern, re.IGNORECASE).search(hostile)
        assert time.perf_counter() - started < 0.5, pattern


EVIL_PACK: dict[str, Any] = {
    "id": "evil@2026-12-01",
    "rules": [
        {
            "name": "evil",
            "match": {"error_message_regex": ["^(a+)+$"]},
            "failure_kind": "evil",
            "failure_class": "service_failure",
            "category": "unknown",
        }
    ],
}


def _pack(regex_field: str, pattern: str) -> dict[str, Any]:
    rule = dict(EVIL_PACK["rules"][0], match={regex_field: [pattern]})
    return {"id": EVIL_PACK["id"], "rules": [rule]}


@pytest.mark.parametrize("field", ["error_message_regex", "text_regex"])
@pytest.mark.parametrize("pattern", ["^(a+)+$", "x{99999999999}"])
def test_pack_load_names_rule_and_field(field: str, pattern: str) -> None:
    with pytest.raises(RulePackError) as caught:
        load_pack_data(_pack(field, pattern))
    (problem,) = caught.value.details["errors"]
    assert problem["rule"] == "rule 'evil' (rules[0])"
    assert problem["field"] == f"match.{field}"
    assert pattern in problem["error"]
    assert caught.value.message.startswith(
        f"invalid rule pack evil@2026-12-01: rule 'evil' (rules[0]): match.{field}: "
    )


@pytest.fixture
def web(sqlite_url: str) -> Iterator[TestClient]:
    services = make_services(sqlite_url, start_jobs=False)
    try:
        with TestClient(create_app(services)) as client:
            yield client
    finally:
        services.engine.dispose()


@pytest.mark.parametrize("pattern", ["^(a+)+$", "x{99999999999}"])
def test_http_preview_and_activate_refuse_quickly(web: TestClient, pattern: str) -> None:
    ingest = web.post("/api/v1/events", json=[{"error_message": "a" * 28 + "!"}])
    assert ingest.status_code in (200, 202), ingest.text
    pack = _pack("error_message_regex", pattern)
    for route, params in (("/api/v1/rules/preview", {"window": "1h"}), ("/api/v1/rules/activate", {})):
        started = time.perf_counter()
        r = web.post(route, params=params, json=pack)
        elapsed = time.perf_counter() - started
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error"]["code"] == "invalid_rule_pack"
        assert "rule 'evil' (rules[0]): match.error_message_regex: " in body["error"]["message"]
        assert "request_id" in body
        assert elapsed < 1.0, (route, elapsed)
    assert web.get("/api/v1/rules").status_code == 200
    active = web.get("/api/v1/rules").text
    assert "evil@2026-12-01" not in active


@pytest.mark.parametrize("pattern", ["^(a+)+$", "x{99999999999}"])
def test_cli_rules_check_one_line(tmp_path: Path, pattern: str) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(_pack("error_message_regex", pattern)), encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["rules", "check", str(path)])
    assert result.exit_code == 1, result.output
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "invalid rule pack evil@2026-12-01: 1 problem(s)" in output
    assert "rule 'evil' (rules[0]): match.error_message_regex: " in output
    assert len(output.strip().splitlines()) <= 6


def test_every_bad_regex_of_a_field_is_named_once() -> None:
    pack = _pack("error_message_regex", "x{99999999999}")
    pack["rules"][0]["match"]["error_message_regex"] = ["x{99999999999}", "timeout", "^(a+)+$"]
    with pytest.raises(RulePackError) as caught:
        load_pack_data(pack)
    (problem,) = caught.value.details["errors"]
    assert "'x{99999999999}'" in problem["error"]
    assert "'^(a+)+$'" in problem["error"]
    assert "timeout" not in problem["error"]


@pytest.mark.parametrize(
    "pattern",
    [
        "(" + "a?b" * 300 + ")*",
        "("
        + "".join(f"[{chr(0x4E00 + 3 * i)}{chr(0x4E01 + 3 * i)}{chr(0x4E02 + 3 * i)}]?x" for i in range(140))
        + ")*",
        "(" + "|".join(chr(0x4E00 + i) + "x" for i in range(300)) + ")*",
        "(?:(?:(?:" + "a{1,2}b" * 100 + "){999}c){999}d){999}",
    ],
)
def test_the_check_itself_is_quick_on_long_patterns(pattern: str) -> None:
    """The checker runs on untrusted input too: a maximal pattern must not make it the slow part."""
    started = time.perf_counter()
    check_regex(pattern)
    assert time.perf_counter() - started < 1.0
