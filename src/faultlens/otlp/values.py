"""OTLP attribute values -> python values, and the settings the mapping reads (the attribute allow-list, limits)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from faultlens.classify.redact import redact_attributes
from faultlens.ingest import FIELD_LIMITS, truncate
from faultlens.settings import Settings

Scalar = str | bool | int | float | None
# Arrays and maps inside an attribute value are followed this deep; deeper values are shown as "...".
_MAX_DEPTH = 8
# Used when a resource names no service.name, as the OpenTelemetry SDKs themselves do.
UNKNOWN_SERVICE = "unknown_service"


def attribute_map(attributes: Iterable[KeyValue]) -> dict[str, AnyValue]:
    """An attribute list as a dict of its (still encoded) values; a repeated key keeps its last value."""
    return {kv.key: kv.value for kv in attributes}


def to_python(value: AnyValue, depth: int = 0) -> Any:
    """An AnyValue as a python value: str, bool, int, float, list, dict, hex text for bytes, None when empty."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if depth >= _MAX_DEPTH:
        return "..."
    if kind == "array_value":
        return [to_python(v, depth + 1) for v in value.array_value.values]
    return {kv.key: to_python(kv.value, depth + 1) for kv in value.kvlist_value.values}


def to_scalar(value: AnyValue) -> Scalar:
    """An AnyValue as one flat attribute value: arrays and maps as JSON text, a non-finite double as text."""
    item = to_python(value)
    if isinstance(item, float) and not math.isfinite(item):
        return str(item)
    if isinstance(item, (list, dict)):
        return orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS).decode()
    return item  # type: ignore[no-any-return]


def to_text(value: AnyValue | None) -> str | None:
    """An AnyValue as text (a list's first element for header values sent as arrays); None when empty."""
    if value is None:
        return None
    if value.WhichOneof("value") == "array_value":
        values = value.array_value.values
        return to_text(values[0]) if values else None
    item = to_scalar(value)
    if item is None or item == "":
        return None
    return item if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)


def first_text(names: Iterable[str], *maps: Mapping[str, AnyValue]) -> str | None:
    """The first non-empty text among `names`, looked up in each map in turn (span before resource)."""
    for attrs in maps:
        for name in names:
            text = to_text(attrs.get(name))
            if text is not None:
                return text
    return None


def short_id(text: str | None, field: str) -> str | None:
    """An identity value that fits its column, else None: a long foreign id is left out, not the whole event."""
    if text is None or len(text) > FIELD_LIMITS[field] or "\x00" in text:
        return None
    return text


def nanos_to_ms(nanos: int) -> int | None:
    return nanos // 1_000_000 if nanos > 0 else None


@dataclass(frozen=True)
class OtlpConfig:
    """What the mapping reads from Settings, parsed once per receiver."""

    attributes: tuple[str, ...]  # the allow-list, in its configured order, at most max_attributes names
    max_message_chars: int
    max_attribute_chars: int
    max_evidence_per_trace: int
    log_min_severity: int
    max_batch_events: int
    allowed: frozenset[str] = frozenset()  # the allow-list as a set, and each name's place in it
    order: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> OtlpConfig:
        names = [n.strip() for n in settings.otlp_attributes.split(",") if n.strip()]
        attributes = tuple(dict.fromkeys(names))[: settings.max_attributes]
        return cls(
            attributes=attributes,
            allowed=frozenset(attributes),
            order={name: i for i, name in enumerate(attributes)},
            max_message_chars=settings.max_message_chars,
            max_attribute_chars=settings.max_attribute_chars,
            max_evidence_per_trace=settings.otlp_max_evidence_per_trace,
            log_min_severity=settings.otlp_log_min_severity,
            max_batch_events=settings.max_batch_events,
        )

    def pick(self, attrs: Mapping[str, AnyValue]) -> dict[str, Scalar]:
        """The allow-listed attributes of one attribute map, in the allow-list's order."""
        out: dict[str, Scalar] = {}
        if len(attrs) < len(self.attributes):
            present = [name for name in attrs if name in self.allowed]
            names: Iterable[str] = sorted(present, key=self.order.__getitem__) if len(present) > 1 else present
        else:
            names = self.attributes
        for name in names:
            value = attrs.get(name)
            if value is not None:
                item = to_scalar(value)
                if item is not None:
                    out[name] = item
        return out

    def stored_attributes(self, picked: Mapping[str, Scalar]) -> str | None:
        """Allow-listed attributes as stored on an evidence span: redacted, strings cut, as JSON text."""
        if not picked:
            return None
        clean = redact_attributes(picked)
        cut = {k: truncate(v, self.max_attribute_chars) if isinstance(v, str) else v for k, v in clean.items()}
        return orjson.dumps(cut).decode()
