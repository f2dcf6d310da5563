"""Rule packs: the pydantic schema of a pack, its YAML/JSON loader and the shipped default pack."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from faultlens import config_files
from faultlens.classify.regex_safety import UnsafeRegexError, check_regex
from faultlens.errors import RulePackError
from faultlens.model import Category, FailureClass, Status

__all__ = [
    "DEFAULT_PACK_RESOURCE",
    "EVIDENCE_TIERS",
    "GENERAL_ORIGIN",
    "Example",
    "ExampleExpect",
    "Match",
    "Rule",
    "RulePack",
    "default_pack",
    "default_retryable",
    "frame_evidence_of",
    "load_pack",
    "load_pack_data",
]

DEFAULT_PACK_RESOURCE = "packs/default.yaml"

_PACK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}@(\d{4}-\d{2}-\d{2})$")
_RULE_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
_KIND_RE = r"^[a-z][a-z0-9_]{0,63}$"
_HTTP_RANGE_RE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*$")
_HTTP_CLASS_RE = re.compile(r"^\s*([1-9])xx\s*$", re.IGNORECASE)
_ORIGIN_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# How strong the evidence a rule reads is. Within a pack, rules are tried tier by tier in this order
# (file order inside a tier): the product's own literals, then transport facts (an HTTP status or error
# code the caller's stack set), then the words of the message. docs/rules.md "Evidence precedence".
EVIDENCE_TIERS = ("product", "transport", "message")
# The origin of a rule derived from standards or documentation shared by many systems (HTTP status
# semantics, errno names, gRPC codes), as opposed to the cases of one ecosystem.
GENERAL_ORIGIN = "general"

# Transient failures are worth retrying; everything else fails the same way again.
_RETRYABLE_CATEGORIES = frozenset(
    {
        Category.SERVICE_TIMEOUT,
        Category.RATE_LIMITED,
        Category.NETWORK_ERROR,
        Category.DEPENDENCY_ERROR,
        Category.RESOURCE_EXHAUSTED,
        Category.CONFLICT,
    }
)


def default_retryable(failure_class: FailureClass, category: Category) -> bool:
    """The `retryable` a rule gets when it does not say: transient categories only, never an abort."""
    if failure_class in (FailureClass.CLIENT_ABORT, FailureClass.NONE):
        return False
    if failure_class is FailureClass.CLIENT_FAILURE and category is Category.CONFLICT:
        # A duplicate or a stale version conflicts again on retry; only server-side contention clears.
        return False
    return category in _RETRYABLE_CATEGORIES


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _strings(value: Any, field: str, *, lower: bool) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = _as_list(value)
    if not items:
        raise ValueError(f"{field} must not be an empty list")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{field} items must be strings, got {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"{field} must not contain an empty string")
        if "\x00" in item:
            raise ValueError(f"{field} must not contain NUL characters")
        out.append(item.lower() if lower else item)
    return tuple(out)


def _http_ranges(value: Any) -> tuple[tuple[int, int], ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, dict) else _as_list(value)
    if not items:
        raise ValueError("http_status must not be an empty list")
    out: list[tuple[int, int]] = []
    for item in items:
        lo: int
        hi: int
        if isinstance(item, bool):
            raise ValueError("http_status must be an int, a range string or {min, max}")
        if isinstance(item, int):
            lo = hi = item
        elif isinstance(item, str):
            m = _HTTP_RANGE_RE.match(item)
            c = _HTTP_CLASS_RE.match(item)
            if m:
                lo = int(m.group(1))
                hi = int(m.group(2) or m.group(1))
            elif c:
                lo, hi = int(c.group(1)) * 100, int(c.group(1)) * 100 + 99
            else:
                raise ValueError(f"http_status {item!r} is not a status, a range like '500-599' or '5xx'")
        elif isinstance(item, dict):
            unknown = set(item) - {"min", "max"}
            if unknown:
                raise ValueError(f"http_status range has unknown keys {sorted(unknown)}")
            lo_v, hi_v = item.get("min", 100), item.get("max", 999)
            if not isinstance(lo_v, int) or not isinstance(hi_v, int):
                raise ValueError("http_status min/max must be integers")
            lo, hi = lo_v, hi_v
        elif isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, int) for x in item):
            lo, hi = int(item[0]), int(item[1])
        else:
            raise ValueError(f"http_status item {item!r} is not an int, a range string or {{min, max}}")
        if not (100 <= lo <= hi <= 999):
            raise ValueError(f"http_status range {lo}-{hi} is outside 100-999 or reversed")
        out.append((lo, hi))
    return tuple(out)


def _check_regexes(patterns: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Refuse invalid regexes and those that could backtrack for a very long time (see regex_safety)."""
    if patterns is None:
        return None
    problems: list[str] = []
    for pattern in patterns:
        try:
            check_regex(pattern)
        except UnsafeRegexError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))  # pydantic names the rule and field
    return patterns


class Match(BaseModel):
    """When a rule applies. Every condition given must hold; a list means any of its values.

    `text`/`text_regex` extend the required format: they look at error_message or error_code,
    which lets one rule catch a token such as ``ECONNRESET`` wherever the caller put it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_message: tuple[str, ...] | None = None
    error_message_regex: tuple[str, ...] | None = None
    text: tuple[str, ...] | None = None
    text_regex: tuple[str, ...] | None = None
    error_code: tuple[str, ...] | None = None
    http_status: tuple[tuple[int, int], ...] | None = None
    # True: the event carries no HTTP status at all (no caller status: the text describes our own call).
    without_http_status: bool | None = None
    status: tuple[Status, ...] | None = None
    source: tuple[str, ...] | None = None
    operation: tuple[str, ...] | None = None

    @field_validator("error_message", "text", "error_code", "source", "operation", mode="before")
    @classmethod
    def _lowered(cls, value: Any, info: Any) -> tuple[str, ...] | None:
        return _strings(value, info.field_name, lower=True)

    @field_validator("error_message_regex", "text_regex", mode="before")
    @classmethod
    def _regexes(cls, value: Any, info: Any) -> tuple[str, ...] | None:
        return _check_regexes(_strings(value, info.field_name, lower=False))

    @field_validator("http_status", mode="before")
    @classmethod
    def _http(cls, value: Any) -> tuple[tuple[int, int], ...] | None:
        return _http_ranges(value)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if value is None:
            return None
        items = _as_list(value)
        if not items:
            raise ValueError("status must not be an empty list")
        return tuple(x.lower() if isinstance(x, str) else x for x in items)

    @field_validator("without_http_status")
    @classmethod
    def _without_http(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError("without_http_status is true or absent (omit it rather than setting false)")
        return value

    @model_validator(mode="after")
    def _http_conditions_agree(self) -> Match:
        if self.without_http_status and self.http_status is not None:
            raise ValueError("http_status and without_http_status contradict each other: keep one")
        return self

    @field_serializer("http_status")
    def _dump_http(self, value: tuple[tuple[int, int], ...] | None) -> list[int | str] | None:
        if value is None:
            return None
        return [lo if lo == hi else f"{lo}-{hi}" for lo, hi in value]

    def is_empty(self) -> bool:
        """A match with no condition applies to every failing event."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


class ExampleExpect(BaseModel):
    """What an example must classify as, where it differs from its own rule's decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str | None = None
    failure_kind: str | None = None
    failure_class: FailureClass | None = None
    category: Category | None = None
    is_actionable: bool | None = None
    retryable: bool | None = None


class Example(BaseModel):
    """One event a rule documents; the same fields as Classifier.classify()."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status = Status.FAILURE
    http_status: int | None = Field(default=None, ge=100, le=999)
    error_code: str | None = None
    error_message: str | None = None
    source: str | None = None
    operation: str | None = None
    expect: ExampleExpect | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def event(self) -> dict[str, Any]:
        """The keyword arguments classify() takes for this example."""
        return {
            "status": str(self.status),
            "http_status": self.http_status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "source": self.source,
            "operation": self.operation,
        }


class Rule(BaseModel):
    """One decision: the first rule (in pack order) whose match holds classifies the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_RULE_NAME_RE)
    description: str | None = None
    match: Match
    failure_kind: str = Field(pattern=_KIND_RE)
    failure_class: FailureClass
    category: Category
    is_actionable: bool
    retryable: bool
    # Within its pack, a rule is tried with the rules of its tier (EVIDENCE_TIERS), in file order.
    evidence: Literal["product", "transport", "message"] = "message"
    # The ecosystems whose failures the rule was written from (`general`: standards shared by many).
    origin: tuple[str, ...] | None = None
    examples: tuple[Example, ...] = ()

    @field_validator("origin", mode="before")
    @classmethod
    def _origin(cls, value: Any) -> tuple[str, ...] | None:
        items = _strings(value, "origin", lower=False)
        if items is None:
            return None
        for item in items:
            if not _ORIGIN_RE.match(item):
                raise ValueError(f"origin {item!r} must be a lowercase name such as java, go or general")
        if len(set(items)) != len(items):
            raise ValueError("origin must not repeat a name")
        if GENERAL_ORIGIN in items and len(items) > 1:
            raise ValueError(f"origin {GENERAL_ORIGIN!r} stands alone: a general rule belongs to no one ecosystem")
        return items

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # Defaults depend on class and category, so they are filled before field validation;
        # an invalid class or category is left for the field validators to report.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        cls_value = data.get("failure_class")
        cat_value = data.get("category")
        try:
            fclass = FailureClass(cls_value)
        except ValueError:
            return data
        if data.get("is_actionable") is None:
            data["is_actionable"] = fclass is FailureClass.SERVICE_FAILURE
        if data.get("retryable") is None:
            try:
                data["retryable"] = default_retryable(fclass, Category(cat_value))
            except ValueError:
                return data
        return data


class RulePack(BaseModel):
    """A named, dated, ordered list of rules; packs layer: an earlier pack's rules are tried first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str | None = None
    # How `error_message`/`text` literals are found: `substring` anywhere (packs written before tokens
    # existed), or `token`: a literal's letter or digit edge must sit on a token boundary, and a `*` at
    # either end lets the token go on there (text.Literal).
    literal_match: Literal["substring", "token"] = "substring"
    # Stack frames are dropped from the text rules read, except a frame that names one of these (lowercased
    # substrings, e.g. a web server's response-output class): where a failure was raised can say who failed.
    frame_evidence: tuple[str, ...] = ()
    changelog: tuple[str | dict[str, Any], ...] = ()
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _token_literals(self) -> RulePack:
        if self.literal_match != "token":
            return self
        for rule in self.rules:
            for field in ("error_message", "text"):
                for literal in getattr(rule.match, field) or ():
                    if not literal.strip("*").strip():
                        raise ValueError(f"rule {rule.name!r}: {field} {literal!r} has nothing to match but `*`")
                    if "*" in literal.strip("*"):
                        raise ValueError(
                            f"rule {rule.name!r}: {field} {literal!r}: `*` may only open a literal's start or end"
                        )
        return self

    @field_validator("frame_evidence", mode="before")
    @classmethod
    def _frames(cls, value: Any) -> tuple[str, ...]:
        return _strings(value, "frame_evidence", lower=True) or ()

    def tried_in_order(self) -> tuple[Rule, ...]:
        """The rules in the order the classifier tries them: by evidence tier, file order within one."""
        return tuple(sorted(self.rules, key=lambda r: EVIDENCE_TIERS.index(r.evidence)))

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        m = _PACK_ID_RE.match(value)
        if not m:
            raise ValueError(f"pack id {value!r} must look like name@YYYY-MM-DD")
        try:
            dt.date.fromisoformat(m.group(1))
        except ValueError:
            raise ValueError(f"pack id {value!r} has an invalid date") from None
        return value

    @property
    def name(self) -> str:
        return self.id.split("@", 1)[0]

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.id.split("@", 1)[1])

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def _rule_label(data: dict[str, Any], index: int) -> str:
    rules = data.get("rules")
    if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
        name = rules[index].get("name")
        if isinstance(name, str):
            return f"rule {name!r} (rules[{index}])"
    return f"rules[{index}]"


def _describe(exc: ValidationError, data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    details: list[dict[str, Any]] = []
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        rule: str | None = None
        field_parts = [str(p) for p in loc]
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rule = _rule_label(data, loc[1])
            field_parts = [str(p) for p in loc[2:]]
        # pydantic puts union-member tags in the location; they are noise to a pack author.
        field = ".".join(p for p in field_parts if not p.startswith(("tuple[", "function-")) and p != "str")
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = f"{rule}: {field or 'rule'}" if rule else (field or "pack")
        lines.append(f"{where}: {msg}")
        details.append({"rule": rule, "field": field or None, "loc": loc, "error": msg})
    return "; ".join(dict.fromkeys(lines)), details


def load_pack_data(data: dict[str, Any]) -> RulePack:
    """Validate a decoded pack; any problem raises RulePackError naming the rule and field."""
    if not isinstance(data, dict):
        raise RulePackError(
            "a rule pack must be a mapping with 'id' and 'rules'", details={"type": type(data).__name__}
        )
    try:
        return RulePack.model_validate(data)
    except ValidationError as exc:
        message, details = _describe(exc, data)
        pack_id = data.get("id") if isinstance(data.get("id"), str) else None
        raise RulePackError(
            f"invalid rule pack {pack_id or '(no id)'}: {message}",
            details={"pack": pack_id, "errors": details},
        ) from None


_PACK_FILE = config_files.FileKind(
    "rule pack",
    RulePackError,
    lambda data, _origin: load_pack_data(data),
    suffixes={".yaml": "yaml", ".yml": "yml", ".json": "json"},
    other=None,
)


def load_pack(path: Path) -> RulePack:
    """Load a pack from a .yaml/.yml or .json file (parsed again only when the file changes)."""
    return config_files.load(Path(path), _PACK_FILE)


def frame_evidence_of(packs: Iterable[RulePack]) -> tuple[str, ...]:
    """The frames a stack of layered packs keeps in the decision text: every pack's frame_evidence, once each."""
    return tuple(dict.fromkeys(f for pack in packs for f in pack.frame_evidence))


@functools.cache
def default_pack() -> RulePack:
    """The shipped pack, parsed once per process."""
    resource = importlib.resources.files("faultlens.classify").joinpath(DEFAULT_PACK_RESOURCE)
    text = resource.read_text(encoding="utf-8")
    return load_pack_data(_PACK_FILE.decode(text, "yaml", DEFAULT_PACK_RESOURCE))
