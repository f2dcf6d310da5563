"""The ingest pipeline every entry point uses: parse -> validate -> redact -> classify -> fingerprint -> store."""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine

from faultlens.classify import cache_stats
from faultlens.classify.cache_stats import CacheCounter
from faultlens.classify.redact import MASK, is_secret_key, redact
from faultlens.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from faultlens.model import FAILED_STATUSES, ItemType, Status
from faultlens.settings import Settings
from faultlens.store import events as event_store
from faultlens.store.tables import events as events_table
from faultlens.timeutil import now_ms, parse_rfc3339_ms

log = logging.getLogger("faultlens.ingest")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_STATUSES = frozenset(s.value for s in Status)
_FAILED = frozenset(s.value for s in FAILED_STATUSES)
_ITEM_TYPES = frozenset(t.value for t in ItemType)
# Free text: stored redacted, and cut (head and tail kept, with a marker) beyond its limit, never refused.
_FREE_TEXT = ("operation", "error_code", "release", "environment")
# Identity fields: an over-long value is refused (cutting it could merge two different ids or sources).
_ID_TEXT = ("source", "trace_id", "span_id", "correlation_id", "request_id", "job_id")
# The stored length of each text column is its limit, read from the table so the two never disagree.
FIELD_LIMITS: dict[str, int] = {
    name: int(getattr(events_table.c[name].type, "length", 0) or 0) for name in ("id", *_ID_TEXT, *_FREE_TEXT)
}
_SHORT_TEXT = _ID_TEXT + _FREE_TEXT
_ID_LIMITS = tuple(FIELD_LIMITS[name] for name in _ID_TEXT)
_FREE_LIMITS = tuple((name, FIELD_LIMITS[name]) for name in _FREE_TEXT)
_ID_CHARS = FIELD_LIMITS["id"]
# Texts up to this length are remembered with their redacted form, at most _SHORT_TEXTS_MAX of them.
_SHORT_TEXT_CHARS = 128
_SHORT_TEXTS_MAX = 16_384
_INT_RANGES = (("http_status", 100, 599), ("attempt", 0, 1_000_000), ("max_attempts", 0, 1_000_000))
_INTS = tuple(name for name, _, _ in _INT_RANGES)
_KNOWN = frozenset(
    (
        "id",
        "item_type",
        "status",
        "occurred_at",
        "started_at",
        "duration_ms",
        "error_message",
        "attributes",
        *_SHORT_TEXT,
        *_INTS,
    )
)
_MAX_FUTURE_MS = 86_400_000
# Attribute key holding the original length of a field stored cut, e.g. {"truncated.error_message": 120000}.
TRUNCATED_PREFIX = "truncated."


class EventRejected(Exception):
    """One event of a batch is invalid; the rest of the batch goes on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


UTF8_BOM = b"\xef\xbb\xbf"
NDJSON_MEDIA_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def parse_body(body: bytes, content_type: str | None, *, max_events: int, max_bytes: int) -> list[Any]:
    """Decode a JSON array, an {"events": [...]} object or NDJSON into raw event values."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; the limit is {max_bytes}", details={"limit_bytes": max_bytes}
        )
    media = (content_type or "").split(";")[0].strip().lower()
    # A leading UTF-8 byte order mark (some Windows tools write one) is not part of the JSON text (RFC 8259 8.1).
    body = body.removeprefix(UTF8_BOM)
    if media in NDJSON_MEDIA_TYPES:
        items = _parse_ndjson(body)
    elif media not in ("", "application/json"):
        accepted = ("application/json", *NDJSON_MEDIA_TYPES)
        raise UnsupportedMediaType(
            f"events are read as {', '.join(accepted)}, not {media}",
            details={"content_type": media, "accepted": list(accepted)},
        )
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}", code="invalid_json") from exc
        if isinstance(doc, dict) and isinstance(doc.get("events"), list):
            items = doc["events"]
        elif isinstance(doc, list):
            items = doc
        else:
            raise InvalidRequest('body must be a JSON array of events or {"events": [...]}', code="invalid_body")
    if len(items) > max_events:
        raise PayloadTooLarge(
            f"batch holds {len(items)} events; the limit is {max_events}", details={"limit_events": max_events}
        )
    return items


class _BadLine:
    """An NDJSON line that does not parse; validation rejects it at its index."""

    def __init__(self, error: str) -> None:
        self.error = error


def _parse_ndjson(body: bytes) -> list[Any]:
    items: list[Any] = []
    bad = 0
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            bad += 1
            items.append(_BadLine(str(exc)))
    if bad and bad == len(items):
        raise InvalidRequest("body is not valid NDJSON: no line parses as JSON", code="invalid_json")
    return items


def _free_text(value: Any, name: str) -> str | None:
    """A text field: type-checked and NUL-free (free text is cut by truncate() after redaction)."""
    if value is None:
        return None
    if type(value) is not str:
        raise EventRejected("invalid_field", f"{name} must be a string")
    if "\x00" in value:
        raise EventRejected("invalid_field", f"{name} must not contain NUL characters")
    return value


def _text(value: Any, name: str, limit: int) -> str | None:
    """An identity field: a text field refused beyond `limit` (cutting could merge two ids)."""
    text = _free_text(value, name)
    if text is not None and len(text) > limit:
        raise EventRejected("field_too_long", f"{name} is {len(text)} characters; the limit is {limit}")
    return text


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, keeping its head and its tail around a marker.

    A stack trace's first lines say what failed and its last lines (Python's exception, Java's last
    "Caused by") say why, so both ends are kept: three quarters of the room for the head, the rest for the tail.
    """
    if len(text) <= limit:
        return text
    marker = f"\n…[cut by faultlens: {len(text)} characters in all]…\n"
    room = max(limit - len(marker), 0)
    head = room * 3 // 4
    tail = room - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


def _int(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise EventRejected("invalid_field", f"{name} must be an integer")
    if not low <= value <= high:
        raise EventRejected("invalid_field", f"{name} must be between {low} and {high}")
    return int(value)


def _time(value: Any, name: str, now: int, *, epoch_ms: bool = False) -> int | None:
    if value is None:
        return None
    # Epoch milliseconds only from in-process callers that read a binary time (the OTLP receiver's nanoseconds);
    # over the API a time is an RFC 3339 string.
    if epoch_ms and type(value) is int:
        ms = value
    elif not isinstance(value, str):
        raise EventRejected("invalid_timestamp", f"{name} must be an RFC 3339 string")
    else:
        try:
            ms = parse_rfc3339_ms(value)
        except ValueError as exc:
            raise EventRejected("invalid_timestamp", f"{name}: {exc}") from exc
    if ms < 0 or ms > now + _MAX_FUTURE_MS:
        raise EventRejected("invalid_timestamp", f"{name} is outside the accepted range (1970 to now + 1 day)")
    return ms


# Epoch ms of "YYYY-MM-DDTHH:MM" (UTC) prefixes seen lately: events of a batch share their first minutes.
_MINUTES: dict[str, int] = {}
_MINUTES_MAX = 4096


def _utc_ms(value: str) -> int | None:
    """Epoch ms of the common RFC 3339 form "YYYY-MM-DDTHH:MM:SS[.fraction]Z", or None for any other text
    (parse_rfc3339_ms then decides, with its own error). Equal to parse_rfc3339_ms wherever it answers."""
    n = len(value)
    if n < 20 or n > 30 or value[-1] not in "Zz" or not value.isascii():
        return None
    prefix = value[:16]
    base = _MINUTES.get(prefix)
    if base is None:
        try:
            base = parse_rfc3339_ms(prefix + ":00Z")
        except ValueError:
            return None
        if len(_MINUTES) >= _MINUTES_MAX:
            _MINUTES.clear()
        _MINUTES[prefix] = base
    seconds = value[16:19]
    if seconds[0] != ":" or not seconds[1:].isdigit() or seconds[1:] > "59":
        return None
    ms = base + int(seconds[1:]) * 1000
    if n == 20:
        return ms
    fraction = value[20:-1]
    if value[19] != "." or not fraction.isdigit():  # 1 to 9 digits: n is at most 30
        return None
    return ms + int(fraction[:3].ljust(3, "0"))


class Pipeline:
    """Turns raw event values into stored, classified, fingerprinted rows for one tenant at a time."""

    def __init__(self, engine: Engine, settings: Settings, classifier: Any, fingerprints: Any) -> None:
        self.engine = engine
        self.settings = settings
        self.classifier = classifier
        self.fingerprints = fingerprints
        # Set by Services: a tenant's own rule stack, None when it classifies with `classifier` (the global one).
        self.tenant_classifiers: Callable[[str], Any] | None = None
        # Short texts -> their redacted form (see _redacted).
        self._short_texts: dict[str, str] = {}

    def classifier_for(self, tenant: str) -> Any:
        lookup = self.tenant_classifiers
        return (lookup(tenant) if lookup is not None else None) or self.classifier

    def validate(self, raw: Any, *, tenant: str, now: int, epoch_ms: bool = False) -> dict[str, Any]:
        """One raw value -> a row for the events table (redacted, not yet classified).

        `epoch_ms`: occurred_at and started_at may be integer epoch milliseconds (in-process callers only).
        """
        if type(raw) is dict:
            row = self._clean_row(raw, tenant, now, epoch_ms)
            if row is not None:
                return row
        return self._checked_row(raw, tenant=tenant, now=now, epoch_ms=epoch_ms)

    def _redacted(self, value: str) -> str:
        """redact(value) for the short texts events repeat (source, operation, codes, releases, attribute values),
        answered from a dict before any call into the redactor."""
        text = self._short_texts.get(value)
        if text is None:
            text = redact(value)
            if len(value) <= _SHORT_TEXT_CHARS:
                if len(self._short_texts) >= _SHORT_TEXTS_MAX:
                    self._short_texts.clear()
                self._short_texts[value] = text
        return text

    def _clean_row(self, raw: dict[str, Any], tenant: str, now: int, epoch_ms: bool) -> dict[str, Any] | None:
        """The row of an event that is valid and needs no cut, in one pass; None for anything else (an error, a
        value to cut, an unusual but valid type), which _checked_row then decides with its exact message.

        The same rules as _checked_row, so both give the same row for an event this accepts."""
        if not _KNOWN.issuperset(raw):
            return None
        get = raw.get
        try:
            ids = list(map(get, _ID_TEXT))
            for value, limit in zip(ids, _ID_LIMITS, strict=False):
                if value is not None and (type(value) is not str or len(value) > limit or "\x00" in value):
                    return None
            source, trace_id, span_id, correlation_id, request_id, job_id = ids
            if not source:
                return None
            short = self._short_texts
            texts = []
            for name, limit in _FREE_LIMITS:
                value = get(name)
                if value:
                    if type(value) is not str or "\x00" in value:
                        return None
                    value = short.get(value) or self._redacted(value)
                    if len(value) > limit:
                        return None
                elif value is not None and value != "":
                    return None
                texts.append(value)
            status = get("status")
            if type(status) is not str or status not in _STATUSES:
                return None
            item_type = get("item_type", "request")
            if type(item_type) is not str or item_type not in _ITEM_TYPES:
                return None
            # The common RFC 3339 form without a call through _clean_time, which decides every other value.
            occurred = get("occurred_at")
            occurred_at = _utc_ms(occurred) if type(occurred) is str else None
            if occurred_at is None or not 0 <= occurred_at <= now + _MAX_FUTURE_MS:
                occurred_at = self._clean_time(occurred, now, epoch_ms)
                if occurred_at is None:
                    return None
            started = get("started_at")
            started_at = None if started is None else self._clean_time(started, now, epoch_ms)
            if started is not None and started_at is None:
                return None
            ints = list(map(get, _INTS))
            for value, (_, low, high) in zip(ints, _INT_RANGES, strict=False):
                if value is not None and (type(value) is not int or not low <= value <= high):
                    return None
            duration = get("duration_ms")
            if duration is not None:
                kind = type(duration)
                if (kind is not float and kind is not int) or not duration >= 0 or not math.isfinite(duration):
                    return None
                duration = float(duration)
            message = get("error_message")
            if message:
                if type(message) is not str or "\x00" in message:
                    return None
                message = redact(message)
                if len(message) > self.settings.max_message_chars:
                    return None
            elif message is not None and message != "":
                return None
            event_id = get("id")
            if event_id:
                # isprintable() is false for every control character (and for some other characters the
                # regex then clears).
                if (
                    type(event_id) is not str
                    or len(event_id) > _ID_CHARS
                    or (not event_id.isprintable() and _CONTROL.search(event_id))
                    or event_id in (".", "..")
                ):
                    return None
            elif event_id is None or event_id == "":
                event_id = uuid.uuid4().hex
            else:
                return None
            attrs = get("attributes")
            if attrs is not None:
                attrs = self._clean_attributes(attrs)
                if attrs is None:
                    return None
        except (TypeError, ValueError, OverflowError):
            return None
        operation, error_code, release, environment = texts
        http_status, attempt, max_attempts = ints
        return {
            "tenant": tenant,
            "received_at": now,
            "source": short.get(source) or self._redacted(source),
            "trace_id": trace_id,
            "span_id": span_id,
            "correlation_id": correlation_id,
            "request_id": request_id,
            "job_id": job_id,
            "operation": operation,
            "error_code": error_code,
            "release": release,
            "environment": environment,
            "status": status,
            "item_type": item_type,
            "occurred_at": occurred_at,
            "started_at": started_at,
            "http_status": http_status,
            "attempt": attempt,
            "max_attempts": max_attempts,
            "duration_ms": duration,
            "error_message": message,
            "id": event_id,
            "attributes": attrs,
        }

    @staticmethod
    def _clean_time(value: Any, now: int, epoch_ms: bool) -> int | None:
        """_time's answer for a valid time, else None."""
        if type(value) is str:
            ms = _utc_ms(value)
            if ms is None:
                try:
                    ms = parse_rfc3339_ms(value)
                except ValueError:
                    return None
        elif epoch_ms and type(value) is int:
            ms = value
        else:
            return None
        return ms if 0 <= ms <= now + _MAX_FUTURE_MS else None

    def _clean_attributes(self, value: Any) -> str | None:
        """_attributes' JSON for attributes that are valid and need no cut, else None."""
        s = self.settings
        if type(value) is not dict or len(value) > s.max_attributes:
            return None
        limit = s.max_attribute_chars
        short = self._short_texts
        clean: dict[str, Any] = {}
        for key, item in value.items():
            if len(key) > 128 or "\x00" in key:
                return None
            kind = type(item)
            if kind is str:
                if not item:
                    clean[key] = item
                    continue
                if "\x00" in item:
                    return None
                if is_secret_key(key):
                    clean[key] = MASK
                    continue
                text = short.get(item) or self._redacted(item)
                if len(text) > limit:
                    return None
                clean[key] = text
            elif item is None or kind is bool:
                clean[key] = item
            elif kind is int or (kind is float and math.isfinite(item)):
                clean[key] = MASK if is_secret_key(key) else item
            else:
                return None
        return orjson.dumps(clean).decode()

    def _checked_row(self, raw: Any, *, tenant: str, now: int, epoch_ms: bool = False) -> dict[str, Any]:
        """validate() for any value: every rule checked in turn, the first broken one raised as EventRejected."""
        if isinstance(raw, _BadLine):
            raise EventRejected("invalid_json", f"line is not valid JSON: {raw.error}")
        if not isinstance(raw, dict):
            raise EventRejected("invalid_event", "event must be a JSON object")
        s = self.settings
        if not _KNOWN.issuperset(raw):
            unknown = raw.keys() - _KNOWN
            raise EventRejected("unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")
        row: dict[str, Any] = {"tenant": tenant, "received_at": now}
        truncated: dict[str, int] = {}
        for name in _ID_TEXT:
            value = raw.get(name)
            limit = FIELD_LIMITS[name]
            # The common case (absent, or a short clean string) without a call; _text explains the rest.
            if value is None or (type(value) is str and len(value) <= limit and "\x00" not in value):
                row[name] = value
            else:
                row[name] = _text(value, name, limit)
        if not row["source"]:
            raise EventRejected("missing_field", "source is required")
        # A source is shown in metric labels, exports and the dashboard: a credential pasted into it is masked too.
        row["source"] = redact(row["source"])
        for name in _FREE_TEXT:
            row[name] = self._stored_text(_free_text(raw.get(name), name), name, FIELD_LIMITS[name], truncated)
        status = raw.get("status")
        if status is None:
            raise EventRejected("missing_field", "status is required")
        if type(status) is not str or status not in _STATUSES:
            raise EventRejected("invalid_status", f"status must be one of {', '.join(sorted(_STATUSES))}")
        row["status"] = status
        item_type = raw.get("item_type", "request")
        if type(item_type) is not str or item_type not in _ITEM_TYPES:
            raise EventRejected("invalid_field", f"item_type must be one of {', '.join(sorted(_ITEM_TYPES))}")
        row["item_type"] = item_type
        if raw.get("occurred_at") is None:
            raise EventRejected("missing_field", "occurred_at is required")
        row["occurred_at"] = _time(raw["occurred_at"], "occurred_at", now, epoch_ms=epoch_ms)
        row["started_at"] = _time(raw.get("started_at"), "started_at", now, epoch_ms=epoch_ms)
        for name, low, high in _INT_RANGES:
            value = raw.get(name)
            # The common case (absent, or an int in range) without a call; _int explains the rest.
            row[name] = (
                value
                if value is None or (type(value) is int and low <= value <= high)
                else _int(value, name, low, high)
            )
        duration = raw.get("duration_ms")
        if duration is not None:
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
                raise EventRejected("invalid_field", "duration_ms must be a number")
            if duration < 0:
                raise EventRejected("invalid_field", "duration_ms must not be negative")
            duration = float(duration)
        row["duration_ms"] = duration
        message = _free_text(raw.get("error_message"), "error_message")
        row["error_message"] = self._stored_text(message, "error_message", s.max_message_chars, truncated)
        event_id = _text(raw.get("id"), "id", FIELD_LIMITS["id"])
        if event_id and (_CONTROL.search(event_id) or event_id in (".", "..")):
            # An id is a path segment of /api/v1/events/{id} and of the dashboard's links: one that a URL cannot
            # carry unchanged could never be fetched (or would fetch another event).
            raise EventRejected("invalid_field", "id must not contain control characters or be '.' or '..'")
        row["id"] = event_id if event_id else uuid.uuid4().hex
        row["attributes"] = self._attributes(raw.get("attributes"), truncated)
        return row

    @staticmethod
    def _stored_text(value: str | None, name: str, limit: int, truncated: dict[str, int]) -> str | None:
        """Redact first (so a cut never splits a secret from its mask), then cut to the stored limit."""
        if not value:
            return value
        text = redact(value)
        if len(text) > limit:
            truncated[TRUNCATED_PREFIX + name] = len(value)
            text = truncate(text, limit)
        return text

    def _attributes(self, value: Any, truncated: dict[str, int]) -> str | None:
        if value is None:
            if not truncated:
                return None
            value = {}
        s = self.settings
        if type(value) is not dict:
            raise EventRejected("invalid_field", "attributes must be a flat object")
        if len(value) > s.max_attributes:
            raise EventRejected("invalid_field", f"attributes holds {len(value)} keys; the limit is {s.max_attributes}")
        clean: dict[str, Any] = {}
        for key, item in value.items():
            if len(key) > 128 or "\x00" in key:
                raise EventRejected("invalid_field", "attribute names must be at most 128 characters, without NUL")
            if isinstance(item, str):
                if "\x00" in item:
                    raise EventRejected("invalid_field", f"attribute {key!r} must not contain NUL characters")
                # A value under a secret-named key ("password", "DB_PASSWORD", "x-api-key") is masked whole.
                secret = bool(item) and is_secret_key(key)
                clean[key] = MASK if secret else self._stored_text(item, key, s.max_attribute_chars, truncated)
            elif item is None or isinstance(item, bool):
                clean[key] = item
            elif isinstance(item, int) or (isinstance(item, float) and math.isfinite(item)):
                # A number under a secret-named key (a PIN under "password") is a secret too.
                clean[key] = MASK if is_secret_key(key) else item
            else:
                raise EventRejected("invalid_field", f"attribute {key!r} must be a string, number or boolean")
        # The original lengths of fields stored cut; these keys do not count against max_attributes.
        clean.update(truncated)
        return orjson.dumps(clean).decode()

    def classify_row(self, row: dict[str, Any], classifier: Any = None, counter: CacheCounter | None = None) -> None:
        """Set the derived fields of a validated row (used by ingest and by backfill) with its tenant's rules;
        `counter` counts the cache lookup (ingest: the tenant's, cache_stats.counter)."""
        if classifier is None:
            tenant = row.get("tenant")
            classifier = self.classifier if tenant is None else self.classifier_for(tenant)
        c = classifier.classify(
            status=row["status"],
            http_status=row["http_status"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            source=row["source"],
            operation=row["operation"],
            counter=counter,
        )
        row["failure_kind"] = c.failure_kind
        row["failure_class"] = c.failure_class.value
        row["is_actionable"] = c.is_actionable
        row["category"] = c.category
        row["retryable"] = c.retryable
        row["rule_name"] = c.rule_name
        row["rule_version"] = c.rule_version

    def fingerprint_row(self, row: dict[str, Any], fingerprinter: Any = None) -> tuple[str, str] | None:
        """Set a row's template id with its tenant's fingerprinter (or `fingerprinter`); the id and template text."""
        if row["status"] not in _FAILED:
            row["fingerprint_id"] = None
            return None
        text = row["error_message"] or row["error_code"] or ""
        if not text:
            row["fingerprint_id"] = None
            return None
        if fingerprinter is None:
            # Each tenant has its own templates: one tenant's messages never generalise another's.
            fingerprinter = self.fingerprints.for_tenant(row["tenant"])
        template = fingerprinter.add(text)
        row["fingerprint_id"] = template.id
        return template.id, template.text

    def ingest(
        self, raw_events: Sequence[Any], *, tenant: str, first_index: int = 0, epoch_ms: bool = False
    ) -> IngestResult:
        """Validate, derive and store a batch; valid events are stored even when others are rejected."""
        now = now_ms()
        result = IngestResult()
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        templates: dict[str, tuple[str, str, int]] = {}
        classifier = self.classifier_for(tenant)
        fingerprinter = self.fingerprints.for_tenant(tenant)
        lookups = cache_stats.counter(cache_stats.CLASSIFIER, tenant)
        for index, raw in enumerate(raw_events):
            try:
                row = self.validate(raw, tenant=tenant, now=now, epoch_ms=epoch_ms)
            except EventRejected as exc:
                result.rejected.append(
                    {"index": first_index + index, "error": {"code": exc.code, "message": exc.message}}
                )
                continue
            except (TypeError, ValueError, OverflowError):
                # A shape validate() does not foresee is still one rejected event, never a lost batch.
                log.exception("event %d of a batch failed validation unexpectedly", first_index + index)
                result.rejected.append(
                    {
                        "index": first_index + index,
                        "error": {"code": "invalid_event", "message": "event could not be validated"},
                    }
                )
                continue
            if row["id"] in seen:
                result.duplicates += 1
                continue
            seen.add(row["id"])
            self.classify_row(row, classifier, lookups)
            found = self.fingerprint_row(row, fingerprinter)
            if found is not None:
                known = templates.get(found[0])
                # first seen is the earliest occurrence in the batch, whatever order the batch arrived in
                if known is None or row["occurred_at"] < known[2]:
                    sample = row["error_message"] or row["error_code"] or ""
                    templates[found[0]] = (found[1], sample, row["occurred_at"])
            rows.append(row)
        if rows:
            inserted = event_store.insert_events(self.engine, rows, templates=templates, tenant=tenant)
            result.accepted = inserted
            result.duplicates += len(rows) - inserted
        return result

    def ingest_iter(
        self, raw_events: Iterable[Any], *, tenant: str, batch_size: int = 1000, epoch_ms: bool = False
    ) -> Iterable[IngestResult]:
        """Ingest a long stream in batches (file import, connectors); yields one result per batch."""
        batch: list[Any] = []
        offset = 0
        for raw in raw_events:
            batch.append(raw)
            if len(batch) >= batch_size:
                yield self.ingest(batch, tenant=tenant, first_index=offset, epoch_ms=epoch_ms)
                offset += len(batch)
                batch = []
        if batch:
            yield self.ingest(batch, tenant=tenant, first_index=offset, epoch_ms=epoch_ms)
