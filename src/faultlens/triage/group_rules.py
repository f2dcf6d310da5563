"""Rule drafts from failure groups: a rule-pack rule matching a group's template words, and the preview of the
tenant's pack with it added first (nothing is activated; that stays the rule-pack flow)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from faultlens.classify.fingerprint_align import WILDCARD
from faultlens.classify.fingerprint_mask import PLACEHOLDERS
from faultlens.classify.rules import Rule, RulePack
from faultlens.errors import InvalidRequest

# Template slots: the fingerprinter's placeholders and generalised positions; literal words lie between them.
_SLOT = re.compile("|".join(re.escape(p) for p in (*PLACEHOLDERS, WILDCARD)))
_WORDS = re.compile(r"[a-z]{3,}")  # a fragment counts when it holds a word
GAP = ".{0,200}"  # between fragments: bounded, so the regex safety check accepts a chain of them
MAX_FRAGMENTS = 6
DRAFT_PACK_NAME = "groups"


def fragments(template: str) -> list[str]:
    """The template's literal runs in order (lower case, trimmed), those that hold a word of 3+ letters."""
    out = []
    for raw in _SLOT.split(template):
        piece = raw.strip().lower()
        if piece and _WORDS.search(piece):
            out.append(piece)
    return out


def _match(template: str) -> dict[str, list[str]]:
    parts = fragments(template)
    if not parts:
        raise InvalidRequest("the group's template has no literal words to match on; write the rule by hand")
    if len(parts) == 1:
        return {"error_message": parts}
    # The longest fragments, kept in template order: a regex over them in turn, with bounded gaps.
    keep = sorted(sorted(range(len(parts)), key=lambda i: -len(parts[i]))[:MAX_FRAGMENTS])
    return {"error_message_regex": [GAP.join(_escape(parts[i]) for i in keep)]}


def _escape(text: str) -> str:
    # Spaces and hyphens need no escape outside a character class, and read better in the pack.
    return re.escape(text).replace("\\ ", " ").replace("\\-", "-")


def _kind_of(group_id: str) -> str:
    return f"group_{group_id.lower()}"[:64] if re.fullmatch(r"[0-9a-zA-Z]+", group_id) else "group_failure"


def draft_rule(
    *, group_id: str, template: str, sample: str | None, mix_class: str | None, choices: Mapping[str, Any]
) -> dict[str, Any]:
    """The rule entry as data (validated as a rule-pack rule); `choices` are the caller's decision fields."""
    rule: dict[str, Any] = {
        "name": f"group_{group_id}"[:100],
        "description": f"Drafted from failure group {group_id}: {template}"[:500],
        "match": _match(template),
        "failure_kind": choices.get("kind") or _kind_of(group_id),
        "failure_class": choices.get("failure_class") or mix_class or "service_failure",
        "category": choices.get("category") or "unknown",
    }
    for flag in ("is_actionable", "retryable"):
        if choices.get(flag) is not None:
            rule[flag] = choices[flag]
    if sample:
        rule["examples"] = [{"error_message": sample}]
    try:
        Rule.model_validate(rule)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidRequest("the drafted rule is not valid", details={"problems": problems[:10]}) from None
    return rule


def as_yaml(rule: Mapping[str, Any]) -> str:
    """The entry as the pack's YAML writes it: one list item under `rules:`."""
    return str(yaml.safe_dump([dict(rule)], sort_keys=False, allow_unicode=True, width=120))


def draft_pack(own: RulePack | None, rule: Mapping[str, Any], *, today: dt.date) -> RulePack:
    """The tenant's pack with `rule` first (a pack of its own when the tenant has none), dated today."""
    name = own.name if own is not None else DRAFT_PACK_NAME
    rules: list[Any] = [dict(rule)]
    if own is not None:
        rules += [r.model_dump(exclude_none=True) for r in own.rules if r.name != rule["name"]]
    description = own.description if own is not None else "Rules drafted from failure groups"
    return RulePack.model_validate({"id": f"{name}@{today.isoformat()}", "description": description, "rules": rules})
