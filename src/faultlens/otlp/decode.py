"""OTLP/HTTP request bodies -> request messages: protobuf, or the OTLP JSON encoding (hex ids), never by hand."""

from __future__ import annotations

import base64
import re
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from faultlens.errors import InvalidRequest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
# OTLP JSON carries these byte fields as hex (the proto3 JSON mapping would read them as base64).
_HEX_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")

M = TypeVar("M", bound=Message)


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_body")


def _hex_ids_to_base64(doc: Any) -> None:
    """Rewrite every hex id in place (spans, links, log records), walking without recursion."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _HEX_FIELDS and isinstance(value, str):
                    if not _HEX.fullmatch(value):
                        raise _invalid(f"{key} must be hex text (OTLP JSON), got {value[:40]!r}")
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


def decode(body: bytes, media_type: str, message_type: type[M]) -> M:
    """`body` as a `message_type`; 400 invalid_body when it does not decode as the media type says."""
    message: M = message_type()
    if media_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise _invalid(f"the body is not a protobuf {message_type.__name__}: {exc}") from None
        return message
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            return message  # an empty JSON export request, as exporters send none: treated like "{}"
        raise InvalidRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(doc, dict):
        raise _invalid(f"the body must be a JSON object ({message_type.__name__})")
    _hex_ids_to_base64(doc)
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise _invalid(f"the body is not an OTLP JSON {message_type.__name__}: {exc}") from None
    return message


def decode_traces(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    return decode(body, media_type, ExportTraceServiceRequest)


def decode_logs(body: bytes, media_type: str) -> ExportLogsServiceRequest:
    return decode(body, media_type, ExportLogsServiceRequest)


def encode(message: Message, media_type: str) -> bytes:
    """A response message in the request's encoding (OTLP JSON for JSON requests, protobuf otherwise)."""
    if media_type == JSON:
        return orjson.dumps(json_format.MessageToDict(message))
    data: bytes = message.SerializeToString()
    return data
