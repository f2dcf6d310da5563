"""The serving process's interpreter settings (process_tuning.py), checked in fresh interpreters: a freeze here would
change the test process's own garbage collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from faultlens.settings import Settings

_REPORT = """
import gc, json, sys
{setup}
print(json.dumps({{"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects()),
                   "switch_s": sys.getswitchinterval()}}))
"""


def _run(setup: str, env: dict[str, str]) -> dict[str, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}
    done = subprocess.run(
        [sys.executable, "-c", _REPORT.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _built(tmp_path: Path, extra: dict[str, str]) -> dict[str, float]:
    """The ASGI factory (what `uvicorn --factory faultlens.api.asgi:app` calls) in a fresh interpreter."""
    env = {"FAULTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}", "FAULTLENS_START_JOBS": "false", **extra}
    return _run("from faultlens.api.asgi import app\napp()", env)


def test_the_served_app_freezes_what_it_holds_at_start_and_shortens_the_switch_interval(tmp_path: Path) -> None:
    before = _run(
        "from faultlens.api.app import create_app\nfrom faultlens.services import build_services\n"
        "from faultlens.settings import Settings\ncreate_app(build_services(Settings()))",
        {"FAULTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "FAULTLENS_START_JOBS": "false"},
    )
    served = _built(tmp_path, {})
    assert before["frozen"] == 0 and before["switch_s"] == pytest.approx(0.005)  # Python's own, without settle
    assert served["switch_s"] == pytest.approx(0.001)
    # What a full collection walks: nearly everything the started app holds is out of it.
    assert served["frozen"] > 0.9 * before["walked"]
    assert served["walked"] < 0.05 * before["walked"], (served, before)


def test_the_settings_turn_both_back_to_pythons_own(tmp_path: Path) -> None:
    served = _built(tmp_path, {"FAULTLENS_GIL_SWITCH_INTERVAL_MS": "5", "FAULTLENS_GC_FREEZE_AT_START": "false"})
    assert served["frozen"] == 0
    assert served["switch_s"] == pytest.approx(0.005)


@pytest.mark.parametrize("value", [0, -1, 101])
def test_a_switch_interval_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="gil_switch_interval_ms"):
        Settings(gil_switch_interval_ms=value)
