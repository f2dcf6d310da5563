"""`faultlens groups`: look at failure groups and act on them (resolve, ignore, assign, note, merge, split, draft a
rule) from a terminal, over HTTP to a running server (cli/remote.py).

Exit statuses: 0 done; 1 the server answered its error body (unknown group, a refused body, a missing scope), the
message on stderr; 2 no answer (unreachable, too slow, not a faultlens answer) or a command to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from faultlens.cli import common
from faultlens.cli.remote import (
    DEFAULT_URL,
    NO_ANSWER,
    ApiKeyOption,
    JsonOption,
    RemoteError,
    TimeoutOption,
    UrlOption,
    call,
    echo_json,
    no_answer,
)
from faultlens.model import FailureClass
from faultlens.timeutil import ms_to_rfc3339, now_ms, parse_rfc3339_ms

app = typer.Typer(
    help="Failure groups: list, show, resolve, ignore, assign, note, merge, split, draft a rule (over HTTP).",
    no_args_is_help=True,
)
GROUPS = "/api/v1/groups"
SERVER_ERROR = 1  # the server answered, with an error body: the command was heard and refused
STATUSES = ("new", "ongoing", "resolved", "ignored", "regressed")
STATUS_STYLE = {"new": "cyan", "ongoing": "yellow", "regressed": "bold red", "resolved": "green", "ignored": "dim"}
BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 24
TITLE_WIDTH = 60
ACTIVITY_SHOWN = 10
DEFAULT_WINDOW = "7d"  # as the groups page; the window a change's answer counts events in


class Sort(StrEnum):
    COUNT = "count"
    TREND = "trend"
    FIRST_SEEN = "first_seen"
    LAST_SEEN = "last_seen"


GroupId = Annotated[str, typer.Argument(help="The group id (the ID column of `faultlens groups list`).")]
WindowOption = Annotated[str, typer.Option("--window", help="1h | 6h | 24h | 7d | 14d | 30d | 90d, ending now.")]


# -- talking to the server -------------------------------------------------------------------------------------------


def _ask(
    method: str,
    path: str,
    *,
    url: str,
    api_key: str | None,
    timeout: float,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The server's JSON object; else its error body's message on stderr and exit 1, or exit 2 when it gave no answer
    (unreachable, too slow, or an HTTP error without the error body: a proxy's 502 is not the server's refusal)."""
    try:
        doc = call(method, path, url=url, api_key=api_key, timeout_s=timeout, json=body, params=params)
    except RemoteError as exc:
        common.say(exc.message)
        raise typer.Exit(SERVER_ERROR if exc.code is not None else NO_ANSWER) from None
    if not isinstance(doc, dict):
        no_answer("the server answered something other than a JSON object (is --url a faultlens server?)")
    return doc


def _group_path(group_id: str, action: str = "") -> str:
    # Ids are letters, digits, _ and -; anything else cannot name a group, and must not reach another route.
    if not group_id or not all(c.isascii() and (c.isalnum() or c in "_-") for c in group_id):
        raise common.usage(f"{group_id!r} is not a group id (letters, digits, _ and -)")
    return f"{GROUPS}/{group_id}" + (f"/{action}" if action else "")


# -- formatting (pure) -----------------------------------------------------------------------------------------------


def sparkline(values: Sequence[int], width: int = SPARK_WIDTH) -> str:
    """One bar per value (at most `width`: neighbouring buckets summed, the newest kept last); zero is the lowest
    bar and any event at all shows above it."""
    counts = [max(0, int(v)) for v in values]
    if len(counts) > width:
        size = -(-len(counts) // width)  # buckets per bar, rounded up
        head = len(counts) % size
        chunks = [counts[:head]] if head else []
        chunks += [counts[i : i + size] for i in range(head, len(counts), size)]
        counts = [sum(c) for c in chunks]
    top = max(counts, default=0)
    if top == 0:
        return BARS[0] * len(counts)
    levels = len(BARS) - 1  # above the zero bar
    return "".join(BARS[0] if c == 0 else BARS[max(1, -(-c * levels // top))] for c in counts)


def change_text(change: float | None) -> str:
    """trend_change (0.5 = +50%) as a signed percentage; empty without one."""
    if change is None:
        return ""
    return f"{change * 100:+.0f}%"


def ago(value: str | None, now: int) -> str:
    """An RFC 3339 time relative to `now`: 'just now', '12m ago', '5h ago', '3d ago', or 'in 2h' ahead."""
    if not value:
        return "-"
    try:
        delta = now - parse_rfc3339_ms(value)
    except ValueError:
        return value
    ahead, delta = delta < 0, abs(delta)
    seconds = delta // 1000
    if seconds < 60:
        return "just now"
    unit, size = next((u, n) for u, n in (("d", 86_400), ("h", 3_600), ("m", 60)) if seconds >= n)
    amount = f"{seconds // size}{unit}"
    return f"in {amount}" if ahead else f"{amount} ago"


def truncate(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _names(values: Sequence[str] | None, limit: int = 3) -> str:
    values = list(values or [])
    if not values:
        return "-"
    more = f" +{len(values) - limit}" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def counts_line(doc: dict[str, Any]) -> str:
    counts = doc.get("status_counts") or {}
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
    return f"{doc.get('window', '?')}: {parts}"


def activity_text(entry: dict[str, Any]) -> str:
    """One activity entry's what, in words."""
    action, detail = entry.get("action"), entry.get("detail") or {}
    if action == "status":
        text = f"status {detail.get('status')}"
        if detail.get("status") == "ignored":
            if detail.get("until"):
                text += f" until {detail['until']}"
            elif detail.get("count"):
                text += f" for {detail['count']} more events"
            else:
                text += " forever"
        return text
    if action == "assign":
        return f"assigned to {detail['assignee']}" if detail.get("assignee") else "unassigned"
    if action == "note":
        return f"note: {detail.get('text', '')}"
    if action == "merge":
        if detail.get("into"):
            return f"merged into {detail['into']}"
        return f"merged in {', '.join(detail.get('group_ids') or [])}"
    if action == "split":
        members = ", ".join(detail.get("member_ids") or [])
        if detail.get("new_group"):
            return f"split {members} out into {detail['new_group']}"
        return f"split out of {detail.get('from')} ({members})"
    return f"{action} {detail}"


def ignore_text(ignore: dict[str, Any] | None) -> str:
    if not ignore:
        return "ignored"
    if ignore.get("until"):
        return f"ignored until {ignore['until']}"
    if ignore.get("count"):
        left = ignore.get("remaining")
        return f"ignored for {ignore['count']} more events" + ("" if left is None else f" ({left} to go)")
    return "ignored forever"


def _one_line(g: dict[str, Any], window: str = DEFAULT_WINDOW) -> str:
    status = ignore_text(g.get("ignore")) if g.get("status") == "ignored" else g.get("status")
    return (
        f"{g.get('id')}  {status}, {g.get('count', 0)} events in {window}, assignee {g.get('assignee') or '-'}: "
        f"{truncate(g.get('title'), TITLE_WIDTH)}"
    )


def _out() -> Console:
    return Console(highlight=False)


# The list's columns: (header, right-aligned); ID, STATUS, EVENTS, TREND and TITLE always show, the others while the
# terminal is wide enough (in this order), so an id is never cut: it is what the other commands take.
ALWAYS = ("ID", "STATUS", "EVENTS", "TREND")
OPTIONAL = ("FIRST SEEN", "ASSIGNEE", "RELEASE", "SOURCES")
CELL_MAX = {"RELEASE": 16, "SOURCES": 24, "ASSIGNEE": 16}
TITLE_MIN = 24
GAP = 3  # between columns: a padding space, the divider, a padding space


def list_cells(g: dict[str, Any], now: int, *, spark_width: int) -> dict[str, Text]:
    trend = f"{sparkline(g.get('trend') or [], spark_width)} {change_text(g.get('trend_change'))}".rstrip()
    cells = {
        "ID": Text(str(g.get("id"))),
        "STATUS": _status(str(g.get("status"))),
        "EVENTS": Text(str(g.get("count", 0)), justify="right"),
        "TREND": Text(trend),
        "FIRST SEEN": Text(ago(g.get("first_seen"), now)),
        "RELEASE": Text(g.get("first_release") or "-"),
        "SOURCES": Text(_names(g.get("sources"))),
        "ASSIGNEE": Text(g.get("assignee") or "-"),
    }
    for name, most in CELL_MAX.items():
        cells[name] = Text(truncate(cells[name].plain, most))
    return cells


def list_columns(rows: Sequence[dict[str, Text]], width: int) -> tuple[list[str], int]:
    """The columns that fit `width` with a title of TITLE_MIN or more, and the room left for the title."""

    def need(name: str) -> int:
        return max([cell_len(name), *(cell_len(r[name].plain) for r in rows)]) + GAP

    used = sum(need(name) for name in ALWAYS)
    columns = list(ALWAYS)
    for name in OPTIONAL:
        if used + need(name) + TITLE_MIN <= width:
            columns.append(name)
            used += need(name)
    return columns, max(TITLE_MIN, width - used)


def print_list(doc: dict[str, Any], now: int) -> None:
    out = _out()
    items = doc.get("items") or []
    if not items:
        out.print("no failure group matches")
    else:
        spark_width = SPARK_WIDTH if out.width >= 140 else SPARK_WIDTH // 2
        rows = [list_cells(g, now, spark_width=spark_width) for g in items]
        columns, title_room = list_columns(rows, out.width)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
        for name in columns:
            # Only the title gives way when the table is too wide (wide CJK characters): ids stay whole to copy.
            fit = max([cell_len(name), *(cell_len(r[name].plain) for r in rows)])
            table.add_column(name, no_wrap=True, min_width=fit, justify="right" if name == "EVENTS" else "left")
        table.add_column("TITLE", no_wrap=True, overflow="ellipsis")
        for g, cells in zip(items, rows, strict=True):
            table.add_row(*(cells[name] for name in columns), Text(truncate(g.get("title"), title_room)))
        out.print(table)
        left_out = [name.lower() for name in OPTIONAL if name not in columns]
        if left_out:
            out.print(Text(f"(a wider terminal shows {', '.join(left_out)}; or --json)", style="dim"))
    out.print(counts_line(doc), markup=False)
    if doc.get("next_cursor"):
        out.print(f"more groups: add --cursor {doc['next_cursor']}", markup=False)


def print_group(g: dict[str, Any], now: int, window: str) -> None:
    out = _out()
    header = Text()
    header.append(str(g["id"]), style="bold")
    header.append("  ")
    header.append_text(_status(str(g.get("status"))))
    header.append(f"  {g.get('title') or '(no template)'}")
    out.print(header)

    def line(label: str, value: str) -> None:
        row = Text(f"  {label:<13}", style="dim")
        row.append(value)
        out.print(row)

    trend = f"{sparkline(g.get('trend') or [])} {change_text(g.get('trend_change'))}".rstrip()
    line("events", f"{g.get('count', 0)} in {window}  {trend}")
    line("first seen", f"{ago(g.get('first_seen'), now)} ({g.get('first_seen') or '-'})")
    line("last seen", f"{ago(g.get('last_seen'), now)} ({g.get('last_seen') or '-'})")
    line("release", f"first {g.get('first_release') or '-'}; seen in {_names(g.get('releases'), 6)}")
    line("sources", _names(g.get("sources"), 6))
    line("environments", _names(g.get("environments"), 6))
    line("assignee", g.get("assignee") or "-")
    rule = "yes" if g.get("covered_by_rule") else "no (`faultlens groups rule-draft`)"
    line("actionable", f"{float(g.get('actionable_share') or 0) * 100:.0f}%; covered by a rule: {rule}")
    if g.get("status") == "ignored":
        line("ignored", ignore_text(g.get("ignore")).removeprefix("ignored "))
    if g.get("resolved_at"):
        line("resolved", f"{ago(g['resolved_at'], now)} ({g['resolved_at']})")
    if g.get("regressed_at"):
        line("regressed", f"{ago(g['regressed_at'], now)} ({g['regressed_at']})")

    mix = Table(title="mix", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("class", "kind", "events"):
        mix.add_column(column, justify="right" if column == "events" else "left")
    for m in g.get("mix") or []:
        mix.add_row(Text(str(m.get("failure_class"))), Text(str(m.get("failure_kind"))), str(m.get("count")))
    out.print(mix)

    members = Table(
        title=f"member templates ({g.get('members', 0)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    members.add_column("id", no_wrap=True)
    members.add_column("events", justify="right", no_wrap=True)
    members.add_column("template", overflow="fold")
    for m in g.get("member_templates") or []:
        members.add_row(Text(str(m.get("id"))), str(m.get("count", 0)), Text(m.get("template") or "-"))
    out.print(members)

    samples = g.get("samples") or []
    out.print(Text("samples" + ("" if samples else ": none in the window"), style="italic"))
    for s in samples:
        out.print(Text(f"  - {truncate(s, 200)}"))

    activity = (g.get("activity") or [])[:ACTIVITY_SHOWN]
    total = len(g.get("activity") or [])
    more = f" (newest {ACTIVITY_SHOWN} of {total})" if total > ACTIVITY_SHOWN else ""
    out.print(Text(f"activity{more}" + ("" if activity else ": none yet"), style="italic"))
    for a in activity:
        row = Text(f"  {ago(a.get('at'), now):>9}  ", style="dim")
        row.append(f"{a.get('actor')}  ")
        row.append(activity_text(a))
        out.print(row)


def print_draft(doc: dict[str, Any]) -> None:
    """The preview as YAML comments, then the entry: the whole output is valid YAML for the pack file."""
    preview = doc.get("preview") or {}
    typer.echo(
        f"# preview over {preview.get('window', '?')}: {preview.get('total_changed', 0)} of "
        f"{preview.get('total_examined', 0)} events would change (candidate {preview.get('candidate_version', '?')})"
    )
    for move in preview.get("moves") or []:
        src, dst = move.get("from") or {}, move.get("to") or {}
        typer.echo(
            f"#   {src.get('failure_class')}/{src.get('failure_kind')} -> "
            f"{dst.get('failure_class')}/{dst.get('failure_kind')}: {move.get('count')}"
        )
    typer.echo("# nothing is active yet: add the entry to the tenant's rule pack and activate it as usual")
    typer.echo(str(doc.get("yaml") or "").rstrip("\n"))


# -- commands --------------------------------------------------------------------------------------------------------


@app.command("list")
def list_groups(
    window: WindowOption = DEFAULT_WINDOW,
    status: Annotated[
        str | None, typer.Option("--status", help="Any of new,ongoing,resolved,ignored,regressed (comma-separated).")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only groups seen from this source.")] = None,
    release: Annotated[str | None, typer.Option("--release", help="Only groups seen in this release.")] = None,
    environment: Annotated[str | None, typer.Option("--environment", help="Only groups seen here.")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Text in the template or a sample (any case).")] = None,
    sort: Annotated[Sort, typer.Option("--sort", help="Order by this, most first.")] = Sort.COUNT,
    ascending: Annotated[bool, typer.Option("--asc", help="Least first.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Groups per page.")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="The next page (printed under a full page).")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Failure groups with events in the window: a table, then the count of groups by status."""
    if status is not None:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        bad = [s for s in wanted if s not in STATUSES]
        if bad or not wanted:
            raise common.usage(f"--status takes any of {','.join(STATUSES)} (comma-separated), not {status!r}")
        status = ",".join(wanted)
    params = {
        "window": window,
        "status": status,
        "source": source,
        "release": release,
        "environment": environment,
        "q": q,
        "sort": sort.value,
        "order": "asc" if ascending else "desc",
        "limit": limit,
        "cursor": cursor,
    }
    doc = _ask("GET", GROUPS, url=url, api_key=api_key, timeout=timeout, params=params)
    if as_json:
        echo_json(doc)
    else:
        print_list(doc, now_ms())


@app.command("show")
def show(
    group_id: GroupId,
    window: WindowOption = DEFAULT_WINDOW,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """One group: its numbers over the window, class mix, member templates, samples and latest activity."""
    doc = _ask("GET", _group_path(group_id), url=url, api_key=api_key, timeout=timeout, params={"window": window})
    if as_json:
        echo_json(doc)
    else:
        print_group(doc, now_ms(), window)


def _set_status(
    group_id: str, body: dict[str, Any], *, as_json: bool, url: str, api_key: str | None, timeout: float
) -> dict[str, Any]:
    path, window = _group_path(group_id, "status"), {"window": DEFAULT_WINDOW}
    doc = _ask("POST", path, url=url, api_key=api_key, timeout=timeout, body=body, params=window)
    if as_json:
        echo_json(doc)
    return doc


@app.command("resolve")
def resolve(
    group_id: GroupId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Resolve a group: an event after now makes it regressed."""
    doc = _set_status(group_id, {"status": "resolved"}, as_json=as_json, url=url, api_key=api_key, timeout=timeout)
    if not as_json:
        typer.echo(f"resolved {_one_line(doc)}")


@app.command("unresolve")
def unresolve(
    group_id: GroupId,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Reopen a resolved or ignored group (it becomes new or ongoing again)."""
    doc = _set_status(group_id, {"status": "unresolved"}, as_json=as_json, url=url, api_key=api_key, timeout=timeout)
    if not as_json:
        typer.echo(f"reopened {_one_line(doc)}")


def ignore_body(until: str | None, for_: str | None, count: int | None, *, now: int) -> dict[str, Any]:
    """The status body for `ignore`: until a time, for a duration from now, for N more events, or forever."""
    given = [name for name, value in (("--until", until), ("--for", for_), ("--count", count)) if value is not None]
    if len(given) > 1:
        raise common.usage(f"give one of --until, --for and --count, not {' and '.join(given)}")
    body: dict[str, Any] = {"status": "ignored"}
    if until is not None:
        try:
            parse_rfc3339_ms(until)
        except ValueError as exc:
            raise common.usage(f"--until: {exc}") from None
        body["until"] = until
    elif for_ is not None:
        from faultlens.alerting.routing import parse_duration

        try:
            seconds = parse_duration(for_)
        except ValueError as exc:
            raise common.usage(f"--for: {exc}") from None
        if seconds < 60:
            raise common.usage("--for must be a minute or more, e.g. 30m, 2h, 1d")
        body["until"] = ms_to_rfc3339(now + int(seconds * 1000))
    elif count is not None:
        body["count"] = count
    return body


@app.command("ignore")
def ignore(
    group_id: GroupId,
    until: Annotated[str | None, typer.Option("--until", help="Until this RFC 3339 time.")] = None,
    for_: Annotated[str | None, typer.Option("--for", help="For this long from now: 30m, 2h, 1d, 1w.")] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, max=1_000_000_000, help="Until this many more events.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Ignore a group until a time, for a while, for N more events, or (no option) forever."""
    body = ignore_body(until, for_, count, now=now_ms())
    doc = _set_status(group_id, body, as_json=as_json, url=url, api_key=api_key, timeout=timeout)
    if not as_json:
        typer.echo(_one_line(doc))


@app.command("assign")
def assign(
    group_id: GroupId,
    name: Annotated[str | None, typer.Argument(help="Who takes it (any name, up to 128 characters).")] = None,
    none: Annotated[bool, typer.Option("--none", help="Take the assignee off.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Assign a group to NAME, or unassign it with --none."""
    if (name is None) == (not none):
        raise common.usage("give a NAME to assign, or --none to unassign (one of them)")
    doc = _ask(
        "PUT",
        _group_path(group_id, "assignee"),
        url=url,
        api_key=api_key,
        timeout=timeout,
        body={"assignee": name},
        params={"window": DEFAULT_WINDOW},
    )
    if as_json:
        echo_json(doc)
    else:
        typer.echo(_one_line(doc))


@app.command("note")
def note(
    group_id: GroupId,
    text: Annotated[str, typer.Argument(help="The note (1 to 2000 characters), quoted.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Add a note to a group's activity."""
    path, window = _group_path(group_id, "notes"), {"window": DEFAULT_WINDOW}
    doc = _ask("POST", path, url=url, api_key=api_key, timeout=timeout, body={"text": text}, params=window)
    if as_json:
        echo_json(doc)
    else:
        notes = sum(1 for a in doc.get("activity") or [] if a.get("action") == "note")
        typer.echo(f"noted on {doc.get('id')} ({notes} notes)")


@app.command("merge")
def merge(
    group_id: GroupId,
    others: Annotated[list[str], typer.Argument(help="The groups to fold into GROUP_ID.")],
    window: WindowOption = DEFAULT_WINDOW,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Fold OTHER groups into GROUP_ID; their later events follow it."""
    for other in others:
        _group_path(other)
    doc = _ask(
        "POST",
        _group_path(group_id, "merge"),
        url=url,
        api_key=api_key,
        timeout=timeout,
        body={"group_ids": others},
        params={"window": window},
    )
    if as_json:
        echo_json(doc)
    else:
        typer.echo(f"merged {', '.join(others)} into {doc.get('id')}: now {doc.get('members')} templates")
        typer.echo(_one_line(doc, window))


@app.command("split")
def split(
    group_id: GroupId,
    members: Annotated[list[str], typer.Argument(help="Member template ids (`groups show`) to move out.")],
    window: WindowOption = DEFAULT_WINDOW,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Move MEMBER templates out of GROUP_ID into one new group; their later events follow it."""
    for member in members:
        _group_path(member)
    doc = _ask(
        "POST",
        _group_path(group_id, "split"),
        url=url,
        api_key=api_key,
        timeout=timeout,
        body={"member_ids": members},
        params={"window": window},
    )
    group, new_group = doc.get("group"), doc.get("new_group")
    if not isinstance(group, dict) or not isinstance(new_group, dict):
        no_answer("the server answered no split result")
    if as_json:
        echo_json(doc)
    else:
        typer.echo(f"new group {_one_line(new_group, window)}")
        typer.echo(f"left     {_one_line(group, window)}")


@app.command("rule-draft")
def rule_draft(
    group_id: GroupId,
    failure_class: Annotated[
        FailureClass | None, typer.Option("--class", help="The rule's failure class (default: the group's).")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="The rule's category (default unknown).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="The rule's failure kind (default group_<id>).")] = None,
    actionable: Annotated[
        bool | None, typer.Option("--actionable/--not-actionable", help="Whether on-call should act on it.")
    ] = None,
    retryable: Annotated[bool | None, typer.Option("--retryable/--not-retryable", help="Worth a retry?")] = None,
    window: WindowOption = DEFAULT_WINDOW,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Draft a rule-pack rule from the group's template words: prints the preview (as YAML comments) and the entry.

    Nothing is activated: paste the entry into the tenant's pack and activate it as usual.
    """
    body: dict[str, Any] = {}
    for name, value in (
        ("failure_class", failure_class.value if failure_class is not None else None),
        ("category", category),
        ("kind", kind),
        ("is_actionable", actionable),
        ("retryable", retryable),
    ):
        if value is not None:
            body[name] = value
    doc = _ask(
        "POST",
        _group_path(group_id, "rule-draft"),
        url=url,
        api_key=api_key,
        timeout=timeout,
        body=body,
        params={"window": window},
    )
    if as_json:
        echo_json(doc)
    else:
        print_draft(doc)
