"""Alertmanager-style label matchers (name=value, !=, =~, !~): parsing, their JSON form, matching label sets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from faultlens.classify.regex_safety import MAX_PATTERN_LENGTH, UnsafeRegexError, check_regex
from faultlens.errors import InvalidRequest

# Alertmanager's (and Prometheus') classic label names: what every receiver and Alertmanager version accepts.
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = {"=": (False, True), "!=": (False, False), "=~": (True, True), "!~": (True, False)}
# Longest operator first: "a=~b" is a regex match, not equality with "~b".
_TEXT = re.compile(r"\s*([^=!~\s]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    """The pattern anchored at both ends, as Alertmanager anchors every matcher regex."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidRequest(
            f"regex is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed",
            details={"max_length": MAX_PATTERN_LENGTH},
        )
    try:
        # The safety check reasons case-insensitively: at least as strict as the case-sensitive match run here.
        check_regex(pattern)
        return re.compile(f"(?:{pattern})")
    except (UnsafeRegexError, re.error) as exc:
        raise InvalidRequest(str(exc), details={"regex": pattern[:200]}) from None


@dataclass(frozen=True)
class Matcher:
    """One condition on one label. A missing label matches as the empty string; regexes match the whole value."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise InvalidRequest(
                f"invalid label name {self.name!r}: use letters, digits and _ (not starting with a digit)",
                details={"name": self.name[:200]},
            )
        if self.is_regex:
            _compiled(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        hit = _compiled(self.value).fullmatch(value) is not None if self.is_regex else value == self.value
        return hit == self.is_equal

    def as_dict(self) -> dict[str, Any]:
        """Alertmanager's matcher JSON (silences, API v2)."""
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = ("=~" if self.is_equal else "!~") if self.is_regex else ("=" if self.is_equal else "!=")
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{op}"{quoted}"'


def _unquote(text: str, matcher: str) -> str:
    """A double-quoted value with Alertmanager's escapes (\\" \\\\ \\n)."""
    body = text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    if body is None:
        raise _bad(matcher, 'a value that starts with " must end with an unescaped "')
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise _bad(matcher, f'unknown escape \\{nxt} in a quoted value (use \\", \\\\ or \\n)')
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        if ch == '"':
            raise _bad(matcher, 'a " inside a quoted value must be escaped as \\"')
        out.append(ch)
        i += 1
    return "".join(out)


def _bad(matcher: str, why: str) -> InvalidRequest:
    shown = matcher if len(matcher) <= 200 else matcher[:197] + "..."
    return InvalidRequest(f"invalid matcher {shown!r}: {why}", details={"matcher": shown})


def parse_matcher(text: str) -> Matcher:
    """`name=value`, `name!=value`, `name=~regex` or `name!~regex`; the value may be double-quoted."""
    if not isinstance(text, str):
        raise InvalidRequest(f"a matcher must be a string like name=value, not {type(text).__name__}")
    found = _TEXT.fullmatch(text)
    if found is None:
        raise _bad(text, "expected name=value, name!=value, name=~regex or name!~regex")
    name, op, raw = found.groups()
    if not name:
        raise _bad(text, "the label name is missing before the operator")
    value = _unquote(raw, text) if raw.startswith('"') else raw
    is_regex, is_equal = _OPERATORS[op]
    try:
        return Matcher(name, value, is_regex, is_equal)
    except InvalidRequest as exc:
        raise _bad(text, exc.message) from None


def matcher_from_dict(d: Mapping[str, Any]) -> Matcher:
    """Alertmanager's JSON form {name, value, isRegex, isEqual}; isRegex defaults to false, isEqual to true."""
    if not isinstance(d, Mapping):
        raise InvalidRequest(f"a matcher must be an object {{name, value, isRegex, isEqual}}, not {type(d).__name__}")
    unknown = sorted(str(k) for k in d if k not in ("name", "value", "isRegex", "isEqual"))
    if unknown:
        raise InvalidRequest(f"unknown matcher field(s) {unknown}; use name, value, isRegex, isEqual")
    name, value = d.get("name"), d.get("value")
    is_regex, is_equal = d.get("isRegex", False), d.get("isEqual", True)
    if not isinstance(name, str) or not isinstance(value, str):
        raise InvalidRequest("a matcher needs a string name and a string value")
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise InvalidRequest("a matcher's isRegex and isEqual must be true or false")
    return Matcher(name, value, is_regex, is_equal)


def parse_matchers(items: Sequence[str | Mapping[str, Any]]) -> list[Matcher]:
    """Each item a matcher string or its JSON object; the error names the item's position."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise InvalidRequest("matchers must be a list")
    out: list[Matcher] = []
    for i, item in enumerate(items):
        try:
            out.append(parse_matcher(item) if isinstance(item, str) else matcher_from_dict(item))
        except InvalidRequest as exc:
            raise InvalidRequest(f"matchers[{i}]: {exc.message}", details={**exc.details, "index": i}) from None
    return out


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher holds (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
