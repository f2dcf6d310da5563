"""faultlens' own log lines on stderr: JSON lines (or text for a person), each with the request or job context."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from faultlens import request_context

LogFormat = Literal["auto", "json", "text"]
FIELDS = request_context.FIELDS
# The keys every JSON line starts with, in this order; `exc` follows when the record carries an exception.
KEYS = ("ts", "level", "logger", "msg", *FIELDS)
# Third-party libraries log at WARNING and above; faultlens and uvicorn at the configured level.
_OWN_LOGGERS = ("faultlens", "uvicorn")
_MARK = "_faultlens_logs"


def rfc3339(created: float) -> str:
    """A record's time as RFC 3339 UTC with milliseconds: 2026-12-06T09:31:02.123Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def context_of(record: logging.LogRecord) -> dict[str, str | None]:
    """The record's context fields: those passed in `extra` (or stamped by ContextFilter), else the current ones."""
    ctx: request_context.Context | None = None
    out: dict[str, str | None] = {}
    for name in FIELDS:
        value = record.__dict__.get(name)
        if value is None:
            ctx = ctx or request_context.current()
            value = getattr(ctx, name)
        out[name] = None if value is None else str(value)
    return out


class ContextFilter(logging.Filter):
    """Stamps each record with the current request or job context (trace, span, correlation, request, tenant, job
    ids and error code) while it is still on the thread that logged it; a field given in `extra` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context_of(record).items():
            setattr(record, name, value)
        return True


class RedactFilter(logging.Filter):
    """Masks secrets in exception texts, and in the messages of warnings and errors (which quote exception
    messages, which may quote event data), with the function given (faultlens.classify.redact, set up by serve)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            # Formatters would otherwise render the traceback again from exc_info, unmasked.
            record.exc_info = None
        if record.levelno >= logging.WARNING:
            message = record.getMessage()
            masked = self.redact(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


class JsonLines(JsonFormatter):
    """One JSON object a line: ts, level, logger, msg, the context fields, then any `extra` fields, then exc."""

    def __init__(self) -> None:
        # `message` is msg again; uvicorn's `color_message` is msg with terminal colour codes.
        super().__init__((), reserved_attrs=[*RESERVED_ATTRS, "taskName", "message", "color_message", *KEYS, "exc"])

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        exc = message_dict.pop("exc_info", None)
        stack = message_dict.pop("stack_info", None)
        log_data.update(
            {"ts": rfc3339(record.created), "level": record.levelname, "logger": record.name, "msg": record.message}
        )
        log_data.update(context_of(record))
        super().add_fields(log_data, record, message_dict)
        if exc:
            log_data["exc"] = exc
        if stack:
            log_data["stack"] = stack


class TextLines(logging.Formatter):
    """`ts LEVEL logger: message key=value ...` with the context fields that are set, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return rfc3339(record.created)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        # The access log's message names its request id already.
        pairs = (f" {k}={v}" for k, v in context_of(record).items() if v is not None)
        return line + "".join(p for p in pairs if p not in line)


def parse_level(level: str) -> int:
    """A level name (any case) as its number; ValueError when it is not one."""
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"{level!r} is not a log level (DEBUG, INFO, WARNING, ERROR)")
    return number


def make_handler(
    log_format: LogFormat = "auto", *, stream: TextIO | None = None, redact: Callable[[str], str] | None = None
) -> logging.Handler:
    """A stderr handler (or `stream`) writing JSON lines, or text when asked or when the stream is a terminal."""
    out = stream if stream is not None else sys.stderr
    text = log_format == "text" or (log_format == "auto" and out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextLines() if text else JsonLines())
    handler.addFilter(ContextFilter())
    if redact is not None:
        handler.addFilter(RedactFilter(redact))
    return handler


def setup(
    level: str,
    log_format: LogFormat = "auto",
    *,
    stream: TextIO | None = None,
    redact: Callable[[str], str] | None = None,
) -> logging.Handler:
    """Route every log line of the process (faultlens', uvicorn's, third parties' warnings) through one handler
    on the root logger. Calling it again replaces that handler; ValueError for an unknown level."""
    number = parse_level(level)
    handler = make_handler(log_format, stream=stream, redact=redact)
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(number, logging.WARNING))
    for name in _OWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(number)
        logger.propagate = True
        for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
            logger.removeHandler(old)
    return handler
