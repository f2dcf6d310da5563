"""Secret masking on real-world shapes of keys, tokens and credentials."""

from __future__ import annotations

import pytest

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
    ],
)
def test_plain_messages_are_untouched(text: str) -> None:
    assert redact(text) == text
