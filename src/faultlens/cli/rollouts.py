"""`faultlens rollout`: start, look at, analyse, promote and abort rollouts, and confirm rollbacks, over HTTP to a
running server (cli/remote.py).

Exit statuses: `status` 1 when the decision is rollback, else 0; `analyze` 0 pass, 1 fail, 2 inconclusive; the
others 0 when done. Every command exits 2 when the server gives no answer (unreachable, an error body), with the
message on stderr, so a pipeline never mistakes "could not ask" for "go on".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from faultlens.cli.remote import (
    DEFAULT_URL,
    ApiKeyOption,
    JsonOption,
    TimeoutOption,
    UrlOption,
    ask,
    echo_json,
    no_answer,
)

app = typer.Typer(
    help="Rollouts: a canary analysed every interval; failing analyses in a row decide a rollback.",
    no_args_is_help=True,
)
VERDICT_EXIT = {"pass": 0, "fail": 1, "inconclusive": 2}
ROLLOUTS = "/api/v1/releases/rollouts"
ROLLBACKS = "/api/v1/releases/rollbacks"

RolloutId = Annotated[str, typer.Argument(help="The rollout id (from `faultlens rollout start` or `list`).")]


def _show(doc: Any, as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        echo_json(doc)
    else:
        typer.echo(line(doc))


def _rollout_line(r: dict[str, Any]) -> str:
    scope = f"{r['environment']}/{r['source']}" if r.get("source") else r["environment"]
    line = (
        f"{r['id']}  {r['release']} (baseline {r['baseline']}) in {scope}: {r['state']}, "
        f"last verdict {r.get('last_verdict') or '-'}, {r['consecutive_failures']}/{r['max_failures']} failing"
    )
    if r.get("decision"):
        line += f", decision {r['decision']}: {r.get('decision_reason') or ''}"
    elif r.get("next_analysis_at"):
        line += f", next analysis {r['next_analysis_at']}"
    return line


def _rollback_line(b: dict[str, Any]) -> str:
    passed = b.get("replay_passed")
    replay = "not run" if passed is None else "passed" if passed else "failed"
    kind = "drill " if b.get("drill") else ""
    return (
        f"{b['id']}  {kind}{b['release']} in {b['environment']} decided {b['decided_at']}: recovery "
        f"{b['recovery_state']} (deadline {b['deadline_at']}), replay {replay}; {b['reason']}"
    )


@app.command("start")
def start(
    release: Annotated[str, typer.Option("--release", help="The canary release.")],
    baseline: Annotated[str, typer.Option("--baseline", help="The release it replaces.")],
    environment: Annotated[str, typer.Option("--environment", help="The environment it rolls out in.")],
    source: Annotated[str | None, typer.Option("--source", help="Only this source of the environment.")] = None,
    ratio: Annotated[float | None, typer.Option("--ratio", help="The canary's share of traffic.")] = None,
    interval_min: Annotated[
        float | None, typer.Option("--interval-min", help="Minutes between analyses (each over that window).")
    ] = None,
    max_failures: Annotated[
        int | None, typer.Option("--max-failures", help="Failing analyses in a row that decide a rollback.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Start a rollout; prints its id. Defaults (ratio, interval, failures) are the server's."""
    body: dict[str, Any] = {"release": release, "baseline": baseline, "environment": environment}
    for name, value in (("source", source), ("ratio", ratio), ("interval_min", interval_min)):
        if value is not None:
            body[name] = value
    if max_failures is not None:
        body["max_failures"] = max_failures
    doc = ask("POST", ROLLOUTS, url=url, api_key=api_key, timeout=timeout, body=body)
    _show(doc, as_json, _rollout_line)


@app.command("list")
def list_rollouts(
    release: Annotated[str | None, typer.Option("--release", help="Only this release's rollouts.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="running | rolled_back | promoted | aborted.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Rollouts, newest first."""
    doc = ask("GET", ROLLOUTS, url=url, api_key=api_key, timeout=timeout, params={"release": release, "state": state})
    if as_json:
        echo_json(doc)
        return
    for r in doc.get("rollouts", []):
        typer.echo(_rollout_line(r))


@app.command("status")
def status(
    rollout_id: RolloutId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """The rollout's decision: exit 1 when it is rollback, 0 otherwise (continue, promote, abort)."""
    doc = ask("GET", f"{ROLLOUTS}/{rollout_id}/status", url=url, api_key=api_key, timeout=timeout)
    if not isinstance(doc, dict) or not isinstance(doc.get("rollback"), bool):
        no_answer("the server answered no decision")
    if as_json:
        echo_json(doc)
    else:
        line = (
            f"{doc['release']} in {doc['environment']}: decision {doc['decision']} ({doc['state']}), last verdict "
            f"{doc.get('last_verdict') or '-'}, {doc['consecutive_failures']}/{doc['max_failures']} failing"
        )
        typer.echo(line)
        if doc.get("reason"):
            typer.echo(f"  reason: {doc['reason']}")
        if doc.get("blocked"):
            typer.echo(f"  blocked: {doc.get('blocked_reason')}")
    raise typer.Exit(1 if doc["rollback"] else 0)


@app.command("analyze")
def analyze(
    rollout_id: RolloutId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Analyse the rollout over its last interval now: exit 0 pass, 1 fail, 2 inconclusive."""
    doc = ask("POST", f"{ROLLOUTS}/{rollout_id}/analyze", url=url, api_key=api_key, timeout=timeout)
    verdict = (doc.get("analysis") or {}).get("verdict") if isinstance(doc, dict) else None
    if verdict not in VERDICT_EXIT:
        no_answer(f"the server answered no verdict ({verdict!r})")
    if as_json:
        echo_json(doc)
    else:
        analysis = doc["analysis"]
        typer.echo(f"verdict {verdict} (score {analysis.get('score')}), decision {doc['decision']}")
        for reason in analysis.get("reasons", []):
            typer.echo(f"  - {reason}")
        if doc.get("rollback"):
            typer.echo(f"rollback {doc['rollback']['id']}: {doc['rollback']['reason']}")
    raise typer.Exit(VERDICT_EXIT[verdict])


def _end(action: str, rollout_id: str, *, as_json: bool, url: str, api_key: str | None, timeout: float) -> None:
    doc = ask("POST", f"{ROLLOUTS}/{rollout_id}/{action}", url=url, api_key=api_key, timeout=timeout)
    _show(doc, as_json, _rollout_line)


@app.command("promote")
def promote(
    rollout_id: RolloutId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Promote a running rollout."""
    _end("promote", rollout_id, as_json=as_json, url=url, api_key=api_key, timeout=timeout)


@app.command("abort")
def abort(
    rollout_id: RolloutId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Abort a running rollout."""
    _end("abort", rollout_id, as_json=as_json, url=url, api_key=api_key, timeout=timeout)


@app.command("rollbacks")
def rollbacks(
    release: Annotated[str | None, typer.Option("--release", help="Only this release's rollbacks.")] = None,
    environment: Annotated[str | None, typer.Option("--environment", help="Only this environment's.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Rollbacks (drills included), newest first."""
    params = {"release": release, "environment": environment}
    doc = ask("GET", ROLLBACKS, url=url, api_key=api_key, timeout=timeout, params=params)
    if as_json:
        echo_json(doc)
        return
    for b in doc.get("rollbacks", []):
        typer.echo(_rollback_line(b))


@app.command("complete-rollback")
def complete_rollback(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id (`faultlens rollout rollbacks`).")],
    not_recovered: Annotated[
        bool, typer.Option("--not-recovered", help="Rolling back did not bring the failure rate back.")
    ] = False,
    detail: Annotated[str, typer.Option("--detail", help="What the deploy tool did, for the record.")] = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Confirm that traffic is back on the baseline (the rollback's recovery)."""
    body = {"recovered": not not_recovered, "detail": detail}
    doc = ask("POST", f"{ROLLBACKS}/{rollback_id}/complete", url=url, api_key=api_key, timeout=timeout, body=body)
    _show(doc, as_json, _rollback_line)
