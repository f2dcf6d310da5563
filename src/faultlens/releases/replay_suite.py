"""Replay suite files: the versioned schema of recorded requests, its checks, and secret references resolved late.

A suite names the secrets its requests carry (`{env: REPLAY_SECRET_...}`), never their values: a literal value
under a header whose name says it holds a credential is refused, so a suite file can be committed and stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from faultlens.classify.redact import is_secret_key
from faultlens.errors import ReplaySuiteError

MAX_REQUESTS = 1000
# Only variables of this prefix can be referenced: a suite (sent by a tenant's admin key) must not be able to send
# the server's own secrets (its database URL, another tenant's tokens) to a target.
ENV_PREFIX = "REPLAY_SECRET_"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HEADER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")
_STATUS_CLASS = re.compile(r"[1-5]xx")
_CONTROL = re.compile(r"[\x00-\x20\x7f\\#]")
# Headers whose literal value would be a credential in the suite file.
_SENSITIVE_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "apikey"})
_SENSITIVE_PARTS = ("token", "secret", "password", "session", "auth")
# Set by the HTTP client for each request; a suite that sets them would change where or how much is sent.
_CLIENT_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "proxy-connection"}
)


def sensitive_header(name: str) -> bool:
    lower = name.lower()
    return lower in _SENSITIVE_NAMES or any(p in lower for p in _SENSITIVE_PARTS) or is_secret_key(name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvRef(_Strict):
    env: str
    # Literal text before the value ("Bearer "): the variable holds the credential alone.
    prefix: str = Field(default="", max_length=64, pattern=r"^[^\r\n]*$")

    @field_validator("env")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENV.fullmatch(value):
            raise ValueError("not an environment variable name: letters, digits and _, not starting with a digit")
        if not value.startswith(ENV_PREFIX):
            raise ValueError(f"a referenced environment variable must be named {ENV_PREFIX}...")
        return value


def _header_value(value: Any) -> Any:
    if isinstance(value, str) and not _sendable(value):
        raise ValueError("a header value holds a line break or a non-ASCII character")  # never the value: a secret?
    return value


def _sendable(value: str) -> bool:
    return value.isascii() and "\r" not in value and "\n" not in value and "\x00" not in value


HeaderValue = Annotated[str | EnvRef, BeforeValidator(_header_value)]


def _expect(value: Any) -> str | int:
    if isinstance(value, bool):
        raise ValueError("expect_status is a status class like '2xx' or an exact status like 404")
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and _STATUS_CLASS.fullmatch(value.lower()):
        return value.lower()
    if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
        return int(value)
    raise ValueError("expect_status is a status class like '2xx' or an exact status like 404")


Expect = Annotated[str | int, BeforeValidator(_expect)]
Budget = Annotated[float, Field(gt=0, le=600_000)]


def _check_headers(value: dict[str, str | EnvRef]) -> dict[str, str | EnvRef]:
    for name, given in value.items():
        if not _HEADER.fullmatch(name):
            raise ValueError(f"{name[:60]!r} is not a valid header name")
        if name.lower() in _CLIENT_HEADERS:
            raise ValueError(f"header {name} is set by the replay itself")
        if isinstance(given, str) and sensitive_header(name):
            raise ValueError(f"header {name} holds a credential: give it as {{env: {ENV_PREFIX}NAME}}, not a value")
    return value


class Defaults(_Strict):
    method: Literal[METHODS] | None = None  # type: ignore[valid-type]
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    expect_status: Expect | None = None
    latency_budget_ms: Budget | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | EnvRef]) -> dict[str, str | EnvRef]:
        return _check_headers(value)


class RequestSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    method: Literal[METHODS] | None = None  # type: ignore[valid-type]
    path: str = Field(min_length=1, max_length=2048)
    headers: dict[str, HeaderValue] = Field(default_factory=dict)
    body: Any = None  # a JSON value (sent as JSON) or text (sent as text/plain)
    expect_status: Expect | None = None
    latency_budget_ms: Budget | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | EnvRef]) -> dict[str, str | EnvRef]:
        return _check_headers(value)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        # Joined to the target base: it must stay under it (no scheme, no //host, no dot segments).
        if not value.startswith("/") or value.startswith("//") or _CONTROL.search(value):
            raise ValueError("path starts with a single / and holds no spaces, control characters, \\ or #")
        segments = value.split("?", 1)[0].split("/")
        if any(s.lower().replace("%2e", ".") in (".", "..") for s in segments):
            raise ValueError("path must not hold . or .. segments")
        query = value.split("?", 1)[1] if "?" in value else ""
        if any(sensitive_header(name) for name, _ in parse_qsl(query, keep_blank_values=True)):
            raise ValueError("a query parameter holds a credential: send it in a header given as {env: ...}")
        return value


def _text(value: Any) -> Any:
    # YAML reads `suite_version: 3` as a number and `suite_version: 2026-12-01` as a date: both are names here.
    return str(value) if isinstance(value, (int, float, date)) and not isinstance(value, bool) else value


class Suite(_Strict):
    version: Literal[1]
    suite: str = Field(min_length=1, max_length=128)
    suite_version: Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=64)]
    defaults: Defaults = Defaults()
    requests: list[RequestSpec] = Field(min_length=1, max_length=MAX_REQUESTS)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        names = [r.name for r in self.requests]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"request names must be unique: {', '.join(dupes[:5])}")
        return self


@dataclass(frozen=True)
class Planned:
    """One request of a suite with the defaults applied; headers still hold references, not values."""

    name: str
    method: str
    path: str
    headers: dict[str, str | EnvRef]
    body: Any
    expect: str | int
    budget_ms: float | None


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def parse_suite(data: Any) -> Suite:
    """A suite from its parsed document (or YAML/JSON text); ReplaySuiteError listing every problem."""
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise ReplaySuiteError(f"the suite is not valid YAML or JSON: {str(exc)[:200]}") from None
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        # Only the location and message: pydantic's `input` may be a header value, that is, a secret.
        problems = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()][:50]
        raise ReplaySuiteError(
            f"the replay suite is not valid: {'; '.join(problems[:3])}", details={"problems": problems}
        ) from None


def plan(suite: Suite) -> list[Planned]:
    d = suite.defaults
    return [
        Planned(
            name=r.name,
            method=r.method or d.method or "GET",
            path=r.path,
            headers={**d.headers, **r.headers},
            body=r.body,
            expect=r.expect_status if r.expect_status is not None else (d.expect_status or "2xx"),
            budget_ms=r.latency_budget_ms if r.latency_budget_ms is not None else d.latency_budget_ms,
        )
        for r in suite.requests
    ]


def resolve_secrets(planned: list[Planned], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every referenced variable's value (name -> value), read now; an unset one is a ReplaySuiteError naming it."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for request in planned:
        for header, given in request.headers.items():
            if not isinstance(given, EnvRef) or given.env in out:
                continue
            value = env.get(given.env, "")
            if not value:
                raise ReplaySuiteError(
                    f"environment variable {given.env} (header {header} of request {request.name!r}) is not set "
                    "on the faultlens server",
                    details={"variable": given.env, "request": request.name, "header": header},
                )
            if not _sendable(value):
                raise ReplaySuiteError(
                    f"environment variable {given.env} holds a line break or a non-ASCII character",
                    details={"variable": given.env},
                )
            out[given.env] = value
    return out


def concrete_headers(request: Planned, secrets: Mapping[str, str]) -> dict[str, str]:
    return {k: v.prefix + secrets[v.env] if isinstance(v, EnvRef) else v for k, v in request.headers.items()}
