"""`faultlens fingerprint`: one `<template_id>\\t<template>` line per stdin line, in order, learning as it goes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from faultlens.classify.fingerprint import Fingerprinter
from faultlens.cli import app


def test_each_line_gets_its_template_in_order() -> None:
    lines = [
        "user 1042 not found",
        "disk /dev/sda1 is 97% full",
        "user 77 not found",
        "",
        "连接超时: 同步文档到站点失败",
        "user 5 not found",
    ]
    result = CliRunner().invoke(app, ["fingerprint"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = [row.split("\t") for row in result.stdout.splitlines()]
    assert len(out) == len(lines) and all(len(row) == 2 for row in out)
    users = [out[i] for i in (0, 2, 5)]
    assert users[0][1] == "user <NUM> not found" and len({u[0] for u in users}) == 1
    assert out[1][0] != users[0][0] and out[4][1] == lines[4]
    # The same ids a fresh Fingerprinter gives: the command adds nothing of its own.
    fresh = Fingerprinter()
    assert [row[0] for row in out] == [fresh.add(line).id for line in lines]


def test_crlf_input_and_the_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("faultlens")
    done = subprocess.run(
        [str(script), "fingerprint"],
        input=b"timeout after 30s\r\ntimeout after 45s\r\n",
        capture_output=True,
        timeout=60,
        check=True,
    )
    rows = done.stdout.decode().splitlines()
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0].endswith("\ttimeout after <NUM>")


def test_tenant_without_a_database_is_refused() -> None:
    """--tenant picks a tenant's saved templates; without --db there are none to pick, which is said, not ignored."""
    result = CliRunner().invoke(app, ["fingerprint", "--tenant", "acme"], input="user 5 not found\n")
    assert result.exit_code == 2
    assert "--db" in result.stderr and result.stdout == ""


def test_reads_a_file_argument_like_stdin(tmp_path: Path) -> None:
    lines = ["disk /dev/sda1 is 97% full", "user 1042 not found", "disk /dev/sdb2 is 12% full", "user 7 not found"]
    source = tmp_path / "messages.log"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_file = CliRunner().invoke(app, ["fingerprint", str(source)])
    from_stdin = CliRunner().invoke(app, ["fingerprint"], input="\n".join(lines) + "\n")
    assert from_file.exit_code == 0, from_file.output
    assert from_file.stdout == from_stdin.stdout
    rows = [row.split("\t") for row in from_file.stdout.splitlines()]
    assert rows[0] == rows[2] and rows[1] == rows[3]
    assert rows[0][1] == "disk <PATH> is <NUM> full" and rows[1][1] == "user <NUM> not found"
    missing = CliRunner().invoke(app, ["fingerprint", str(tmp_path / "absent.log")])
    assert missing.exit_code == 2 and missing.stdout == ""
