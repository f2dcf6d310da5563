"""The secrets corpus: every shape of secret ingest must mask, and the error text it must leave alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pytest
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings
from sqlalchemy import Engine

from faultlens.classify.redact import MASK, is_secret_key, redact, redact_attributes
from faultlens.ingest import Pipeline
from faultlens.settings import Settings
from faultlens.timeutil import now_ms


@dataclass(frozen=True)
class Leak:
    """A line holding `secrets`; after redaction none of them may remain and every one of `kept` must."""

    text: str
    secrets: tuple[str, ...]
    kept: tuple[str, ...]

    def __str__(self) -> str:
        return self.text[:60]


def _leak(text: str, secrets: str | tuple[str, ...], kept: str | tuple[str, ...]) -> Leak:
    return Leak(
        text,
        (secrets,) if isinstance(secrets, str) else secrets,
        (kept,) if isinstance(kept, str) else kept,
    )


PEM_BODY = "MIIEowIBAAKCAQEAvR8dV3vZ9x0u7kQ1\nq9Wf2Yt3kzP0bH4nJm6xLr5sTa8cUe1o\nZx7QvB2yNw4pK3jHd6gF9mL0sR5tVc8e"

POSITIVE: tuple[Leak, ...] = (
    # Environment variables and config keys whose name ends in a secret word (the old `\b` missed "_").
    _leak(
        "DB_PASSWORD=s3cr3tPass! psql: connection failed", "s3cr3tPass!", ("DB_PASSWORD=", "psql: connection failed")
    ),
    _leak("MYSQL_ROOT_PASSWORD=hunter2 container exited with code 1", "hunter2", ("MYSQL_ROOT_PASSWORD=", "exited")),
    _leak("PGPASSWORD=Xk9mm2qq pg_dump: error: connection to server failed", "Xk9mm2qq", ("PGPASSWORD=", "pg_dump")),
    _leak("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", "AWS_SECRET_ACCESS_KEY="),
    _leak("GITHUB_TOKEN=abc123def456ghi789 not accepted", "abc123def456ghi789", ("GITHUB_TOKEN=", "not accepted")),
    _leak("SECRET_KEY = 'django-insecure-9x!k2#q' is too weak", "django-insecure-9x!k2#q", ("SECRET_KEY", "too weak")),
    _leak(
        "passphrase=correct-horse-battery ssh-add failed", "correct-horse-battery", ("passphrase=", "ssh-add failed")
    ),
    _leak("login failed pass=letmein user=bob", "letmein", ("login failed pass=", "user=bob")),
    _leak("mysql --password hunter2 --host db exited 1", "hunter2", ("--password", "--host db")),
    # Credentials inside URLs, including a password holding '@' and an empty user.
    _leak(
        "could not connect to postgresql://app:p@ssw0rd@db.internal:5432/main",
        ("p@ssw0rd", "ssw0rd"),
        ("could not connect to postgresql://app:", "@db.internal:5432/main"),
    ),
    _leak("redis://:secret@host refused the connection", ":secret@", ("redis://:", "@host refused the connection")),
    _leak("redis://:hunter2hunter2@cache:6379/0 refused", "hunter2hunter2", ("redis://:", "@cache:6379/0 refused")),
    _leak("amqp://guest:guest@rabbit:5672// connection refused", "guest:guest", ("amqp://guest:", "@rabbit:5672")),
    _leak(
        "mongodb+srv://svc:Zm9vYmFy@cluster0.ab1cd.mongodb.net/?retryWrites=true timed out",
        "Zm9vYmFy",
        ("mongodb+srv://svc:", "@cluster0.ab1cd.mongodb.net", "timed out"),
    ),
    _leak(
        '{"dsn":"mysql://root:r00t@mysql:3306/app","email":"ops@example.com"}',
        "r00t",
        ("mysql://root:", "@mysql:3306/app", '"email":"ops@example.com"'),
    ),
    _leak(
        "dial tcp: app:Secr3t@tcp(mysql:3306)/orders: i/o timeout",
        "Secr3t",
        ("app:", "@tcp(mysql:3306)/orders", "i/o timeout"),
    ),
    _leak(
        "jdbc:postgresql://db:5432/app?user=app&password=s3cret&ssl=true refused",
        "s3cret",
        ("user=app&password=", "&ssl=true refused"),
    ),
    _leak(
        "Server=tcp:sql.example.net,1433;User ID=sa;Password=P@ssw0rd!;Encrypt=True login failed",
        "P@ssw0rd!",
        ("User ID=sa;Password=", ";Encrypt=True login failed"),
    ),
    # PEM private keys: whole block, truncated, and escaped inside JSON.
    _leak(
        f"bad key -----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY----- in config",
        ("MIIEowIBAAKCAQEA", "q9Wf2Yt3kzP0bH4nJm6xLr5sTa8cUe1o"),
        ("bad key -----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY----- in config"),
    ),
    _leak(
        f"load failed: -----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}",
        ("MIIEowIBAAKCAQEA", "Zx7QvB2yNw4pK3jHd6gF9mL0sR5tVc8e"),
        "load failed: -----BEGIN OPENSSH PRIVATE KEY-----",
    ),
    _leak(
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'
        '\\n-----END PRIVATE KEY-----\\n", "client_email": "etl@proj.iam.gserviceaccount.com"}',
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ('"type": "service_account"', '"client_email": "etl@proj.iam.gserviceaccount.com"'),
    ),
    _leak(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI\n"
        "-----END ENCRYPTED PRIVATE KEY-----",
        "MIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    ),
    # Cookies.
    _leak(
        "Cookie: sessionid=abc123def456; csrftoken=Zx9Yq8Wv7",
        ("abc123def456", "Zx9Yq8Wv7"),
        "Cookie: ",
    ),
    _leak("Set-Cookie: JSESSIONID=1A2B3C4D5E6F; Path=/; HttpOnly", "1A2B3C4D5E6F", "Set-Cookie: "),
    _leak(
        "headers={'Cookie': 'session=9f8e7d6c5b4a', 'Host': 'api.internal'}",
        "9f8e7d6c5b4a",
        ("headers={'Cookie': '", "'Host': 'api.internal'"),
    ),
    # Webhook URLs whose path is the credential.
    _leak(
        "POST https://hooks.slack.com/services/T024BE7LD/B01234567/abcdEFGHijklMNOPqrstUVWX failed: 404 no_service",
        ("B01234567", "abcdEFGHijklMNOPqrstUVWX"),
        ("POST https://hooks.slack.com/services/", "failed: 404 no_service"),
    ),
    _leak(
        "webhook https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIjKlMnOpQrStUvWxYz0123 returned 401",
        "AbCdEf-GhIjKlMnOpQrStUvWxYz0123",
        ("https://discord.com/api/webhooks/", "returned 401"),
    ),
    _leak(
        "teams: https://contoso.webhook.office.com/webhookb2/7d1c2e3f@9a8b/IncomingWebhook/4f5e6d/1a2b3c gave 400",
        ("7d1c2e3f", "4f5e6d/1a2b3c"),
        ("https://contoso.webhook.office.com/webhookb2/", "gave 400"),
    ),
    _leak(
        "telegram: https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage 409",
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        ("https://api.telegram.org/bot", "409"),
    ),
    # Authorization headers: with a scheme, without one, proxies.
    _leak(
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl",
        ("eyJzdWIiOiIxIn0", "c2lnbmF0dXJlLXZhbHVl"),
        "Authorization: Bearer ",
    ),
    _leak("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA", "Authorization: Basic "),
    _leak(
        "request rejected, Authorization: dXNlcjpwYXNzd29yZA== (401)",
        "dXNlcjpwYXNzd29yZA",
        ("Authorization: ", "(401)"),
    ),
    _leak("Authorization: 0123abcd4567ef89 was refused", "0123abcd4567ef89", ("Authorization: ", "was refused")),
    _leak("Proxy-Authorization: Bearer abcDEF123456ghi", "abcDEF123456ghi", "Proxy-Authorization: Bearer "),
    _leak(
        '{"headers": {"authorization": "Token 9944b09199c62bcf9418ad846dd0e4bb"}}',
        "9944b091",
        '"authorization": "Token ',
    ),
    _leak("Authorization: Bot MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs", "MTk4NjIyNDgz", "Bot "),
    _leak(
        "upstream rejected Bearer abcDEF123ghiJKL456 with 401",
        "abcDEF123ghiJKL456",
        ("upstream rejected Bearer", "with 401"),
    ),
    _leak("upstream said 401 for token abcdefghijklmnop", "abcdefghijklmnop", "upstream said 401 for token"),
    # Headers carrying keys and tokens.
    _leak("x-api-key: 0123abcd4567efgh rejected", "0123abcd4567efgh", ("x-api-key: ", "rejected")),
    _leak("X-Auth-Token: AUTH_tk0123456789abcdef expired", "AUTH_tk0123456789abcdef", "X-Auth-Token: "),
    _leak("api key: a1b2c3d4e5 is not valid", "a1b2c3d4e5", ("api key: ", "is not valid")),
    # JSON Web Tokens, signed and unsigned.
    _leak(
        "invalid signature for eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ("eyJzdWIiOiIxMjM0NTY3ODkwIn0", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
        "invalid signature for ",
    ),
    _leak(
        "alg none rejected: eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "eyJzdWIiOiJhZG1pbiJ9", "alg none rejected: "
    ),
    # Cloud keys: AWS, GCP, Azure.
    _leak("boto: AKIAIOSFODNN7EXAMPLE not authorised", "AKIAIOSFODNN7EXAMPLE", ("boto: ", "not authorised")),
    _leak(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = ",
    ),
    _leak(
        '{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY", '
        '"SessionToken": "IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJHMEUCIQ", "Expiration": "2026-12-06T07:00:00Z"}',
        ("ASIAY34FZKBOKMUTVV7A", "wJalrXUtnFEMI", "IQoJb3JpZ2luX2Vj"),
        ('"AccessKeyId": "', '"Expiration": "2026-12-06T07:00:00Z"'),
    ),
    _leak(
        "google: API key not valid AIzaSyD-abcdefghijklmnopqrstuvwxyz01234",
        "AIzaSyD-abcdefghijklmnopqrstuvwxyz01234",
        "google: API key not valid",
    ),
    _leak(
        "refresh with ya29.a0AfH6SMBx3kLmNoPqRsTuVwXyZ0123456789 failed",
        "a0AfH6SMBx3kLmNoPqRsTuVwXyZ0123456789",
        ("refresh with", "failed"),
    ),
    _leak("oauth client 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 rejected", "1a2B3c4D5e6F7g8H9i0J1k2L3m4N", "oauth client"),
    _leak(
        "DefaultEndpointsProtocol=https;AccountName=prodstore;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6"
        "IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
        ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6", "KBHBeksoGMGw"),
        ("AccountName=prodstore;AccountKey=", ";EndpointSuffix=core.windows.net"),
    ),
    _leak(
        "Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=q1w2E3r4T5y6U7i8O9p0="
        " unauthorized",
        "q1w2E3r4T5y6U7i8O9p0",
        ("SharedAccessKeyName=Root;SharedAccessKey=", "unauthorized"),
    ),
    _leak(
        "GET https://prodstore.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sp=r&sig=Zm9vYmFyYmF6cXV4%2Bh%3D 403",
        "Zm9vYmFyYmF6cXV4",
        ("sv=2022-11-02&sr=b&sp=r&sig=", "403"),
    ),
    _leak(
        "AADSTS7000215: Invalid client secret provided: Xyz8Q~AbCdEfGhIjKlMnOpQrStUvWxYz0123456",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456",
        "AADSTS7000215: Invalid client secret provided",
    ),
    _leak(
        "GET https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261206&X-Amz-Signature=fe5f80f7"
        "7d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024 403",
        ("AKIAIOSFODNN7EXAMPLE", "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"),
        ("X-Amz-Signature=", "403"),
    ),
    # Vendor tokens.
    _leak(
        "Incorrect API key provided: sk-proj-abcdefghijklmnop1234.",
        "abcdefghijklmnop1234",
        "Incorrect API key provided",
    ),
    _leak("stripe error: sk_live_51HxYzAbCdEfGhIjKlMnOp", "51HxYzAbCdEfGhIjKlMnOp", "stripe error: sk_live_"),
    _leak(
        "anthropic: invalid x-api-key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", "AbCdEfGhIjKlMnOpQrSt", "invalid x-api-key"
    ),
    _leak(
        "push denied for ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "push denied",
    ),
    _leak(
        "clone failed: github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
        "11ABCDEFG0123456789_abcdefghij",
        "clone failed: ",
    ),
    _leak("gitlab 401 for glpat-abcdefghij1234567890", "abcdefghij1234567890", "gitlab 401 for"),
    _leak(
        "slack invalid_auth xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "slack invalid_auth",
    ),
    _leak(
        "sendgrid: SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG rejected",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "rejected",
    ),
    _leak(
        "npm ERR! 401 npm_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789", "npm ERR! 401"
    ),
    _leak(
        "hub: hf_abcdefghijklmnopqrstuvwxyzABCDEF unauthorized", "hf_abcdefghijklmnopqrstuvwxyzABCDEF", "unauthorized"
    ),
    _leak("mailchimp 401 0123456789abcdef0123456789abcdef-us12", "0123456789abcdef0123456789abcdef", "mailchimp 401"),
    # Query strings, fragments, JSON, logfmt, YAML, Ruby, Go, Python reprs and XML.
    _leak(
        "GET https://api.example.com/v1/items?api_key=abc123def456&page=2 -> 403",
        "abc123def456",
        ("?api_key=", "&page=2 -> 403"),
    ),
    _leak("GET /search?q=shoes&token=7f3a9b2c1d&lang=en", "7f3a9b2c1d", ("q=shoes&token=", "&lang=en")),
    _leak("POST /hook?secret=whatever-123 -> 403", "whatever-123", ("POST /hook?secret=", "-> 403")),
    _leak(
        "callback #access_token=ya29.a0Afq&token_type=Bearer&expires_in=3599",
        "a0Afq",
        ("#access_token=", "&token_type=Bearer&expires_in=3599"),
    ),
    _leak('{"api_key": "abcd-1234-efgh", "model": "gpt-4"}', "abcd-1234-efgh", ('"api_key": "', '"model": "gpt-4"')),
    _leak('{"token":"tok_9a8b7c6d","user":"bob"}', "tok_9a8b7c6d", ('{"token":"', '"user":"bob"')),
    _leak('config {"password": "correct horse battery"} rejected', "horse battery", ('{"password": "', "rejected")),
    _leak(
        'body="{\\"password\\":\\"Sup3r Secret\\",\\"user\\":\\"bob\\"}"',
        "Sup3r Secret",
        ('{\\"password\\":\\"', '\\"user\\":\\"bob\\"'),
    ),
    _leak(
        'level=error msg="auth failed" client_secret="two words here" user=bob',
        "two words here",
        ('msg="auth failed" client_secret="', "user=bob"),
    ),
    _leak("client_secret: 8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543", "client_secret: "),
    _leak('{:password=>"hunter2", :user=>"bob"}', "hunter2", (":password=>", ':user=>"bob"')),
    _leak('panic: password := "hunter2" is hard-coded', "hunter2", ("password := ", "is hard-coded")),
    _leak("kwargs={'password': 'hunter2', 'host': 'db'}", "hunter2", ("{'password': '", "'host': 'db'")),
    _leak("accessToken=abc.def.ghi123 rejected", "abc.def.ghi123", ("accessToken=", "rejected")),
    _leak("session_id=8c7f1b2a9e not found", "8c7f1b2a9e", ("session_id=", "not found")),
    _leak("webhook signature=abcdef0123456789 mismatch", "abcdef0123456789", ("signature=", "mismatch")),
    _leak("login failed password=p4ssw0rd user=bob", "p4ssw0rd", ("login failed password=", "user=bob")),
    _leak('{"password": 12345678, "user": "bob"}', "12345678", ('"user": "bob"',)),
    _leak(
        "<soap:Body><Login><user>bob</user><password>hunter2</password></Login></soap:Body>",
        "hunter2",
        ("<user>bob</user><password>", "</password>"),
    ),
    # Secrets next to the words the classifier needs.
    _leak(
        'FATAL: password authentication failed for user "app" (dsn postgresql://app:Hunt3r2@db:5432/x)',
        "Hunt3r2",
        'FATAL: password authentication failed for user "app"',
    ),
    _leak(
        "401 Unauthorized: invalid api key for GET /v1/x?api_key=abc123",
        "abc123",
        "401 Unauthorized: invalid api key for GET /v1/x?api_key=",
    ),
    _leak(
        "403 Forbidden: CSRF token mismatch (csrftoken=Zx9Yq8Wv7Ab)",
        "Zx9Yq8Wv7Ab",
        "403 Forbidden: CSRF token mismatch (csrftoken=",
    ),
    _leak("GET /login?password=x", "=x", "GET /login?password="),
    _leak(
        "oauth_token_url=https://idp.example.com/cb?code=x&access_token=4f8a9b0c1d&state=1 rejected",
        "4f8a9b0c1d",
        ("oauth_token_url=https://idp.example.com/cb?code=x&access_token=", "&state=1 rejected"),
    ),
    _leak(
        "tls:\n  private_key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n"
        "-----END EC PRIVATE KEY-----\n  cert: /etc/tls/cert.pem",
        "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5",
        ("private_key: -----BEGIN EC PRIVATE KEY-----", "-----END EC PRIVATE KEY-----", "cert: /etc/tls/cert.pem"),
    ),
)

NEGATIVE: tuple[str, ...] = (
    # The words of the error: the classifier reads them.
    "CSRF token mismatch",
    "CSRF token missing or incorrect.",
    "CSRF Failed: CSRF cookie not set.",
    "invalid api key",
    "Invalid API key",
    "Error: No API key provided. You can set your API key in code using 'openai.api_key = <API-KEY>'",
    "password authentication failed for user x",
    'FATAL:  password authentication failed for user "postgres"',
    "token expired",
    "Token has expired",
    "invalid token",
    "Bearer token missing",
    "The security token included in the request is invalid.",
    "UnrecognizedClientException: The security token included in the request is invalid.",
    "pymysql.err.OperationalError: (1045, \"Access denied for user 'etl'@'10.3.2.1' (using password: YES)\")",
    "Access denied for user 'root'@'localhost' (using password: NO)",
    "mysql: [Warning] Using a password on the command line interface can be insecure.",
    "JWT signature does not match locally computed signature.",
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    "session expired, please log in again",
    "session: closed",
    "auth: user not found",
    "authorization: denied",
    "Authorization header is missing",
    "Basic authentication required",
    'WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="The access token expired"',
    "password: This field is required.",
    "token: expired",
    "api_key: missing",
    "Incorrect API key provided: sk-abc12**************************wxyz.",
    "password=${DB_PASSWORD} is not set in the environment",
    "ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods",
    "signal: killed",
    "sig=SIGTERM",
    'failed to get secret: secrets "db-creds" is forbidden',
    "KeyError: 'user_id'",
    'duplicate key value violates unique constraint "users_pkey"',
    'duplicate key value violates unique constraint "pk_order_items_order_id"',
    "SQLSTATE[23000]: Integrity constraint violation: 1062 Duplicate entry 'bob@example.com' for key 'users.email'",
    'ERROR:  column "password_hash" does not exist at character 8',
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "sklearn.exceptions.NotFittedError: This StandardScaler instance is not fitted yet.",
    # Counters and names that contain a secret word without holding a secret.
    "max_tokens=4096 exceeds the limit of 4000",
    "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (prompt_tokens=8000)",
    "token_count: 512 over budget",
    "tokens_used=12000 quota exceeded",
    "pass_rate=0.93 below threshold 0.95",
    "passed=12 failed=3",
    "author: alice",
    "idempotency_key=abc123 already used",
    "cache_key=user:42 miss",
    "token_type=Bearer expires_in=3599",
    "secret_name=db-credentials not found in namespace prod",
    # Identifiers and locations stay: request ids, trace ids, UUIDs, git shas, hosts, paths.
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "request 550e8400-e29b-41d4-a716-446655440000 failed",
    "x-request-id: 9f1c2d3e4b5a69788796a5b4c3d2e1f0",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b broke the build",
    "connect ECONNREFUSED 10.0.0.12:5432",
    "getaddrinfo ENOTFOUND db.internal.example.com",
    "https://api.example.com:8443/v1/items?page=2 returned 503",
    "ssh://git@github.com:22/org/repo.git: Permission denied (publickey)",
    "http://user@proxy.internal:3128 proxy refused",
    'File "/usr/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line 1969, in _exec_single_context',
    "upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.1, "
    'server: api.example.com, request: "GET /v1/items HTTP/1.1", upstream: "http://10.0.0.5:8080/v1/items"',
    "rpc error: code = Unauthenticated desc = invalid authentication credentials",
    "psycopg.errors.InsufficientPrivilege: permission denied for table sessions",
    "celery.exceptions.TimeoutError: The operation timed out.",
    "robot framework: test 'Login With Bad Password' failed",
    "",
    # Chinese messages.
    "数据库连接失败",
    "令牌已过期",
    "密码错误，请重新输入",
    "无效的API密钥",
    "请求超时",
)


@pytest.mark.parametrize("case", POSITIVE, ids=str)
def test_secret_vanishes_and_context_stays(case: Leak) -> None:
    out = redact(case.text)
    for secret in case.secrets:
        assert secret not in out, f"{secret!r} leaked: {out!r}"
    for word in case.kept:
        assert word in out, f"{word!r} lost: {out!r}"
    assert MASK in out
    assert redact(out) == out, "redaction is idempotent"


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_text_comes_back_unchanged(text: str) -> None:
    assert redact(text) == text


def test_corpus_is_large_and_covers_every_form_of_the_issue() -> None:
    assert len(POSITIVE) + len(NEGATIVE) >= 60
    texts = "\n".join(case.text for case in POSITIVE)
    for form in (
        "DB_PASSWORD=",
        "postgresql://app:p@ssw0rd@",
        "redis://:secret@",
        "passphrase=",
        "pass=",
        "PRIVATE KEY-----",
        "Cookie:",
        "Set-Cookie:",
        "hooks.slack.com",
        "discord.com/api/webhooks",
        "Authorization: dXNl",
        "eyJ",
        "aws_secret_access_key",
        "AIza",
        "AccountKey=",
        "api_key=",
        "token=",
        "secret=",
        '{"api_key": ',
        "GET /login?password=",
    ):
        assert form in texts, form


# --- attributes ------------------------------------------------------------------------------------------

SECRET_KEYS = (
    "password",
    "Password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "apiKey",
    "APIKey",
    "x-api-key",
    "access_key",
    "private_key",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "Authorization",
    "Proxy-Authorization",
    "cookie",
    "Set-Cookie",
    "session",
    "sessionid",
    "session_id",
    "sessionId",
    "JSESSIONID",
    "signature",
    "client_secret",
    "clientSecret",
    "db_password",
    "DB_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "PGPASSWORD",
    "dbPassword",
    "github_token",
    "access_token",
    "refresh_token",
    "accessToken",
    "id_token",
    "csrf_token",
    "csrftoken",
    "x-auth-token",
    "X-Amz-Security-Token",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "AccountKey",
    "SharedAccessKey",
    "secret_key",
    "SECRET_KEY",
    "encryption_key",
    "signing_key",
    "ssh_key",
    "http.request.header.authorization",
    "openai.api_key",
    "password1",
    "api_key_2",
)
NOT_SECRET_KEYS = (
    "token_count",
    "max_tokens",
    "tokens_used",
    "prompt_tokens",
    "maxTokens",
    "tokens",
    "token_type",
    "passed",
    "pass_rate",
    "passes",
    "bypass",
    "author",
    "authored_by",
    "auth_method",
    "auth_type",
    "password_policy",
    "password_length",
    "secret_name",
    "secretary",
    "key",
    "cache_key",
    "sort_key",
    "idempotency_key",
    "primary_key",
    "routing_key",
    "api_key_id",
    "session_duration_ms",
    "trace_id",
    "request_id",
    "user",
    "host",
    "http.request.header.x-request-id",
    "signal",
    "design",
    "compass",
    "",
)


@pytest.mark.parametrize("name", SECRET_KEYS)
def test_secret_keys(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize("name", NOT_SECRET_KEYS)
def test_keys_that_only_mention_a_secret(name: str) -> None:
    assert not is_secret_key(name)


def test_redact_attributes_masks_whole_values_under_secret_keys() -> None:
    attrs: dict[str, str | int | float | bool | None] = {
        "password": "correct horse battery staple",
        "pin_password": 1234,
        "api_key": 3.5,
        "auth": True,
        "token": None,
        "secret": "",
        "max_tokens": 4096,
        "pass_rate": 0.93,
        "http.url": "https://u:hunter2@api.example.com/v1?access_token=abc123def&page=2",
        "note": "CSRF token mismatch",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "retries": 3,
        "cached": False,
    }
    assert redact_attributes(attrs) == {
        "password": MASK,
        "pin_password": MASK,
        "api_key": MASK,
        "auth": True,
        "token": None,
        "secret": "",
        "max_tokens": 4096,
        "pass_rate": 0.93,
        "http.url": f"https://u:{MASK}@api.example.com/v1?access_token={MASK}&page=2",
        "note": "CSRF token mismatch",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "retries": 3,
        "cached": False,
    }
    assert redact_attributes(redact_attributes(attrs)) == redact_attributes(attrs)


# --- cross-check with a maintained detector --------------------------------------------------------------

# The entropy plugins flag any mixed-case word in an ad-hoc scan (even "REDACTED"), a public IP is not a
# secret here, and the private-key plugin flags the "BEGIN ... PRIVATE KEY" header that redaction keeps on
# purpose: their findings are checked against the secret itself, the other plugins' against everything.
_HEURISTIC = frozenset(("Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)", "Private Key"))


Scan = Callable[[str], list[tuple[str, str]]]


@pytest.fixture(scope="module")
def detect() -> Iterator[Scan]:
    """detect-secrets' ad-hoc line scan with every plugin at its default settings."""
    with default_settings():
        yield lambda line: [(s.type, s.secret_value or "") for s in scan_line(line)]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("case", POSITIVE, ids=str)
def test_detect_secrets_finds_nothing_left_after_redaction(case: Leak, detect: Scan) -> None:
    for line in _lines(redact(case.text)):
        for kind, value in detect(line):
            if kind in _HEURISTIC:
                # Neither the whole secret nor a long piece of it is in what the detector still sees.
                assert not any(s in value or (len(value) >= 8 and value in s) for s in case.secrets), (kind, value)
            else:
                raise AssertionError(f"{kind} still finds {value!r} in {line!r}")


def test_detect_secrets_agrees_the_corpus_holds_secrets(detect: Scan) -> None:
    """The cross-check is not empty: the detector's rule-based plugins flag many originals."""
    scan = detect
    flagged = [
        case for case in POSITIVE if any(kind not in _HEURISTIC for line in _lines(case.text) for kind, _ in scan(line))
    ]
    assert len(flagged) >= 20, len(flagged)


def test_detect_secrets_rule_plugins_find_nothing_in_ordinary_text(detect: Scan) -> None:
    scan = detect
    found = [
        (text, hit) for text in NEGATIVE for line in _lines(text) for hit in scan(line) if hit[0] not in _HEURISTIC
    ]
    assert found == []


# --- the ingest pipeline ---------------------------------------------------------------------------------


def _validated(**fields: Any) -> dict[str, Any]:
    pipeline = Pipeline(cast(Engine, None), Settings(), None, None)
    now = now_ms()
    raw = {"source": "checkout", "status": "failure", "occurred_at": "2026-01-01T00:00:00Z", **fields}
    return pipeline.validate(raw, tenant="t1", now=now)


def test_ingest_masks_every_free_text_field() -> None:
    row = _validated(
        operation="GET /login?password=hunter2&next=/home",
        error_code="upstream_auth token=abc123def456",
        error_message='FATAL: password authentication failed for user "app" (postgresql://app:p@ss@db/x)',
        release="v1.2.3",
        environment="prod",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        request_id="550e8400-e29b-41d4-a716-446655440000",
    )
    assert row["operation"] == f"GET /login?password={MASK}&next=/home"
    assert row["error_code"] == f"upstream_auth token={MASK}"
    assert (
        row["error_message"] == f'FATAL: password authentication failed for user "app" (postgresql://app:{MASK}@db/x)'
    )
    assert (row["release"], row["environment"]) == ("v1.2.3", "prod")
    assert row["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert row["request_id"] == "550e8400-e29b-41d4-a716-446655440000"


def test_ingest_masks_attribute_values_under_secret_keys() -> None:
    row = _validated(
        attributes={
            "password": 1234,
            "db_password": "two words",
            "x-api-key": "plainword",
            "http.url": "https://u:pw@h.example/?token=abc123",
            "max_tokens": 4096,
            "note": "CSRF token mismatch",
            "auth": True,
        }
    )
    assert orjson.loads(row["attributes"]) == {
        "password": MASK,
        "db_password": MASK,
        "x-api-key": MASK,
        "http.url": f"https://u:{MASK}@h.example/?token={MASK}",
        "max_tokens": 4096,
        "note": "CSRF token mismatch",
        "auth": True,
    }
