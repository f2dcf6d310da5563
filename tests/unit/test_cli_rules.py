"""`faultlens rules check` and `rules test` on good and broken pack files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from faultlens.cli import app

runner = CliRunner()

WIDGET = {
    "id": "custom@2026-11-22",
    "rules": [
        {
            "name": "widget_exploded",
            "match": {"error_message": "widget_exploded"},
            "failure_kind": "widget_exploded",
            "failure_class": "client_failure",
            "is_actionable": False,
            "category": "data_error",
            "examples": [{"error_message": "widget_exploded at 3"}],
        }
    ],
}


def _write(tmp_path: Path, data: object, name: str = "pack.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_the_documented_format_checks_and_tests_clean(tmp_path: Path) -> None:
    path = _write(tmp_path, WIDGET)
    result = runner.invoke(app, ["rules", "check", path])
    assert result.exit_code == 0, result.output
    assert "custom@2026-11-22: 1 rules, 0 errors" in result.output
    result = runner.invoke(app, ["rules", "test", path])
    assert result.exit_code == 0 and "1 examples, 0 failed" in result.output


def test_shipped_pack_is_clean() -> None:
    path = "src/faultlens/classify/packs/default.yaml"
    assert runner.invoke(app, ["rules", "check", path]).exit_code == 0
    assert runner.invoke(app, ["rules", "test", path]).exit_code == 0


def test_bad_regex_is_an_error(tmp_path: Path) -> None:
    pack = json.loads(json.dumps(WIDGET))
    pack["rules"][0]["match"] = {"error_message_regex": "widget(("}
    result = runner.invoke(app, ["rules", "check", _write(tmp_path, pack)])
    assert result.exit_code == 1
    assert "widget_exploded" in result.output and "regex" in result.output.lower()


def test_unreachable_and_shadowed_rules_are_errors(tmp_path: Path) -> None:
    pack = json.loads(json.dumps(WIDGET))
    same = dict(pack["rules"][0], name="widget_exploded_again", examples=[{"error_message": "widget_exploded twice"}])
    pack["rules"].append(same)
    result = runner.invoke(app, ["rules", "check", _write(tmp_path, pack)])
    assert result.exit_code == 1 and "unreachable: rule widget_exploded_again" in result.output

    pack = json.loads(json.dumps(WIDGET))
    wider = dict(
        pack["rules"][0],
        name="anything_exploded",
        match={"error_message": "exploded"},
        examples=[{"error_message": "widget_exploded again"}],
    )
    pack["rules"].append(wider)
    result = runner.invoke(app, ["rules", "check", _write(tmp_path, pack, "p2.json")])
    assert result.exit_code == 1 and "shadowed: rule anything_exploded" in result.output


def test_example_that_lands_elsewhere_fails_the_test(tmp_path: Path) -> None:
    pack = json.loads(json.dumps(WIDGET))
    pack["rules"][0]["examples"].append({"error_message": "downstream_closed"})
    result = runner.invoke(app, ["rules", "test", _write(tmp_path, pack)])
    assert result.exit_code == 1 and "FAIL rule widget_exploded example 1" in result.output
