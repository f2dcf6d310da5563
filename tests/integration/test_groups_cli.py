"""`faultlens groups` against a live server on SQLite and PostgreSQL: failures seeded over HTTP, then the table, one
group, and the lifecycle changes from the terminal, stamped with the key's name; exit 1 with the server's message when
it refuses (unknown group, missing scope), 2 when it cannot be asked or the command is wrong."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from faultlens.api.app import create_app
from faultlens.cli import app as cli_app
from faultlens.cli.groups import activity_text, ago, change_text, sparkline
from faultlens.services import Services
from faultlens.store import keys
from faultlens.timeutil import ms_to_rfc3339, now_ms, parse_rfc3339_ms
from tests.conftest import make_services
from tests.helpers import ago as ago_iso
from tests.helpers import event
from tests.live_server import LiveServer

FROB = "frobnicator {i} exploded in sector {j}"
WIDGET = "widget pipeline {i} went sideways near gate {j}"
UNKNOWN = "0000000000000000"


@pytest.fixture
def svc(db_url: str) -> Iterator[Services]:
    s = make_services(db_url, start_jobs=False)
    yield s
    s.engine.dispose()


def _key(svc: Services, name: str, scopes: list[str]) -> str:
    with svc.engine.begin() as conn:
        _row, secret = keys.create_key(conn, tenant="default", scopes=scopes, name=name)
    return str(secret)


class Cli:
    """`faultlens groups ...` against one server with one key, on a wide terminal so rows stay whole."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key, self.runner = url, key, CliRunner()

    def __call__(self, *args: str, key: str | None = None, url: str | None = None, columns: int = 220) -> Any:
        argv = ["groups", *args, "--url", url or self.url, "--api-key", key or self.key]
        return self.runner.invoke(cli_app, argv, env={"COLUMNS": str(columns)})

    def json(self, *args: str) -> dict[str, Any]:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))


def _seed(url: str, key: str) -> None:
    events = [
        event(id=f"frob{i}", error_message=FROB.format(i=i, j=i * 7), occurred_at=ago_iso(minutes=10 + i),
              release="r2", environment="prod")
        for i in range(6)
    ]  # fmt: skip
    events += [
        event(id=f"widget{i}", source="billing", error_message=WIDGET.format(i=i, j=i), occurred_at=ago_iso(hours=30))
        for i in range(3)
    ]
    r = httpx.post(f"{url}/api/v1/events", json=events, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _row(output: str, group_id: str) -> str:
    [row] = [line for line in output.splitlines() if group_id in line]
    return row


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_groups_from_a_terminal(svc: Services) -> None:
    admin = _key(svc, "oncall-ana", ["ingest", "read", "admin"])
    reader = _key(svc, "dashboards", ["read"])
    with LiveServer(create_app(svc)) as server:
        _seed(server.url, admin)
        cli = Cli(server.url, admin)

        listed = cli.json("list", "--window", "7d")
        by_word = {g["title"].split(" ")[0]: g for g in listed["items"]}
        frob, widget = by_word["frobnicator"]["id"], by_word["widget"]["id"]

        # The table: one row per group with the numbers of the JSON answer, then the counts by status.
        table = cli("list", "--window", "7d")
        assert table.exit_code == 0, table.output
        row = _row(table.stdout, frob)
        assert row.split()[:3] == [frob, "new", "6"]
        assert sparkline(by_word["frobnicator"]["trend"]) in row and sparkline([0, 0, 6]).endswith("█")
        for cell in ("r2", "codex-proxy", "frobnicator <NUM> exploded in sector <NUM>", "m ago"):
            assert cell in row, (cell, row)
        assert _row(table.stdout, widget).split()[:3] == [widget, "ongoing", "3"]
        assert "billing" in _row(table.stdout, widget) and "1d ago" in _row(table.stdout, widget)
        assert "7d: 1 new, 1 ongoing, 0 resolved, 0 ignored, 0 regressed" in table.stdout
        assert table.stdout.index(frob) < table.stdout.index(widget)  # most events first
        assert "(a wider terminal shows" not in table.stdout
        # A narrow terminal keeps whole ids (what the other commands take) and drops columns it has no room for.
        narrow = cli("list", "--window", "7d", columns=80)
        assert narrow.exit_code == 0 and max(len(line) for line in narrow.stdout.splitlines()) <= 80
        assert _row(narrow.stdout, frob).split()[:3] == [frob, "new", "6"] and widget in narrow.stdout
        assert "(a wider terminal shows first seen, assignee, release, sources; or --json)" in narrow.stdout

        only = cli("list", "--window", "7d", "--status", "ongoing")
        assert widget in only.stdout and frob not in only.stdout
        assert frob not in cli("list", "--window", "7d", "--source", "billing").stdout
        assert widget not in cli("list", "--window", "24h").stdout
        assert frob not in cli("list", "--window", "7d", "--q", "sideways").stdout
        first = cli("list", "--window", "7d", "--limit", "1", "--sort", "first_seen", "--asc")
        assert widget in first.stdout and frob not in first.stdout and "more groups: add --cursor " in first.stdout
        bad = cli("list", "--status", "open")
        assert bad.exit_code == 2 and "--status takes any of" in bad.stderr

        # One group.
        shown = cli("show", frob, "--window", "7d")
        assert shown.exit_code == 0, shown.output
        head = shown.stdout.splitlines()[0]
        assert head.split()[:2] == [frob, "new"] and "frobnicator <NUM> exploded in sector <NUM>" in head
        assert "6 in 7d" in shown.stdout and "service_failure" in shown.stdout and "unclassified" in shown.stdout
        assert "member templates (1)" in shown.stdout and FROB.format(i=3, j=21) in shown.stdout
        assert "activity: none yet" in shown.stdout

        # Changes, stamped with the key's name.
        resolved = cli("resolve", frob)
        assert resolved.exit_code == 0 and resolved.stdout.startswith(f"resolved {frob}  resolved, 6 events")
        assigned = cli("assign", frob, "ana")
        assert assigned.exit_code == 0 and "assignee ana" in assigned.stdout
        assert "ana" in _row(cli("list", "--window", "7d").stdout, frob)
        assert "assignee -" in cli("assign", frob, "--none").stdout
        assert cli("assign", frob).exit_code == 2 and cli("assign", frob, "ana", "--none").exit_code == 2
        noted = cli("note", frob, "rolled back r2; watching the canary")
        assert noted.exit_code == 0 and noted.stdout.strip() == f"noted on {frob} (1 notes)"

        counted = cli("ignore", frob, "--count", "5")
        assert counted.exit_code == 0 and "ignored for 5 more events (5 to go)" in counted.stdout
        before = now_ms()
        timed = cli.json("ignore", frob, "--for", "2h")
        until = parse_rfc3339_ms(timed["ignore"]["until"])
        assert before + 7_200_000 <= until <= now_ms() + 7_200_000 and timed["status"] == "ignored"
        at = ms_to_rfc3339(now_ms() + 3_600_000)
        assert f"ignored until {at}" in cli("ignore", frob, "--until", str(at)).stdout
        forever = cli("ignore", frob)
        assert forever.exit_code == 0 and "ignored forever" in forever.stdout
        both = cli("ignore", frob, "--for", "2h", "--count", "3")
        assert both.exit_code == 2 and "not --for and --count" in both.stderr
        assert cli("ignore", frob, "--until", "tomorrow").exit_code == 2
        reopened = cli("unresolve", frob)
        assert reopened.exit_code == 0 and reopened.stdout.startswith(f"reopened {frob}  new")
        assert cli("note", frob, "second look").exit_code == 0

        detail = cli.json("show", frob)
        assert [a["actor"] for a in detail["activity"]] == ["oncall-ana"] * 10
        shown = cli("show", frob)
        assert "activity (newest 10 of 10)" not in shown.stdout  # exactly ten: all of them
        assert "oncall-ana  note: second look" in shown.stdout
        assert "oncall-ana  status ignored forever" in shown.stdout
        assert f"oncall-ana  status ignored until {at}" in shown.stdout
        assert "oncall-ana  note: rolled back r2; watching the canary" in shown.stdout
        assert "oncall-ana  assigned to ana" in shown.stdout and "oncall-ana  unassigned" in shown.stdout
        assert "oncall-ana  status resolved" in shown.stdout
        assert cli("note", frob, "third look").exit_code == 0
        shown = cli("show", frob)
        assert "activity (newest 10 of 11)" in shown.stdout and "status resolved" not in shown.stdout

        # The server refuses: exit 1 with its message.
        missing = cli("show", UNKNOWN)
        assert missing.exit_code == 1 and missing.stdout == ""
        assert f"group_not_found: no failure group '{UNKNOWN}'" in missing.stderr
        assert cli("resolve", UNKNOWN).exit_code == 1 and cli("note", UNKNOWN, "x").exit_code == 1
        refused = cli("resolve", widget, key=reader)
        assert refused.exit_code == 1 and "forbidden: this API key lacks the 'admin' scope" in refused.stderr
        assert cli("show", widget, key=reader).exit_code == 0
        too_long = cli("note", frob, "x" * 2001)
        assert too_long.exit_code == 1 and "invalid" in too_long.stderr
        assert cli("show", "../../events").exit_code == 2  # never another route

        # Merge, split, and a rule draft whose output is YAML for the pack.
        merged = cli("merge", frob, widget)
        assert merged.exit_code == 0 and f"merged {widget} into {frob}: now 2 templates" in merged.stdout
        assert widget not in cli("list", "--window", "7d").stdout
        split = cli.json("split", frob, widget)
        assert split["new_group"]["id"] == widget and split["group"]["members"] == 1
        assert widget in cli("list", "--window", "7d").stdout
        draft = cli("rule-draft", frob, "--kind", "frob_exploded", "--category", "system_error", "--actionable")
        assert draft.exit_code == 0, draft.output
        assert draft.stdout.startswith("# preview over 7d: 6 of ") and "-> service_failure/frob_exploded: 6" in (
            draft.stdout
        )
        [rule] = yaml.safe_load(draft.stdout)
        assert (rule["name"], rule["failure_kind"], rule["category"], rule["is_actionable"]) == (
            f"group_{frob}",
            "frob_exploded",
            "system_error",
            True,
        )
        assert cli("rule-draft", frob, "--class", "bogus").exit_code == 2

    # Nobody answers: exit 2, never a result; nor is a proxy's error page the server's refusal.
    gone = cli("list", url=f"http://127.0.0.1:{_closed_port()}")
    assert gone.exit_code == 2 and "could not be reached" in gone.stderr and gone.stdout == ""
    with _bad_gateway() as proxy:
        relayed = cli("show", UNKNOWN, url=proxy)
    assert relayed.exit_code == 2 and "the server answered 502" in relayed.stderr


class _BadGateway(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>502 Bad Gateway</html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _bad_gateway() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sparkline_and_times() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0, 0]) == "▁▁▁" and sparkline([]) == ""
    assert sparkline([1, 1000]) == "▂█"  # one event still stands above none
    # Longer than the width: neighbouring buckets summed (3 a bar here), the newest ones in the last bar.
    assert sparkline([1] * 48 + [0, 0, 5], width=24) == "▆" * 16 + "█"
    assert sparkline([2, 1, 1, 0, 0], width=2) == "█▄"  # the oldest bar takes the remainder
    assert len(sparkline(list(range(90)))) <= 24
    now = parse_rfc3339_ms("2026-12-06T12:00:00Z")
    assert ago("2026-12-06T11:59:30Z", now) == "just now"
    assert ago("2026-12-06T11:48:00Z", now) == "12m ago"
    assert ago("2026-12-06T07:00:00Z", now) == "5h ago"
    assert ago("2026-12-03T12:00:00Z", now) == "3d ago"
    assert ago("2026-12-06T14:00:00Z", now) == "in 2h" and ago(None, now) == "-"
    assert change_text(0.5) == "+50%" and change_text(-0.25) == "-25%" and change_text(None) == ""
    assert activity_text({"action": "status", "detail": {"status": "ignored", "count": 3}}) == (
        "status ignored for 3 more events"
    )
    assert activity_text({"action": "merge", "detail": {"into": "abc"}}) == "merged into abc"
    assert activity_text({"action": "split", "detail": {"member_ids": ["b"], "new_group": "b"}}) == (
        "split b out into b"
    )
