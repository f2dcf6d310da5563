"""Attribute filters: which event attributes rollups keep, and the SQL that matches them in raw events.

A filter `name=value` matches events whose attribute `name` is the string `value`, or an integer of at most
18 digits whose decimal text is `value`. Booleans, fractions and longer numbers never match. The rule is the
same on SQLite, on PostgreSQL and in rollups, so every path to an answer gives the same one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import BigInteger, and_, cast, func, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from faultlens.store.tables import events

# The filters the API exposes (the parallel-ops document's names); rollups keep a row per value of each.
ROLLED = ("site_id", "target_object", "template_key")
VALUE_CHARS = 128  # longer values get no rollup rows: filters on them scan raw events
_MAX_INT = 10**18 - 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def filter_text(value: Any) -> str | None:
    """The text a filter compares with, or None when no filter can match `value`."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and -_MAX_INT <= value <= _MAX_INT:
        return str(value)
    return None


def rolled_pairs(attributes: str | bytes | Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """(name, text) of each rolled-up attribute an event carries (stored JSON text or a mapping)."""
    if not attributes:
        return ()
    data = orjson.loads(attributes) if isinstance(attributes, str | bytes) else attributes
    if not isinstance(data, Mapping):
        return ()
    pairs = []
    for name in ROLLED:
        text = filter_text(data.get(name))
        if text is not None and len(text) <= VALUE_CHARS:
            pairs.append((name, text))
    return tuple(pairs)


def rollable(attrs: Mapping[str, str] | None) -> tuple[str, str] | None:
    """The single (name, value) filter rollups can answer, or None (no filter, several, or not rolled up)."""
    if not attrs or len(attrs) != 1:
        return None
    ((name, value),) = attrs.items()
    return (name, value) if name in ROLLED and len(value) <= VALUE_CHARS else None


def clause(dialect: str, name: str, value: str) -> ColumnElement[bool]:
    """events.attributes[name] matches `value` under the rule above."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not an attribute name")
    if dialect == "postgresql":
        doc = cast(events.c.attributes, JSONB)
        kind = func.jsonb_typeof(doc.op("->")(name))
        text = doc.op("->>")(name)
        integer = and_(kind == "number", text.op("~")(r"^-?[0-9]{1,18}$"))
        return and_(text == value, or_(kind == "string", integer))
    path = f'$."{name}"'
    kind = func.json_type(events.c.attributes, path)
    extracted = func.json_extract(events.c.attributes, path)
    integer = and_(kind == "integer", cast(extracted, BigInteger).between(-_MAX_INT, _MAX_INT))
    return and_(cast(extracted, events.c.attributes.type) == value, or_(kind == "text", integer))


def clauses(dialect: str, attrs: Mapping[str, str] | None) -> list[ColumnElement[bool]]:
    return [clause(dialect, name, value) for name, value in sorted((attrs or {}).items())]
