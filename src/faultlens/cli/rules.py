"""The `faultlens rules` commands: check a pack, run its examples, preview its effect on history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from faultlens.classify.examples import test_pack
from faultlens.classify.lint import check_pack
from faultlens.classify.rules import RulePack, default_pack, load_pack
from faultlens.cli import rules_diff
from faultlens.errors import RulePackError

app = typer.Typer(help="Check, test and preview rule packs.", no_args_is_help=True)
rules_diff.register(app)
out = Console()
err = Console(stderr=True)

PackFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A rule pack file (YAML or JSON).")]


def report_pack_error(exc: RulePackError) -> None:
    """Print a pack's problems once: a heading, then one line per problem (the message already lists them all)."""
    problems = exc.details.get("errors") if isinstance(exc.details, dict) else None
    if not problems:
        err.print(exc.message, style="red", markup=False, highlight=False, soft_wrap=True)
        return
    pack = exc.details.get("pack") or "(no id)"
    err.print(f"invalid rule pack {pack}: {len(problems)} problem(s)", style="red", markup=False, highlight=False)
    for item in problems:
        where = ": ".join(part for part in (item.get("rule"), item.get("field")) if part) or "pack"
        err.print(f"  - {where}: {item.get('error')}", markup=False, highlight=False, soft_wrap=True)


def _load(path: Path) -> RulePack:
    try:
        return load_pack(path)
    except RulePackError as exc:
        report_pack_error(exc)
        raise typer.Exit(1) from None


def _base_for(pack: RulePack) -> list[RulePack]:
    """A user pack is layered before the shipped default; the default pack is checked on its own."""
    default = default_pack()
    return [] if pack.id == default.id else [default]


@app.command("check")
def check(file: PackFile) -> None:
    """Validate schema and regexes and find shadowed or unreachable rules; exits 1 on any error."""
    pack = _load(file)
    problems = check_pack(pack, base=_base_for(pack))
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        out.print(f"[{colour}]{p.severity}[/{colour}] {p.code}: rule {p.rule or '-'}: {p.message}")
    out.print(f"{pack.id}: {len(pack.rules)} rules, {len(errors)} errors, {len(problems) - len(errors)} warnings")
    if errors:
        raise typer.Exit(1)


@app.command("test")
def test(file: PackFile) -> None:
    """Classify every rule's examples and check each lands on the rule that declares it; exits 1 on failure."""
    pack = _load(file)
    failures = test_pack(pack, base=_base_for(pack))
    for f in failures:
        out.print(f"[red]FAIL[/red] rule {f.rule} example {f.index}: {f.message}")
    examples = sum(len(r.examples) for r in pack.rules)
    out.print(f"{pack.id}: {examples} examples, {len(failures)} failed")
    if failures:
        raise typer.Exit(1)
