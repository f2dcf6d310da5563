"""Secret masking: keys, tokens and credentials in free text, and attribute values under secret-named keys."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

MASK = "[REDACTED]"

# Redaction masks values, never the words of the error: the classifier and the fingerprinter read the redacted
# text, so "CSRF token mismatch" or "password authentication failed" must come back unchanged. Every pattern
# keeps the harmless prefix (the parameter name, the URL scheme and user, the header name, the auth scheme)
# and puts MASK where the secret was. The shapes follow what maintained detectors look for (detect-secrets'
# plugins, the vendors' documented token formats); the patterns are our own.

# --- which keys name a secret ---------------------------------------------------------------------------

# A key is split into words ("DB_PASSWORD", "dbPassword", "x-api-key", "openai.api_key") and judged by its
# last word, so "password_policy", "token_count", "max_tokens" or "secret_name" describe a secret without
# holding one.
_SECRET_WORDS = frozenset(
    (
        "password",
        "passwords",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "passcode",
        "secret",
        "secrets",
        "token",
        "auth",
        "authorization",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "signature",
        "sig",
        "session",
        "jwt",
        "bearer",
    )
)
# Words that hold a secret when a key is written as one word ("PGPASSWORD", "apikey", "JSESSIONID").
_SECRET_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "authkey",
    "sessionid",
    "sessid",
    "cookie",
    "credentials",
)
# "<qualifier>_key" is a secret for these qualifiers; "sort_key", "cache_key", "idempotency_key" or
# "primary_key" are not.
_KEY_QUALIFIERS = frozenset(
    (
        "api",
        "access",
        "secret",
        "private",
        "priv",
        "auth",
        "account",
        "signing",
        "encryption",
        "master",
        "client",
        "consumer",
        "app",
        "service",
        "license",
        "licence",
        "ssh",
        "gpg",
        "pgp",
        "hmac",
        "shared",
        "storage",
        "subscription",
        "session",
        "db",
        "database",
        "webhook",
    )
)
# Keys whose value is always a secret, whatever it looks like (the rest, such as "session" or "token", are
# masked after ": " only when the value looks like a credential, so a log prefix "session: closed" stays).
_STRONG_WORDS = frozenset(("password", "passwords", "passwd", "pwd", "pass", "passphrase", "passcode", "secret"))

_KEY_PARTS = re.compile(r"[^A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TRAILING_DIGITS = re.compile(r"\d+$")

_WEAK, _STRONG = 1, 2


@functools.lru_cache(maxsize=4096)
def _key_kind(name: str) -> int:
    """0 when the key names no secret, _STRONG when any value under it is one, _WEAK otherwise."""
    words = [w.lower() for part in _KEY_PARTS.split(name) for w in _CAMEL.split(part) if w]
    while words and words[-1].isdigit():  # api_key_2
        words.pop()
    if not words:
        return 0
    last = _TRAILING_DIGITS.sub("", words[-1])  # password1
    prev = words[-2] if len(words) > 1 else ""
    if last in _SECRET_WORDS:
        return _STRONG if last in _STRONG_WORDS else _WEAK
    if last in ("key", "keys") and prev in _KEY_QUALIFIERS:
        return _STRONG
    if last == "id" and prev in ("session", "sess"):
        return _WEAK
    if last.endswith(_SECRET_ENDINGS):
        return _STRONG if last.endswith(("password", "passwd", "passphrase", "secret", "key")) else _WEAK
    return 0


def is_secret_key(name: str) -> bool:
    """Whether an attribute or parameter called `name` holds a secret (password, api_key, DB_PASSWORD ...)."""
    return _key_kind(name) != 0


# --- values that are not secrets -----------------------------------------------------------------------

# What messages say about a secret rather than the secret itself: "(using password: YES)", "token: expired",
# "password: This field is required.", placeholders and references to a secret (`${DB_PASSWORD}`).
_NOT_VALUES = frozenset(
    (
        "yes",
        "no",
        "true",
        "false",
        "null",
        "none",
        "nil",
        "undefined",
        "empty",
        "missing",
        "required",
        "invalid",
        "incorrect",
        "wrong",
        "expired",
        "revoked",
        "unknown",
        "redacted",
        "hidden",
        "masked",
        "filtered",
        "omitted",
        "not",
        "is",
        "must",
        "should",
        "cannot",
        "this",
        "the",
        "field",
        "value",
        "ensure",
        "too",
        "n/a",
        "set",
        "unset",
    )
)
_PLACEHOLDER = re.compile(
    r"SIG[A-Z0-9]+|\*+|x{3,}|X{3,}|<[^<>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|%[sdr]|%\([\w.]+\)[sdr]|\{\w*\}"
)


def _is_value(value: str) -> bool:
    """Whether `value` (found where a secret goes) is worth masking."""
    # "sk-abc1****wxyz": the provider already masked it; "-----BEGIN": PEM armour, its body is masked apart.
    if not value or MASK in value or "***" in value or value.startswith("-----"):
        return False
    if value.lower() in _NOT_VALUES:
        return False
    return _PLACEHOLDER.fullmatch(value) is None


# A name made of words, as exception and error classes are ("TokenExpiredError", "jwt.exceptions.
# ExpiredSignatureError", "Illuminate\\Session\\TokenMismatchException"): every capitalised part a word with a
# vowel. What follows "token"/"Bearer "/"auth: " in prose is such a word far more often than a secret, and it is
# the error's meaning: it stays. A random credential of letters alone almost never splits this way.
_WORDY_IDENTIFIER = re.compile(r"(?:[a-z][a-z_]{1,30}(?:\.|::|\\))*(?:[A-Z](?=[a-z]*[aeiouy])[a-z]{1,20}){2,8}[:.,;)]*")
# An error class's name under a strong key in prose ("secret: NotFoundException"): kept, since no password
# ends like this; any other value there is masked.
_ERROR_CLASS = re.compile(r"(?:Error|Exception|Failed|Failure|Fault)[:.,;)]*")


def _is_wordy_identifier(value: str) -> bool:
    return len(value) <= 120 and _WORDY_IDENTIFIER.fullmatch(value) is not None


def _looks_random(value: str) -> bool:
    """A credential shape: digits, several capitals inside, or a long unbroken run; not an English word,
    and not a name made of words (an exception class)."""
    if len(value) < 8 or not _is_value(value) or _is_wordy_identifier(value):
        return False
    if any(c.isdigit() for c in value):
        return True
    if sum(c.isupper() for c in value[1:]) >= 2 and any(c.islower() for c in value):
        return True
    return len(value) >= 16 and value.isalpha()


# --- the patterns ----------------------------------------------------------------------------------------

_SCHEMES = r"bearer|basic|token|bot|digest|negotiate|apikey|api-key|sso-key"
# Every secret key holds one of these; the pattern looks no further at other keys.
_KEY_STEMS = r"pass|pwd|secret|token|key|auth|cookie|sess|sig|credential|jwt|bearer"

# key <sep> value, for keys that name a secret. The key is a whole identifier (so DB_PASSWORD and
# X-Api-Key are seen), the separator covers query strings, logfmt, headers, JSON (also escaped inside
# another JSON string), YAML, Ruby hashes and Go's :=. A quoted value is masked up to its closing quote, so
# a secret holding spaces does not leak its tail; an "Authorization: Bearer x" keeps its scheme.
_KEY_VALUE = re.compile(
    r"(?P<key>(?<![\w.\-])(?=[\w.\-]{0,80}?(?i:" + _KEY_STEMS + r"))[A-Za-z_\-][\w.\-]{0,80})"
    r"(?P<sep>(?:\\?[\"'])?\s*(?:=>|:=|:(?!//)|=)\s*)"
    r"(?:"
    r"(?P<q1>\\\")(?P<s1>(?i:" + _SCHEMES + r")\s+)?(?P<v1>(?:[^\"\\]|\\(?!\"))*)\\\""
    r"|(?P<q2>\")(?P<s2>(?i:" + _SCHEMES + r")\s+)?(?P<v2>(?:[^\"\\\n]|\\.)*)\""
    r"|(?P<q3>')(?P<s3>(?i:" + _SCHEMES + r")\s+)?(?P<v3>(?:[^'\\\n]|\\.)*)'"
    r"|(?P<s4>(?i:" + _SCHEMES + r")\s+)?(?P<v4>" + re.escape(MASK) + r"|(?![{(\[\"'])[^\s\"'&,;<>\\]+)"
    r")"
)


def _mask_key_value(m: re.Match[str]) -> str:
    kind = _key_kind(m["key"])
    if not kind:
        # The value under another key may hold pairs of its own: body="{\"password\":\"x\"}",
        # callback_url=https://x/?token=abc.
        for v in ("v1", "v2", "v3", "v4"):
            value = m[v]
            if value and ("=" in value or ":" in value):
                start, end = m.span(v)
                inner = _KEY_VALUE.sub(_mask_key_value, value)
                return m[0][: start - m.start()] + inner + m[0][end - m.start() :]
        return m[0]
    for q, v in (("q1", "v1"), ("q2", "v2"), ("q3", "v3")):
        if m[q] is not None:
            value = m[v]
            if not _is_value(value):
                return m[0]
            start, end = m.span(v)
            return m[0][: start - m.start()] + MASK + m[0][end - m.start() :]
    whole = m["v4"]
    # Prose punctuation after an unquoted value is not part of it: "(using password: YES)", "token=abc."
    unopened = {")": whole.count(")") - whole.count("("), "]": whole.count("]") - whole.count("[")}
    end = len(whole)
    while end and whole[end - 1] in ").]":
        closer = whole[end - 1]
        if closer != ".":
            if unopened[closer] <= 0:
                break
            unopened[closer] -= 1
        end -= 1
    value, tail = whole[:end], whole[end:]
    if not _is_value(value):
        return m[0]
    # "key: value" without quotes may be prose. A weak key there is a log prefix ("session: closed") unless
    # the value looks like a credential; a strong key inside a sentence ("failed to get secret: secrets ...")
    # is followed by a word. With "=", quotes or a scheme the value is a value.
    if m["s4"] is None and "=" not in m["sep"]:
        if kind == _WEAK and not _looks_random(value):
            return m[0]
        before = m.string[max(0, m.start() - 2) : m.start()]
        if value.isalpha() and len(before) == 2 and before[0].isalpha() and before[1] == " ":
            return m[0]
        if _is_wordy_identifier(value) and _ERROR_CLASS.search(value):
            return m[0]
    return m[0][: m.start("v4") - m.start()] + MASK + tail


# "API key: ...", "api key provided: ...", "--password hunter2": the name is a phrase or a command-line flag.
_PHRASE = re.compile(
    r"(?i)(\b(?:api|access|secret|private|auth)[ ]key(?:[ ]provided)?\s*[:=]\s*"
    r"|(?<![\w\-])--(?:password|passwd|pass|passphrase|token|secret|api-key|apikey|auth-token|access-token)\s+)"
    r"([^\s\"'&,;<>]+)"
)


def _mask_phrase(m: re.Match[str]) -> str:
    value = m[2].rstrip(".)")
    # "API key: Invalid format" is prose; a flag's argument is always the value.
    if not _is_value(value) or (
        not m[1].startswith("--") and ((value.isalpha() and len(value) < 16) or _is_wordy_identifier(value))
    ):
        return m[0]
    return m[1] + MASK + m[2][len(value) :]


# Free text "Bearer <token>", "Basic <b64>", "token <value>": only a credential-shaped value, so "Bearer
# token missing", "The security token included in the request is invalid" stay as they are.
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic|token|bot)(\s+)([A-Za-z0-9\-._~+/]{8,}=*)")


def _mask_scheme_value(m: re.Match[str]) -> str:
    if not _looks_random(m[3].rstrip("=")):
        return m[0]
    return m[1] + m[2] + MASK


# PEM private keys, whole block, also truncated or with its newlines escaped inside JSON.
_PEM = re.compile(
    r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"
    r"(?:.*?(-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)|.*)",
    re.DOTALL,
)


def _mask_pem(m: re.Match[str]) -> str:
    return m[1] + MASK + (m[2] or "")


# scheme://user:password@host: the password may hold '@' (postgresql://app:p@ssw0rd@db), so it runs to the
# last '@' before the host; it stops at whitespace, quotes and '/'.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@\"'<>]*:)[^\s/\"'<>]+(@)")

# Webhook URLs whose path is the credential.
_WEBHOOK = re.compile(
    r"(?i)("
    r"hooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|discord(?:app)?\.com/api/webhooks/"
    r"|\.webhook\.office\.com/webhookb2/|outlook\.office\.com/webhook/"
    r"|api\.telegram\.org/(?:file/)?bot"
    r")[^\s\"'<>?#]+"
)

# Vendor token shapes, masked whole (or after a harmless fixed prefix).
_TOKENS = re.compile(
    r"\b(?:"
    # AWS access key ids (the secret access key has no shape of its own: it is found by its key name).
    r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b"
    # GitHub, GitLab, Slack, Google (API keys, OAuth access tokens and client secrets), npm, PyPI, Hugging
    # Face, SendGrid, Stripe webhook secrets, Square, Mailchimp.
    r"|gh[pousr]_[A-Za-z0-9_]{30,}|github_pat_[A-Za-z0-9_]{22,}"
    r"|gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[A-Za-z0-9_\-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}|xapp-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}|GOCSPX-[A-Za-z0-9_\-]{20,}|1//0[A-Za-z0-9_\-]{30,}"
    r"|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_\-]{50,}|hf_[A-Za-z0-9]{30,}"
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}|whsec_[A-Za-z0-9+/=]{20,}"
    r"|sq0(?:csp|atp)-[A-Za-z0-9_\-]{22,}|[0-9a-f]{32}-us[0-9]{1,2}\b"
    # Azure AD client secrets ("abc8Q~...").
    r"|[A-Za-z0-9_~.\-]{3}\d[Q8]~[A-Za-z0-9_~.\-]{31,34}"
    # JSON Web Tokens (also unsigned ones ending in a dot).
    r"|eyJ[A-Za-z0-9_\-]{4,}={0,2}\.[A-Za-z0-9_\-]{4,}={0,2}(?:\.[A-Za-z0-9_\-+/=]*)?"
    r")"
)

# The fixed beginnings of the shapes above, lower-cased, for the cheap pre-check.
_TOKEN_NEEDLES = (
    *("a3t", "akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "apka"),
    *("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glft-", "glsoat-", "glrt-"),
    *("glcbt-", "glimt-", "glptt-", "glagent-", "gloas-", "xox", "xapp-", "aiza", "ya29.", "gocspx-", "1//0"),
    *("npm_", "pypi-", "hf_", "sg.", "whsec_", "sq0", "-us", "q~", "8~", "eyj"),
)

# OpenAI, Anthropic, OpenRouter and Stripe keys: sk-..., sk-proj-..., sk-ant-api03-..., sk_live_...,
# rk_test_...; a bare "pk_" or "sk_" is a constraint or index name ("pk_order_items"), not a key.
_PREFIXED_KEY = re.compile(
    r"\b((?:sk|rk|pk)_(?:live|test)_|sk-(?:proj-|ant-(?:[a-z]+\d+-)?|or-v\d+-|svcacct-|admin-)?)[A-Za-z0-9_\-]{12,}"
)

# Go's MySQL DSN has no scheme: user:password@tcp(host:3306)/db.
_DSN_USERINFO = re.compile(r"(?<![\w.\-:/])([\w.\-]+:)[^\s/\"'<>]+(@(?:tcp|udp|unix)\()")

# <password>...</password> in XML and SOAP bodies.
_XML_ELEMENT = re.compile(r"<(?P<tag>[A-Za-z_][\w:.\-]{0,60})>(?P<value>[^<]{1,512})</(?P=tag)>")


def _mask_xml_element(m: re.Match[str]) -> str:
    if not is_secret_key(m["tag"].rpartition(":")[2]) or not _is_value(m["value"]):
        return m[0]
    return f"<{m['tag']}>{MASK}</{m['tag']}>"


# Cookie headers: the whole value, since every pair in it may be a session.
_COOKIE = re.compile(r"(?i)(?<![\w\-])((?:set-)?cookie\s*:\s*)([^\s=;,\"'\\]+=[^\r\n\"'\\]*)")

_Replacement = str | Callable[[re.Match[str]], str]

# (needles, pattern, replacement): a pattern runs only when one of its needles is in the lower-cased text,
# in this order (PEM blocks and URLs before key=value, so "private_key: -----BEGIN" masks the block).
_STEPS: tuple[tuple[tuple[str, ...], re.Pattern[str], _Replacement], ...] = (
    (("-----begin",), _PEM, _mask_pem),
    (("://",), _URL_USERINFO, r"\1" + MASK + r"\2"),
    (("@tcp(", "@udp(", "@unix("), _DSN_USERINFO, r"\1" + MASK + r"\2"),
    (("hooks.slack", "discord", "webhook", "telegram"), _WEBHOOK, r"\1" + MASK),
    (("cookie",), _COOKIE, r"\1" + MASK),
    (_TOKEN_NEEDLES, _TOKENS, MASK),
    (("sk_", "rk_", "pk_", "sk-"), _PREFIXED_KEY, r"\1" + MASK),
    (
        ("pass", "pwd", "secret", "token", "key", "auth", "cookie", "sess", "sig", "credential", "jwt", "bearer"),
        _KEY_VALUE,
        _mask_key_value,
    ),
    ((" key", "--"), _PHRASE, _mask_phrase),
    (("</",), _XML_ELEMENT, _mask_xml_element),
    (("bearer", "basic", "token", "bot"), _SCHEME_VALUE, _mask_scheme_value),
)

# A cheap test that skips every pattern for the common message holding nothing secret-shaped: whether the
# lower-cased text holds any of the needles. A pattern then runs only when one of its own needles is there.
_HINT = tuple(sorted({needle for needles, _, _ in _STEPS for needle in needles}))


def _alternatives(needles: tuple[str, ...]) -> str:
    """A regex matching any of `needles` (none empty) at a position, the longest when several do. Grouped by
    first character, the engine tries a position against the few needles starting with its character instead of
    against all (one search of the text is several times faster than a substring test per needle)."""
    tails: dict[str, list[str]] = {}
    for needle in sorted(set(needles), key=lambda n: (-len(n), n)):
        tails.setdefault(needle[0], []).append(re.escape(needle[1:]))
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rest)})" for first, rest in sorted(tails.items()))


_HINT_ALTERNATIVES = _alternatives(_HINT)
_HINT_SEARCH = re.compile(_HINT_ALTERNATIVES).search
# Every position where a needle starts, with the longest needle starting there: since two needles starting at
# one position are a needle and its prefix, the needles found there are it and those of its prefixes that are
# needles (_WITH_PREFIXES), and a scan finds exactly the needles the text holds.
_NEEDLE_AT = re.compile(f"(?=({_HINT_ALTERNATIVES}))").finditer
_WITH_PREFIXES = {needle: tuple(n for n in _HINT if needle.startswith(n)) for needle in _HINT}


def _needles_in(lower: str, start: int = 0) -> set[str]:
    """The needles `lower` holds at or after `start`."""
    found: set[str] = set()
    for m in _NEEDLE_AT(lower, start):
        found.update(_WITH_PREFIXES[m[1]])
    return found


# What else a match of some patterns needs, searched for in the lower-cased text of an ASCII text (where lower-casing
# maps A-Z alone, so a case-insensitive pattern matches the text exactly where its lower-cased form matches the
# lower-cased text): no such find, no match, and the pattern is not run. _KEY_VALUE's key is a whole run of
# [\w.\-] (the look-behind starts it at a run's start, and no character its separator starts with is in the run)
# holding a stem, so a stem, the rest of the run, the optional quote, blanks and ':' or '=' come in that order;
# _URL_USERINFO matches an '@'. Both fail far faster than their pattern does on a text without them.
_NEEDS: dict[re.Pattern[str], Callable[[str], re.Match[str] | None]] = {
    _KEY_VALUE: re.compile(r"(?:" + _KEY_STEMS + r")[\w.\-]*(?:\\?[\"'])?\s*[:=]").search,
    _URL_USERINFO: re.compile("@").search,
}
_PLAN = tuple(
    (frozenset(needles), _NEEDS.get(pattern), pattern, replacement) for needles, pattern, replacement in _STEPS
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
    lower = text.lower()
    first = _HINT_SEARCH(lower)
    if first is None:
        return text
    # No needle starts before the first one found.
    found = _needles_in(lower, first.start())
    is_ascii = text.isascii()
    for needles, needs, pattern, replacement in _PLAN:
        if found.isdisjoint(needles) or (needs is not None and is_ascii and needs(lower) is None):
            continue
        new = pattern.sub(replacement, text)
        if new != text:
            text = new
            lower = text.lower()
            found = _needles_in(lower)
            is_ascii = text.isascii()
    return text


_redact_short = functools.lru_cache(maxsize=65_536)(_redact)

AttributeValue = str | int | float | bool | None


def redact_attributes(attrs: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """Attributes with secrets masked: the whole value under a secret-named key (a numeric PIN under
    `password` becomes MASK), every other string through `redact`; booleans and None pass."""
    clean: dict[str, AttributeValue] = {}
    for key, value in attrs.items():
        if value is None or isinstance(value, bool):
            clean[key] = value
        elif is_secret_key(key):
            clean[key] = value if value == "" else MASK
        elif isinstance(value, str):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean
