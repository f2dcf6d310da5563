"""drain3 (default configuration) doing what `faultlens fingerprint` does: one `<cluster_id>\\t<template>` per line.

Usage: .venv/bin/python bench/fingerprint_drain3.py [FILE]   (reads stdin without FILE)

The baseline process of bench/fingerprint.py's speed comparison. drain3's TemplateMiner() reads ./drain3.ini
when present, so the miner is built from an empty directory: the baseline is the default configuration.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any


def make_miner() -> Any:
    from drain3 import TemplateMiner

    logging.getLogger("drain3").setLevel(logging.ERROR)
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            return TemplateMiner()
        finally:
            os.chdir(old)


def main(argv: list[str]) -> int:
    miner = make_miner()
    add = miner.add_log_message
    source = open(argv[0], "rb") if argv else sys.stdin.buffer  # noqa: SIM115 - closed below
    out = sys.stdout
    try:
        for raw in source:
            result = add(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            template = result["template_mined"].replace("\t", " ").replace("\n", " ")
            out.write(f"{result['cluster_id']}\t{template}\n")
    finally:
        if argv:
            source.close()
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
