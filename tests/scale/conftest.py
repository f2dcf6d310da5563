"""The scale test's measurements, printed at the end of the run (takeover time, rule follow time, ingest rate)."""

from __future__ import annotations

import pytest

# name -> "value and unit", filled by the tests as they measure.
MEASURED: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("scale measurements")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")
