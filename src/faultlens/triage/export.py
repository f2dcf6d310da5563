"""Overview exports: JSON, CSV (spreadsheet-safe) and Markdown renderings with their media type and file name."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from faultlens.errors import InvalidRequest, param_details

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); a leading line break
# or tab hides the formula behind it in some importers, so those are treated alike.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# Characters that start Markdown inline syntax (emphasis, code, links, images, HTML, tables, strikethrough,
# math) or an autolink (scheme:, user@host): escaped with a backslash, which CommonMark allows for any ASCII
# punctuation and renders as the character itself.
_MD_ESCAPE = re.compile(r"([\\`*\[\]()!|~^=$#{}:@])")
# An underscore inside a word (doc_sync) cannot open or close emphasis, so only the others are escaped.
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
_MD_WWW = re.compile(r"(?i)\b(www)\.")
# An overview partition's figures that a row copies as they are.
_PARTITION_FIGURES = (
    "success_rate",
    "failure_rate",
    "actionable_failure_rate",
    "dead_letter_rate",
    "avg_attempts",
    "retry_count",
)
OVERVIEW_COLUMNS = (
    "source",
    "total",
    "success",
    "failure",
    "retry",
    "dead_letter",
    "cancelled",
    *_PARTITION_FIGURES,
    "top_failure_kinds",
    "top_error_codes",
)


@dataclass(frozen=True)
class Rendered:
    content: bytes
    media_type: str
    filename: str

    @property
    def content_disposition(self) -> str:
        return f'attachment; filename="{self.filename}"'


def check_format(fmt: str, *, param: str = "format") -> str:
    if fmt not in MEDIA_TYPES:
        message = f"{param} must be one of {', '.join(MEDIA_TYPES)}"
        raise InvalidRequest(message, details=param_details(param, message))
    return fmt


def file_stem(prefix: str, *, days: int | None = None, label: str | None = None, generated_at: int) -> str:
    """<prefix>-<days>d-<yyyymmdd> (or <prefix>-<window label>-...; UTC date of generation); no extension."""
    day = datetime.fromtimestamp(generated_at / 1000, tz=UTC).strftime("%Y%m%d")
    span = f"{days}d" if label is None else label
    return f"{prefix}-{span}-{day}"


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would evaluate gets a leading apostrophe; numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(_cell(row.get(c))) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def md_text(value: Any) -> str:
    """Any value as inert Markdown text on one line: no link, image, HTML, emphasis or table cell break survives."""
    text = " ".join(str(_cell(value)).split())  # line breaks would end a table row or a list item
    for raw, safe in _MD_ENTITIES:
        text = text.replace(raw, safe)
    text = _MD_UNDERSCORE.sub(r"\\_", _MD_ESCAPE.sub(r"\\\1", text))
    return _MD_WWW.sub(r"\1\\.", text)


def md_code(value: Any) -> str:
    """Any value as one Markdown code span (nothing inside one renders), fenced past its own backticks."""
    text = " ".join(str(_cell(value)).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_cell(value: Any) -> str:
    return md_text(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_hints(hints: Sequence[Mapping[str, Any]]) -> str:
    if not hints:
        return "No SLO hints.\n"
    return "".join(f"- **{md_text(h['level'])}** {md_code(h['code'])}: {md_text(h['message'])}\n" for h in hints)


def _pairs(items: Sequence[Mapping[str, Any]], key: str) -> str:
    return "; ".join(f"{i[key]}: {i['count']}" for i in items)


def overview_rows(overview: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per source of an overview document (as built by overview.Overview.as_dict)."""
    rows = []
    for part in overview["sources"]:
        rows.append(
            {
                "source": part["source"],
                "total": part["total"],
                **part["status_counts"],
                **{k: part[k] for k in _PARTITION_FIGURES},
                "top_failure_kinds": _pairs(part["top_failure_kinds"], "failure_kind"),
                "top_error_codes": _pairs(part["top_error_codes"], "error_code"),
            }
        )
    return rows


def render(
    document: Mapping[str, Any],
    *,
    fmt: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str,
    hints: Sequence[Mapping[str, Any]],
    name: str,
) -> Rendered:
    """The document as JSON, its rows as CSV, or a Markdown report of the rows and hints.

    `title` is the product's own words (window and dates), written as is; every row and hint value is escaped.
    """
    check_format(fmt)
    if fmt == "json":
        content = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    elif fmt == "csv":
        content = to_csv(rows, columns).encode()
    else:
        content = (
            f"# {' '.join(title.split())}\n\n{markdown_table(rows, columns)}\n## SLO hints\n\n{markdown_hints(hints)}"
        ).encode()
    return Rendered(content, MEDIA_TYPES[fmt], f"{name}.{fmt}")


def describe_label(label: str) -> str:
    """A window label in words: 7d -> last 7 days, 1h -> last 1 hour, custom -> custom window."""
    units = {"d": "day", "h": "hour"}
    number, unit = label[:-1], label[-1:]
    if not number.isdigit() or unit not in units:
        return f"{label} window"
    return f"last {number} {units[unit]}{'' if number == '1' else 's'}"


def render_overview(overview: Mapping[str, Any], *, fmt: str, generated_at: int) -> Rendered:
    window = overview["window"]
    name = file_stem("faultlens-overview", label=window["label"], generated_at=generated_at)
    title = f"faultlens overview: {describe_label(window['label'])} ({window['from']} to {window['to']})"
    return render(
        overview,
        fmt=fmt,
        rows=overview_rows(overview),
        columns=OVERVIEW_COLUMNS,
        title=title,
        hints=overview["slo_hints"],
        name=name,
    )
