"""The base of every response model, and the shared vocabulary: numbers kept as sent, timestamps, windows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from faultlens.timeutil import WINDOWS_MS

# Numbers a route sends as int or float, kept as sent (a float field would turn 3 into 3.0).
Number = int | float
RFC3339 = "RFC 3339 UTC timestamp with milliseconds, e.g. 2026-12-06T06:16:47.036Z"
WINDOW_LABELS = list(WINDOWS_MS)


class Out(BaseModel):
    """Base of every response model: extra keys are kept, never dropped or refused."""

    model_config = ConfigDict(extra="allow")


class Health(Out):
    status: str
    version: str
