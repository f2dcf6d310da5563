"""Overview exports: JSON, CSV (spreadsheet-safe) and Markdown renderings with their media type and file name."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from faultlens.errors import InvalidRequest

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
OVERVIEW_COLUMNS = (
    "source",
    "total",
    "success",
    "failure",
    "retry",
    "dead_letter",
    "cancelled",
    "success_rate",
    "failure_rate",
    "actionable_failure_rate",
    "dead_letter_ratio",
    "avg_attempts",
    "retry_count",
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
        raise InvalidRequest(f"{param} must be one of {', '.join(MEDIA_TYPES)}", details={"param": param, "value": fmt})
    return fmt


def file_stem(prefix: str, *, days: int, generated_at: int) -> str:
    """<prefix>-<days>d-<yyyymmdd> (UTC date of generation); the renderer adds the extension."""
    day = datetime.fromtimestamp(generated_at / 1000, tz=UTC).strftime("%Y%m%d")
    return f"{prefix}-{days}d-{day}"


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


def _md_cell(value: Any) -> str:
    text = str(_cell(value))
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return " ".join(text.split())


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_hints(hints: Sequence[Mapping[str, Any]]) -> str:
    if not hints:
        return "No SLO hints.\n"
    return "".join(f"- **{_md_cell(h['level'])}** `{_md_cell(h['code'])}`: {_md_cell(h['message'])}\n" for h in hints)


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
                **{
                    k: part[k]
                    for k in (
                        "success_rate",
                        "failure_rate",
                        "actionable_failure_rate",
                        "dead_letter_ratio",
                        "avg_attempts",
                        "retry_count",
                    )
                },
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
    """The document as JSON, its rows as CSV, or a Markdown report of the rows and hints."""
    check_format(fmt)
    if fmt == "json":
        content = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    elif fmt == "csv":
        content = to_csv(rows, columns).encode()
    else:
        content = (
            f"# {_md_cell(title)}\n\n{markdown_table(rows, columns)}\n## SLO hints\n\n{markdown_hints(hints)}"
        ).encode()
    return Rendered(content, MEDIA_TYPES[fmt], f"{name}.{fmt}")


def render_overview(overview: Mapping[str, Any], *, fmt: str, generated_at: int) -> Rendered:
    window = overview["window"]
    name = file_stem("faultlens-overview", days=window["days"], generated_at=generated_at)
    title = f"faultlens overview: last {window['days']} days ({window['from']} to {window['to']})"
    return render(
        overview,
        fmt=fmt,
        rows=overview_rows(overview),
        columns=OVERVIEW_COLUMNS,
        title=title,
        hints=overview["slo_hints"],
        name=name,
    )
