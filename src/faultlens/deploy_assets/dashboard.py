"""The Grafana dashboard of faultlens itself: a row per subsystem, a panel per served metric of the dictionary."""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from faultlens.deploy_assets.names import INGEST_OBJECTIVE, served
from faultlens.deploy_assets.rules import BURN_WINDOWS
from faultlens.metric_dictionary import Dictionary, MetricSpec

UID = "faultlens-self"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SUBSYSTEM_TITLES = {
    "api": "HTTP API",
    "ingest": "Ingest",
    "otlp": "OTLP receiver",
    "jobs": "Jobs and background loops",
    "database": "Database",
    "redis": "Redis",
    "tasks": "Task stores",
    "alerts": "Alert deliveries",
    "quality": "Classification quality",
    "cost": "Cost",
    "slo": "SLO hints",
    "overview": "Overview (the scraping key's tenant)",
    "parallel_ops": "Parallel ops",
    "process": "Metric dictionary guard",
}
UNITS = {"seconds": "s", "ratio": "percentunit", "bytes": "bytes", "boolean": "bool"}
WIDTH, HEIGHT = 12, 8


def _selector(spec: MetricSpec, namespace: str, suffix: str = "") -> str:
    return f'{spec.full_name(namespace)}{suffix}{{job=~"$job"}}'


def _by(labels: tuple[str, ...] | list[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def _legend(labels: tuple[str, ...] | list[str]) -> str:
    return " ".join(f"{{{{{label}}}}}" for label in labels) or "total"


def panel_title(spec: MetricSpec, view: str = "") -> str:
    """Titles are the short metric name (stable whatever the namespace), plus what the panel derives from it."""
    return f"{spec.name} {view}".strip()


def metric_panels(spec: MetricSpec, namespace: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, unit, [(legend, expr)]) for each panel a metric gets."""
    labels = list(spec.labels)
    if spec.type == "counter":
        panels = [
            (
                panel_title(spec, "rate"),
                "ops",
                [(_legend(labels), f"sum{_by(labels)} (rate({_selector(spec, namespace)}[$__rate_interval]))")],
            )
        ]
        if "status_class" in labels:
            group = [x for x in labels if x not in ("status_class", "method")]
            total = f"sum{_by(group)} (rate({_selector(spec, namespace)}[$__rate_interval]))"
            errors = (
                f"sum{_by(group)} (rate({spec.full_name(namespace)}"
                f'{{job=~"$job",status_class="5xx"}}[$__rate_interval]))'
            )
            panels.append((panel_title(spec, "5xx ratio"), "percentunit", [(_legend(group), f"{errors}\n/\n{total}")]))
        return panels
    if spec.type == "histogram":
        group = labels[:1]
        targets = [
            (
                f"p{int(q * 100)} {_legend(group)}",
                f"histogram_quantile({q}, sum{_by([*group, 'le'])} "
                f"(rate({_selector(spec, namespace, '_bucket')}[$__rate_interval])))",
            )
            for q in (0.5, 0.95, 0.99)
        ]
        return [(panel_title(spec, "p50 / p95 / p99"), "s", targets)]
    unit = UNITS.get(spec.unit, "short")
    if spec.name.endswith("_timestamp_seconds"):
        return [
            (
                panel_title(spec, "age"),
                "s",
                [(_legend(labels), f"time() - max{_by(labels)} ({_selector(spec, namespace)})")],
            )
        ]
    return [(spec.name, unit, [(_legend(labels), f"max{_by(labels)} ({_selector(spec, namespace)})")])]


def _timeseries(
    title: str, description: str, unit: str, targets: list[tuple[str, str]], x: int, y: int
) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        unit=unit,
        targets=[
            g.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i), datasource=DATASOURCE)
            for i, (legend, expr) in enumerate(targets)
        ],
        gridPos=g.GridPos(h=HEIGHT, w=WIDTH, x=x, y=y),
    )


def _slo_panels(namespace: str) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    budget = 1 - INGEST_OBJECTIVE
    return [
        (
            "ingest availability error ratio",
            f"Share of ingest requests answered 5xx (recording rules); the objective allows {budget:.1%}.",
            "percentunit",
            [
                (f"{w} {{{{job}}}}", f'{namespace}:ingest_requests:error_ratio_rate{w}{{job=~"$job"}}')
                for w in BURN_WINDOWS
            ],
        ),
        (
            "ingest availability burn rate",
            "How fast the error budget burns (1 = exactly on budget); the alerts fire at 14.4 (1h and 5m) and 6 "
            "(6h and 30m).",
            "short",
            [
                (f"{w} {{{{job}}}}", f'{namespace}:ingest_requests:error_ratio_rate{w}{{job=~"$job"}} / {budget:g}')
                for w in BURN_WINDOWS
            ],
        ),
    ]


def build(dictionary: Dictionary, namespace: str) -> dict[str, Any]:
    """The dashboard's JSON model (deterministic: the committed file must equal a fresh build)."""
    panels: list[Any] = []
    y = 0
    specs = served(dictionary)
    sections: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]]]]]] = [
        ("Ingest availability SLO", _slo_panels(namespace))
    ]
    for subsystem, title in SUBSYSTEM_TITLES.items():
        rows = [
            (t, m.help, unit, targets)
            for m in specs
            if m.subsystem == subsystem
            for t, unit, targets in metric_panels(m, namespace)
        ]
        if rows:
            sections.append((title, rows))
    for title, rows in sections:
        panels.append(g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, (panel, description, unit, targets) in enumerate(rows):
            panels.append(_timeseries(panel, description, unit, targets, x=(i % 2) * WIDTH, y=y + (i // 2) * HEIGHT))
        y += ((len(rows) + 1) // 2) * HEIGHT
    dashboard = g.Dashboard(
        title=f"{namespace} (self-observation)",
        uid=UID,
        description="Generated from faultlens' metric dictionary by `make deploy-assets`; do not edit by hand.",
        tags=[namespace, "generated"],
        timezone="utc",
        refresh="30s",
        panels=panels,
        templating=g.Templating(
            list=[
                g.Template(name="datasource", label="Data source", query="prometheus", type="datasource"),
                g.Template(
                    name="job",
                    label="Job",
                    query=f"label_values({dictionary.metric('http_requests_total').full_name(namespace)}, job)",
                    dataSource=DATASOURCE,
                    includeAll=True,
                    multi=True,
                    default="$__all",
                ),
            ]
        ),
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return data


def panel_titles(data: dict[str, Any]) -> set[str]:
    return {p["title"] for p in data["panels"] if p.get("type") != "row"}
