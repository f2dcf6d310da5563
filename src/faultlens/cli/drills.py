"""`faultlens drill`: list the failure drills and run them against real processes, with a report.

Exit statuses of `run`: 0 when every drill passed, 1 when any failed, 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from faultlens.cli.common import usage

if TYPE_CHECKING:
    from faultlens.drills.harness import DrillResult

app = typer.Typer(help="Failure drills: reproducible faults that prove the evidence chain.", no_args_is_help=True)
DATABASES = ("sqlite", "postgresql")
FAST_SCALE = 0.1


@app.command("list")
def drill_list() -> None:
    """The drills, in the order `run --all` runs them: name, title and what each shows."""
    from faultlens.drills.registry import DRILLS

    for drill in DRILLS.values():
        typer.echo(f"{drill.name:<16} {drill.title}\n{'':<16} {drill.shows}")


@app.command("run")
def drill_run(
    names: Annotated[list[str] | None, typer.Argument(help="Drills to run (see `faultlens drill list`).")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="Run every drill.")] = False,
    fast: Annotated[
        bool, typer.Option("--fast", help=f"Time scale {FAST_SCALE}: every wait and outage shortened.")
    ] = False,
    time_scale: Annotated[
        float | None, typer.Option("--time-scale", help="An explicit time scale (overrides --fast).")
    ] = None,
    database: Annotated[str, typer.Option("--database", help="sqlite or postgresql.")] = "sqlite",
    report: Annotated[Path | None, typer.Option("--report", help="Write a markdown report here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where servers' databases and logs go.")] = None,
    record_to: Annotated[
        str | None,
        typer.Option(
            "--record-to",
            help="Base URL of the faultlens your team uses: a passed rollback drill is recorded there as a rollback "
            "drill (with its report), which readiness' rollback check reads.",
        ),
    ] = None,
    record_key: Annotated[
        str | None, typer.Option("--record-key", envvar="FAULTLENS_API_KEY", help="An admin key of that faultlens.")
    ] = None,
    record_environment: Annotated[
        str, typer.Option("--record-environment", help="The environment the recorded drill counts for.")
    ] = "staging",
    record_source: Annotated[
        str | None, typer.Option("--record-source", help="The source (service) the recorded drill counts for.")
    ] = None,
) -> None:
    """Run drills; prints each verdict, and its failed checks, as it ends."""
    from faultlens.drills.harness import DrillConfig
    from faultlens.drills.harness import run_all as run_drills
    from faultlens.drills.registry import DRILLS
    from faultlens.drills.report import as_json, render_markdown

    if database not in DATABASES:
        raise usage(f"--database {database!r}: use sqlite or postgresql")
    if run_all and names:
        raise usage("give drill names or --all, not both")
    chosen = list(DRILLS) if run_all else list(names or [])
    if not chosen:
        raise usage("name a drill (faultlens drill list) or pass --all")
    if record_to is not None and ("rollback" not in chosen or not record_key):
        raise usage("--record-to records the rollback drill: run `rollback` (or --all) and give --record-key")
    unknown = [n for n in chosen if n not in DRILLS]
    if unknown:
        raise usage(f"no drill {', '.join(unknown)} (known: {', '.join(DRILLS)})")
    scale = time_scale if time_scale is not None else FAST_SCALE if fast else 1.0
    if scale <= 0:
        raise usage("--time-scale must be above 0")
    cfg = DrillConfig(time_scale=scale, database=database)  # type: ignore[arg-type]  # checked above
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg.work_dir.rmdir()  # the default temp dir, still empty
        cfg.work_dir = work_dir

    def show(result: DrillResult) -> None:
        typer.echo(f"{result.name}: {result.verdict} ({result.duration_s:.1f} s, lost {result.lost})")
        for check in result.checks:
            if not check.ok:
                typer.echo(f"    failed: {check.name}{f': {check.detail}' if check.detail else ''}")

    results = run_drills(chosen, cfg, on_result=show)
    if report is not None:
        report.write_text(render_markdown(results))
    if json_out is not None:
        json_out.write_text(as_json(results))
    passed = sum(r.passed for r in results)
    typer.echo(f"{passed} of {len(results)} drills passed")
    recorded = _record(results, record_to, record_key, record_environment, record_source)
    raise typer.Exit(0 if passed == len(results) and recorded else 1)


def _record(results: list[DrillResult], url: str | None, key: str | None, environment: str, source: str | None) -> bool:
    """Send a passed rollback drill to `url` (nothing to do without one); False when it could not be recorded."""
    if url is None or key is None:
        return True
    import httpx

    from faultlens.cli.common import say
    from faultlens.drills.scenarios.rollback import send_record

    result = next((r for r in results if r.name == "rollback"), None)
    if result is None or not result.passed:
        say("the rollback drill did not pass: nothing recorded")
        return False
    try:
        stored = send_record(result, url=url, key=key, environment=environment, source=source)
    except (httpx.HTTPError, ValueError) as exc:
        say(f"the rollback drill could not be recorded at {url}: {type(exc).__name__}: {str(exc)[:300]}")
        return False
    typer.echo(f"recorded as rollback drill {stored.get('id')} in {environment} at {url}")
    return True
