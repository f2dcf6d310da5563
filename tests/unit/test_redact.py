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
