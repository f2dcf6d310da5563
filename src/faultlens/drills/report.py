"""Drill reports: markdown for a person (and the dashboard's link) and JSON for machines."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from typing import Any

from faultlens.drills.harness import DrillResult

# The labels that say why or what became of something: the report groups metric deltas by them first.
_KEY_LABELS = ("reason", "outcome", "result")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_LOG_KEYS = ("ts", "level", "logger", "msg", "trace_id", "request_id", "job_id", "error_code")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _labels(series: str) -> dict[str, str]:
    return dict(_LABEL.findall(series.partition("{")[2]))


def _delta(value: float) -> str:
    return f"{value:+g}" if float(value).is_integer() else f"{value:+.3f}"


def _deltas(deltas: dict[str, float]) -> list[str]:
    if not deltas:
        return ["(no metric moved)"]
    keyed = {k: v for k, v in deltas.items() if any(label in _labels(k) for label in _KEY_LABELS)}
    rest = {k: v for k, v in deltas.items() if k not in keyed}
    lines = ["| series | delta |", "|---|---|"]
    lines += [f"| `{_cell(k)}` | {_delta(v)} |" for k, v in sorted(keyed.items())]
    lines += [f"| `{_cell(k)}` | {_delta(v)} |" for k, v in sorted(rest.items())]
    return lines


def _log_line(line: dict[str, Any]) -> str:
    shown = {k: line[k] for k in _LOG_KEYS if line.get(k) is not None}
    extra = {k: v for k, v in line.items() if k not in _LOG_KEYS and not k.startswith("_") and v is not None}
    return json.dumps({**shown, **extra}, ensure_ascii=False, default=str)


def render_one(result: DrillResult) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    out = [
        f"## {result.name}: {verdict}",
        "",
        f"**{result.title}**. {result.shows}",
        "",
        f"- report id: `{result.id}`",
        f"- duration: {result.duration_s:.1f} s (time scale {result.time_scale:g}, {result.database})",
        f"- lost: {result.lost}",
        f"- work dir: `{result.work_dir}`",
        "",
        "### Checks",
        "",
    ]
    out += [f"- [{'x' if c.ok else ' '}] {c.name}{f': {c.detail}' if c.detail else ''}" for c in result.checks]
    out += ["", "### Timeline", "", "| t (s) | what |", "|---|---|"]
    out += [f"| {ms / 1000:.2f} | {_cell(text)} |" for ms, text in result.timeline]
    out += ["", "### Metric deltas (by reason / outcome first)", "", *_deltas(result.metric_deltas)]
    out += ["", "### Trace ids", ""]
    out += [f"- `{t}`" for t in result.trace_ids] or ["(none)"]
    out += ["", "### Log lines", ""]
    if result.log_lines:
        out += ["```", *(_log_line(line) for line in result.log_lines), "```"]
    else:
        out.append("(none)")
    return "\n".join(out) + "\n"


def render_markdown(results: Iterable[DrillResult]) -> str:
    """One document: a summary table, then each drill's verdict, checks, timeline, deltas, trace ids and logs."""
    found = list(results)
    passed = sum(r.passed for r in found)
    out = [
        "# faultlens failure drills",
        "",
        f"{passed} of {len(found)} passed.",
        "",
        "| drill | verdict | duration (s) | lost | shows |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {r.name} | {'pass' if r.passed else 'FAIL'} | {r.duration_s:.1f} | {r.lost} | {_cell(r.shows)} |"
        for r in found
    ]
    return "\n".join(out) + "\n\n" + "\n".join(render_one(r) for r in found)


def result_dict(result: DrillResult) -> dict[str, Any]:
    out = dataclasses.asdict(result)
    out["timeline"] = [{"t_ms": ms, "text": text} for ms, text in result.timeline]
    return out


def as_json(results: Iterable[DrillResult]) -> str:
    """{"passed": bool, "drills": [...]} with every field of each result; timeline entries as {t_ms, text}."""
    found = list(results)
    body = {"passed": all(r.passed for r in found), "drills": [result_dict(r) for r in found]}
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)
