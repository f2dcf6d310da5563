"""Import direction at run time: connectors never load the composition root (faultlens.services)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import faultlens.connectors

CONNECTOR_MODULES = sorted(
    f"faultlens.connectors.{info.name}" for info in pkgutil.iter_modules(faultlens.connectors.__path__)
)

# Prints the forbidden modules the import loaded, one per line.
_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
for name in ("faultlens.services",):
    if name in sys.modules:
        print(name)
"""


def test_every_connector_module_is_checked() -> None:
    # A wrong package path would make the parametrized test below pass vacuously.
    assert {"faultlens.connectors.service", "faultlens.connectors.sync", "faultlens.connectors.retries"} <= set(
        CONNECTOR_MODULES
    )


@pytest.mark.parametrize("module", CONNECTOR_MODULES)
def test_connectors_do_not_import_the_composition_root(module: str) -> None:
    # A fresh interpreter: in this one, other tests have long since imported faultlens.services.
    done = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"importing {module} loads {done.stdout.split()} at run time"
