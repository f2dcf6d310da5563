"""What the commands that talk to a running server share (`faultlens gate`, `faultlens rollout`): its URL, the API
key, a deadline on every call, and the one error body turned into a one-line message.

Pipelines run these where the server is reachable but its database is not, so they speak HTTP, never SQL.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import httpx
import typer

UrlOption = Annotated[str, typer.Option("--url", envvar="FAULTLENS_URL", help="Base URL of the faultlens server.")]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="FAULTLENS_API_KEY", help="API key (admin scope for gates and rollouts)."),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, max=900, help="Seconds the server may take to answer.")
]
DEFAULT_URL = "http://127.0.0.1:8000"


class RemoteError(Exception):
    """The server answered an error body, or could not be reached in time; `message` is one line for stderr."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def call(
    method: str,
    path: str,
    *,
    url: str,
    api_key: str | None,
    timeout_s: float,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One request to the server; the decoded JSON answer, or RemoteError (never the key in a message)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    query = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, headers=headers) as client:
            r = client.request(method, path, json=json, params=query)
    except httpx.TimeoutException:
        raise RemoteError(f"{url} did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise RemoteError(f"{url} could not be reached: {type(exc).__name__}") from None
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise RemoteError(
                f"{error.get('code')}: {error.get('message')}", status=r.status_code, code=error.get("code")
            )
        raise RemoteError(f"the server answered {r.status_code}", status=r.status_code)
    if body is None:
        raise RemoteError(f"the server answered {r.status_code} without a JSON body", status=r.status_code)
    return body


# Commands exit with this when the server gave no judgement (unreachable, an error body): never a pass.
NO_ANSWER = 2
JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]


def ask(
    method: str,
    path: str,
    *,
    url: str,
    api_key: str | None,
    timeout: float,
    body: Any = None,
    params: dict[str, Any] | None = None,
    prefix: str = "",
) -> Any:
    """`call`, or the error as one line on stderr (after `prefix`) and exit status NO_ANSWER."""
    try:
        return call(method, path, url=url, api_key=api_key, timeout_s=timeout, json=body, params=params)
    except RemoteError as exc:
        no_answer(prefix + exc.message)


def no_answer(message: str) -> NoReturn:
    from faultlens.cli import common

    common.say(message)
    raise typer.Exit(NO_ANSWER)


def echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
