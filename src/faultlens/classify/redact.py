"""Secret masking: API keys, bearer tokens, credentials in URLs and query strings, cloud keys."""

from __future__ import annotations

import functools
import re

MASK = "[REDACTED]"

# Each pattern keeps the harmless prefix (the parameter name, the scheme) and masks only the secret, so a
# redacted message still classifies and fingerprints like the original.
_SECRET_NAMES = (
    r"api[_\-]?key|apikey|x-api-key|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token|secret|"
    r"client[_\-]?secret|password|passwd|pwd|signature|sig|private[_\-]?key"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@host in any URL-ish string.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(@)"), r"\1" + MASK + r"\2"),
    # Authorization headers and bearer/basic tokens.
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9\-._~+/]{8,}=*"), r"\1\2" + MASK),
    # OpenAI/Anthropic/Stripe-style keys: sk-..., sk_live_..., rk_..., pk_live_...
    (re.compile(r"\b((?:sk|rk|pk)(?:-[a-z]+)?[-_](?:live_|test_|proj-|ant-)?)[A-Za-z0-9_\-]{12,}"), r"\1" + MASK),
    # AWS access key ids and secret keys.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"), MASK),
    (
        re.compile(r"(?i)(aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}"),
        r"\1" + MASK,
    ),
    # GitHub, Slack and Google tokens.
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})"), MASK),
    # JSON Web Tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
    # key=value pairs in query strings, headers, logfmt and JSON whose name says secret; a quoted value is
    # masked up to its closing quote so a secret holding spaces does not leak its tail.
    (
        re.compile(r"(?i)(\b(?:" + _SECRET_NAMES + r")\b[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*')"),
        r'\1"' + MASK + '"',
    ),
    (
        re.compile(
            r"(?i)([\"']?\b(?:" + _SECRET_NAMES + r")\b[\"']?"
            r"\s*[:=]\s*[\"']?)([^\s\"'&,;}]{3,})"
        ),
        r"\1" + MASK,
    ),
)

# A cheap test that skips all patterns for the common message that holds nothing secret-shaped.
_HINT = re.compile(
    r"(?i)://[^\s/@]*:|bearer|basic\s|token|\b[spr]k[-_]|AKIA|ASIA|AGPA|AIDA|AROA|aws|gh[pousr]_|xox|AIza|eyJ|"
    r"key|secret|passw|pwd|sig"
)


_CACHED_CHARS = 512


def redact(text: str) -> str:
    """Return `text` with every secret masked; idempotent (redacting twice changes nothing more)."""
    if not text:
        return text
    # Error messages repeat: short ones are answered from a bounded cache (at most 64k x 512 characters).
    if len(text) <= _CACHED_CHARS:
        return _redact_short(text)
    return _redact(text)


def _redact(text: str) -> str:
    if not _HINT.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_redact_short = functools.lru_cache(maxsize=65_536)(_redact)
