"""Task arguments as JSON values with secrets masked: values of secret-named keys, and secrets inside strings."""

from __future__ import annotations

from typing import Any

from faultlens.classify.redact import MASK, redact

_SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential")


def safe_json(value: Any, key: str = "") -> Any:
    """Arguments as JSON values, with secrets masked: a secret-named key's value, and secrets in strings."""
    if key and any(part in key.lower() for part in _SECRET_KEY_PARTS):
        return MASK
    if isinstance(value, dict):
        return {str(k): safe_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else repr(value))
