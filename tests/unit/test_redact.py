"""Secret masking on real-world shapes of keys, tokens and credentials."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultlens.classify.redact import MASK, redact

SECRETS = [
    ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234. You can find your key", "sk-proj-abcdefghijklmnop1234"),
    ("stripe error: sk_live_51HxYzAbCdEfGhIjKlMnOp", "51HxYzAbCdEfGhIjKlMnOp"),
    ("anthropic: invalid x-api-key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", "AbCdEfGhIjKlMnOpQrSt"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl", "eyJzdWIiOiIxIn0"),
    ("upstream said 401 for token abcdefghijklmnop", "abcdefghijklmnop"),
    ("could not connect to postgresql://app:S3cr3t!@db.internal:5432/main", "S3cr3t!"),
    ("redis://:hunter2hunter2@cache:6379/0 refused", "hunter2hunter2"),
    ("GET https://api.example.com/v1/items?api_key=abc123def456&page=2 -> 403", "abc123def456"),
    ("GET /cb?access_token=ya29.a0AfH6SMBx&state=1", "ya29.a0AfH6SMBx"),
    ("boto: AKIAIOSFODNN7EXAMPLE not authorised", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ('config {"password": "correct horse battery"} rejected', "horse battery"),
    ("login failed password=p4ssw0rd user=bob", "p4ssw0rd"),
    ("github push denied for ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("slack xoxb-1234567890-abcdefghij failed", "xoxb-1234567890-abcdefghij"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secret_is_masked(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out
    assert redact(out) == out, "redaction is idempotent"


@pytest.mark.parametrize(
    "text",
    [
        "downstream_closed",
        "Invalid API key",
        "connect() failed (111: Connection refused) while connecting to upstream",
        "token expired",
        "",
        "数据库连接失败",
        # Masked by mistake before: a word after "token", a MySQL flag, a constraint name, a placeholder.
        "The security token included in the request is invalid.",
        "Access denied for user 'etl'@'10.3.2.1' (using password: YES)",
        'duplicate key value violates unique constraint "pk_order_items_order_id"',
        "You can set your API key in code using 'openai.api_key = <API-KEY>'",
        'failed to get secret: secrets "db-creds" is forbidden',
        "sig=SIGTERM",
        "https://user:@host/x",
    ],
)
def test_plain_messages_are_untouched(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The old `\b` after the name missed keys ending in "_PASSWORD".
        ("DB_PASSWORD=hunter2 rejected", f"DB_PASSWORD={MASK} rejected"),
        # The old pattern stopped at the first '@' and left "ssw0rd@" behind.
        ("postgresql://app:p@ssw0rd@db:5432/x", f"postgresql://app:{MASK}@db:5432/x"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {MASK}"),
        ("Authorization: dXNlcjpwYXNz", f"Authorization: {MASK}"),
        ("Set-Cookie: sid=abc; Path=/; HttpOnly", f"Set-Cookie: {MASK}"),
        ("GET /login?password=x&next=/home", f"GET /login?password={MASK}&next=/home"),
        ('{"pass": "a b", "user": "bob"}', f'{{"pass": "{MASK}", "user": "bob"}}'),
        ("(using password: hunter2)", f"(using password: {MASK})"),
    ],
)
def test_exact_masks_keep_the_harmless_prefix(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_long_text_is_redacted_without_the_cache() -> None:
    text = "x" * 600 + " password=hunter2 " + "y" * 600
    assert redact(text) == "x" * 600 + f" password={MASK} " + "y" * 600


_SECRETISH = st.sampled_from(
    [
        "password=",
        "token: ",
        '"api_key": "',
        "Authorization: Bearer ",
        "Cookie: ",
        "redis://:",
        "@",
        "://u:",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJhbGciOi.",
        "AKIA",
        "sk-proj-",
        "=",
        '"',
        "\\",
        " ",
        "\n",
        MASK,
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_SECRETISH, st.text(max_size=12)), max_size=12).map("".join))
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


# The words of the error stay: what follows "token", "Bearer" or "auth:" in prose is often a word or the name
# of an exception class, and it decides the category.
@pytest.mark.parametrize(
    "text",
    [
        "CSRF token mismatch",
        "Illuminate\\Session\\TokenMismatchException: CSRF token mismatch.",
        "Error verifying token: TokenExpiredError: jwt expired",
        "invalid token TokenExpiredError",
        "the token UnauthorizedAccess was rejected",
        "auth: AuthenticationFailed",
        "session: SessionNotCreatedException: Could not start a new session",
        "Bearer InvalidTokenException",
        "token: jwt.exceptions.ExpiredSignatureError",
        "Signature: InvalidSignatureException",
        "secret: NotFoundException secret not found",
        "api key: InvalidKeyFormat",
    ],
)
def test_words_after_a_secret_name_are_not_values(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token=mismatch", f"token={MASK}"),  # after `=` it is a value, whatever it looks like
        ("token: AbCdEfGhIjKlMnOpQrSt", f"token: {MASK}"),  # random capitals are not words
        ("Bearer AbCdEfGhIjKlMnOpQrSt", f"Bearer {MASK}"),
        ("password: CorrectHorseBatteryStaple", f"password: {MASK}"),  # a strong key keeps masking words
        ("CSRF token mismatch (token=abc123)", f"CSRF token mismatch (token={MASK})"),
    ],
)
def test_values_next_to_the_words_are_still_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redaction_never_changes_a_corpus_decision() -> None:
    """Classifying the stored (redacted) text decides like the raw one for every corpus message."""
    from pathlib import Path

    from faultlens.classify.engine import Classifier
    from faultlens.classify.rules import default_pack
    from faultlens.classify.snapshot import read_corpus

    clf = Classifier([default_pack()])
    extra = ["CSRF token mismatch", "invalid token TokenExpiredError", "auth: AuthenticationFailed"]
    rows = read_corpus(Path(__file__).parent / "corpus") + [{"status": "failure", "message": m} for m in extra]
    for row in rows:
        event = {"status": row["status"], "http_status": row.get("http_status")}
        raw = clf.classify(**event, error_code=row.get("error_code"), error_message=row["message"])
        code = row.get("error_code")
        stored = clf.classify(**event, error_code=redact(code) if code else code, error_message=redact(row["message"]))
        assert (stored.failure_class, stored.category, stored.rule_name) == (
            raw.failure_class,
            raw.category,
            raw.rule_name,
        ), row["message"]
