"""Import direction, checked by import-linter against the contracts in pyproject.toml ([tool.importlinter])."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import faultlens

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: parallel runs must not share (or leave behind) a graph cache in the working tree.
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _contracts() -> list[dict[str, Any]]:
    contracts: list[dict[str, Any]] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_import_contracts_are_kept() -> None:
    done = _lint(PYPROJECT)
    assert done.returncode == 0, f"import-linter found imports against the layers:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def test_every_top_level_module_has_a_layer() -> None:
    # A new top-level module or package left out of the layers would be checked by nothing.
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {name.strip().strip("()") for layer in layers["layers"] for name in layer.replace("|", ":").split(":")}
    modules = {f"faultlens.{info.name}" for info in pkgutil.iter_modules(faultlens.__path__)}
    assert modules - named == set(), "add these to the layers contract in pyproject.toml"
    assert named - modules == set(), "the layers contract names modules that do not exist"


def test_a_route_importing_store_breaks_the_contract(tmp_path: Path) -> None:
    # The check can fail: the same contracts plus one forbidding an import the routes really make
    # (events -> triage.events) report that import and nothing else.
    text = PYPROJECT.read_text()
    config = tmp_path / "pyproject.toml"
    config.write_text(
        text
        + """
[[tool.importlinter.contracts]]
id = "probe"
name = "probe: the event routes may not read events through triage"
type = "forbidden"
source_modules = ["faultlens.api.routes.events"]
forbidden_modules = ["faultlens.triage.events"]
"""
    )
    done = _lint(config)
    assert done.returncode == 1, done.stdout
    assert "faultlens.api.routes.events -> faultlens.triage.events" in done.stdout, done.stdout
    assert "1 broken" in done.stdout, done.stdout
