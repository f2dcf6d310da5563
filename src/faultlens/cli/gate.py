"""`faultlens gate`: release gates for CI pipelines, over HTTP to a running server (cli/remote.py).

Exit statuses: canary 0 pass, 1 fail, 2 inconclusive; replay 0 passed, 1 not; readiness 0 admitted, 1 not. Every
command exits 2 when the server gives no judgement (unreachable, an error body), with the message on stderr, so a
pipeline never mistakes "could not ask" for a pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from faultlens.cli import common
from faultlens.cli.remote import DEFAULT_URL, ApiKeyOption, TimeoutOption, UrlOption, ask, echo_json, no_answer

app = typer.Typer(
    help="Release gates for pipelines: canary analysis, replay, readiness (exit status = the verdict).",
    no_args_is_help=True,
)
PREFIX = "no judgement: "
CANARY_EXIT = {"pass": 0, "fail": 1, "inconclusive": 2}

JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer instead of a table.")]
EnvOption = Annotated[str, typer.Option("--environment", help="The environment the release runs in.")]
SourceOption = Annotated[str | None, typer.Option("--source", help="Only this source (service) of the environment.")]


def _value(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name.endswith("_rate"):
        return f"{float(value) * 100:.2f}%"
    return f"{float(value):.1f} ms"


_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def _print_canary(doc: dict[str, Any]) -> None:
    out = Console()
    table = Table(title=escape(f"canary {doc['canary']} against {doc['baseline']} in {doc['environment']}"))
    for column in ("metric", "baseline", "canary", "p-value", "verdict"):
        table.add_column(column)
    for m in doc.get("metrics", []):
        p = "-" if m.get("p_value") is None else f"{m['p_value']:.3g}"
        style = _STYLE.get(m["verdict"], "")
        table.add_row(
            m["name"],
            _value(m["name"], m.get("baseline")),
            _value(m["name"], m.get("canary")),
            p,
            f"[{style}]{m['verdict']}[/{style}]" if style else m["verdict"],
        )
    out.print(table)
    verdict = doc["verdict"]
    out.print(f"verdict: [{_STYLE.get(verdict, '')}]{verdict}[/] (score {doc['score']:.2f})", highlight=False)
    for reason in doc.get("reasons", []):
        out.print(f"  - {reason}", markup=False, highlight=False)


@app.command("canary")
def canary(
    baseline: Annotated[str, typer.Option("--baseline", help="The release serving today.")],
    canary_release: Annotated[str, typer.Option("--canary", help="The release under test.")],
    environment: EnvOption,
    source: SourceOption = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Minutes or hours ending now, e.g. 30m (default: the server's).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Judge a canary against its baseline: exit 0 pass, 1 fail, 2 inconclusive (or no answer)."""
    body = {"baseline": baseline, "canary": canary_release, "environment": environment, "source": source}
    if window is not None:
        body["window"] = window
    doc = ask(
        "POST", "/api/v1/releases/canary/analyze", url=url, api_key=api_key, timeout=timeout, body=body, prefix=PREFIX
    )
    verdict = doc.get("verdict") if isinstance(doc, dict) else None
    if verdict not in CANARY_EXIT:
        no_answer(f"no judgement: the server answered no verdict ({verdict!r})")
    if as_json:
        echo_json(doc)
    else:
        _print_canary(doc)
    raise typer.Exit(CANARY_EXIT[verdict])


def _read_suite(path: Path) -> Any:
    """The suite file parsed (YAML, of which JSON is a subset); the server validates its contents."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise common.usage(f"cannot read the suite {path}: {type(exc).__name__}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise common.usage(f"the suite {path} is neither YAML nor JSON: {str(exc).splitlines()[0]}") from None


@app.command("replay")
def replay(
    suite: Annotated[Path, typer.Option("--suite", help="The replay suite file (YAML or JSON).")],
    target: Annotated[str, typer.Option("--target", help="Base URL to replay against (on the server's allow-list).")],
    release: Annotated[str, typer.Option("--release", help="The release the target runs.")],
    environment: EnvOption = "staging",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 300.0,
) -> None:
    """Run a replay suite against a target through the server: exit 0 when it passed, 1 when not."""
    body = {"release": release, "environment": environment, "target": target, "suite": _read_suite(suite)}
    doc = ask("POST", "/api/v1/releases/replays", url=url, api_key=api_key, timeout=timeout, body=body, prefix=PREFIX)
    if not isinstance(doc, dict) or not isinstance(doc.get("passed"), bool):
        no_answer("no judgement: the server answered no replay result")
    if as_json:
        echo_json(doc)
    else:
        counts = doc.get("counts") or {}
        typer.echo(
            f"replay {doc.get('id')}: {'passed' if doc['passed'] else 'FAILED'} "
            f"({counts.get('passed', '?')} passed, {counts.get('failed', '?')} failed, "
            f"{counts.get('not_run', 0)} not run of {doc.get('total', '?')}; p95 {doc.get('p95_ms')} ms)"
        )
        for f in doc.get("failures") or []:
            typer.echo(f"  - {f.get('method')} {f.get('path')} [{f.get('name')}]: {f.get('reason')}")
    raise typer.Exit(0 if doc["passed"] else 1)


@app.command("readiness")
def readiness(
    release: Annotated[str, typer.Option("--release", help="The release asking for admission.")],
    environment: EnvOption = "staging",
    source: SourceOption = None,
    window: Annotated[str | None, typer.Option("--window", help="Evidence window (server default 24h).")] = None,
    replay_report_id: Annotated[
        str | None, typer.Option("--replay-report", help="The replay report to judge (default: the newest).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Evaluate a release's readiness (stored as evidence): exit 0 when admitted, 1 when not."""
    body: dict[str, Any] = {"release": release, "environment": environment}
    for name, value in (("source", source), ("window", window), ("replay_report_id", replay_report_id)):
        if value is not None:
            body[name] = value
    doc = ask("POST", "/api/v1/releases/readiness", url=url, api_key=api_key, timeout=timeout, body=body, prefix=PREFIX)
    if not isinstance(doc, dict) or not isinstance(doc.get("admitted"), bool):
        no_answer("no judgement: the server answered no admission")
    if as_json:
        echo_json(doc)
    else:
        failed = doc.get("failed_checks") or []
        verdict = "admitted" if doc["admitted"] else "NOT admitted"
        typer.echo(f"{release} in {environment}: {verdict} (evidence {doc.get('id')})")
        if failed:
            typer.echo(f"failed checks: {', '.join(map(str, failed))}")
        checks = doc.get("checks") or {}
        for name in failed:
            check = checks.get(name) if isinstance(checks, dict) else None
            if isinstance(check, dict) and check.get("reason"):
                typer.echo(f"  - {name}: {check['reason']}")
    raise typer.Exit(0 if doc["admitted"] else 1)
