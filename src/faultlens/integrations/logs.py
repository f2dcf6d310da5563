"""A logging.Handler sending ERROR records (by default only those with an exception) to faultlens as events."""

from __future__ import annotations

import logging
import os
import threading

from faultlens.integrations.events import event, exception_text
from faultlens.integrations.sender import Sender, default_sender

# Like an OTLP log record (faultlens.otlp.logs): no request or task of its own, it reports a failed unit of work.
ITEM_TYPE = "job"
_OWN_LOGGERS = "faultlens.integrations"


class FaultlensHandler(logging.Handler):
    """`logging.getLogger().addHandler(FaultlensHandler(source="billing"))`.

    Sends records at `level` (ERROR) and above that carry exc_info; with `require_exc_info=False`, every such
    record. operation is the logger's name; the trace ids come from the current trace context. Never raises:
    a record it cannot send is counted in `errors` (or as a drop by the sender).
    """

    def __init__(
        self,
        sender: Sender | None = None,
        *,
        source: str | None = None,
        level: int = logging.ERROR,
        require_exc_info: bool = True,
        flush_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(level)
        self.sender = sender if sender is not None else default_sender()
        self.source = source or os.environ.get("FAULTLENS_SOURCE") or os.environ.get("OTEL_SERVICE_NAME") or "python"
        self.require_exc_info = require_exc_info
        self.flush_timeout_s = flush_timeout_s
        self.errors = 0
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sender = self.sender
        if sender is None or record.name.startswith(_OWN_LOGGERS) or getattr(self._inside, "active", False):
            return
        exc = record.exc_info[1] if record.exc_info else None
        if self.require_exc_info and exc is None:
            return
        self._inside.active = True  # a record logged while building this one is not sent again
        try:
            message = record.getMessage()
            error_code = None
            if exc is not None:
                message = f"{message}\n{exception_text(exc)}" if message else exception_text(exc)
                error_code = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
            elif record.stack_info:
                message = f"{message}\n{record.stack_info}"
            sender.submit(
                event(
                    source=self.source,
                    operation=record.name,
                    status="failure",
                    item_type=ITEM_TYPE,
                    ended_s=record.created,
                    error_message=message,
                    error_code=error_code,
                    attributes={
                        "log.level": record.levelname,
                        "code.function": record.funcName,
                        "code.lineno": record.lineno,
                        "code.filepath": record.pathname,
                    },
                )
            )
        except Exception:  # logging must never break the host app
            self.errors += 1
        finally:
            self._inside.active = False

    def flush(self) -> None:
        if self.sender is not None:
            self.sender.flush(self.flush_timeout_s)
