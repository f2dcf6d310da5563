"""The metric dictionary (metric_dictionary.yaml): every exported metric, its labels and their closed value sets.

`load()` parses and validates the file once. Registration (metrics.py and the scrape-time collectors), docs/metrics.md
(`python -m faultlens.metric_dictionary --docs`), the Grafana dashboard and the Prometheus rules all read it, so a
metric means the same thing wherever it is shown.

Label values outside a closed set: `LabelGuard.check` raises `MetricLabelError` in strict mode
(Settings.obs_metrics_strict, on in the test suite) and otherwise counts the value under
metric_label_violations_total and exports the fold value "other" instead, so a bug never grows cardinality.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml

if TYPE_CHECKING:
    from faultlens.settings import Settings

MetricType = Literal["counter", "gauge", "histogram"]
TYPES: tuple[str, ...] = ("counter", "gauge", "histogram")
SUBSYSTEMS = (
    "api",
    "ingest",
    "otlp",
    "jobs",
    "database",
    "redis",
    "tasks",
    "alerts",
    "quality",
    "cost",
    "slo",
    "overview",
    "parallel_ops",
    "process",
)
SCOPES = ("process", "tenant")
SECTIONS = ("api", "worker", "quality", "cost", "slo")
EXPOSED = ("metrics", "summary")
# The value a label outside its closed set is exported as (outside strict mode); every closed set admits it.
OTHER = "other"
DEFAULT_NAMESPACE = "faultlens"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
NAMESPACE_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_METRIC_KEYS = frozenset(
    {
        "name",
        "type",
        "unit",
        "subsystem",
        "scope",
        "help",
        "labels",
        "buckets",
        "summary",
        "label_values",
        "exposed",
        "since",
    }
)
_LABEL_KEYS = frozenset({"help", "values", "bounded"})


class DictionaryError(ValueError):
    """The dictionary file is malformed (a packaging bug: the tests load it)."""


class MetricLabelError(ValueError):
    """A label value outside its closed set, in strict mode."""


@dataclass(frozen=True)
class LabelSpec:
    name: str
    help: str
    values: tuple[str, ...] | None = None
    bounded: str | None = None


@dataclass(frozen=True)
class SummaryEntry:
    section: str
    field: str


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: MetricType
    unit: str
    help: str
    labels: tuple[str, ...]
    subsystem: str
    scope: str
    buckets: tuple[float, ...] | None = None
    summary: SummaryEntry | None = None
    # Per-metric closed sets: narrow a label's set, or close a bounded label, for this metric only.
    label_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    exposed: str = "metrics"
    since: str | None = None

    def full_name(self, namespace: str) -> str:
        return f"{namespace}_{self.name}"

    @property
    def planned(self) -> bool:
        """Listed for a later issue: no code emits it yet."""
        return self.since == "planned"

    @property
    def served(self) -> bool:
        """Served on a metrics endpoint (not planned, not a summary-only figure)."""
        return not self.planned and self.exposed == "metrics"


@dataclass(frozen=True)
class Dictionary:
    metrics: list[MetricSpec]
    labels: dict[str, LabelSpec]

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise KeyError(f"{name!r} is not in the metric dictionary")

    def namespace(self, settings: Settings | None = None) -> str:
        return settings.obs_metrics_namespace if settings is not None else DEFAULT_NAMESPACE

    def closed_values(self, metric: str | MetricSpec, label: str) -> tuple[str, ...] | None:
        """The values `label` may take on `metric` (None: bounded, not a closed set). The fold value not included."""
        spec = metric if isinstance(metric, MetricSpec) else self.metric(metric)
        if label in spec.label_values:
            return spec.label_values[label]
        return self.labels[label].values

    def allows(self, metric: str | MetricSpec, label: str, value: str) -> bool:
        values = self.closed_values(metric, label)
        return values is None or value == OTHER or value in values

    def by_full_name(self, namespace: str) -> dict[str, MetricSpec]:
        return {spec.full_name(namespace): spec for spec in self.metrics}


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DictionaryError(f"{where}: expected a list of non-empty strings")
    if len(set(value)) != len(value):
        raise DictionaryError(f"{where}: duplicate values")
    return tuple(value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DictionaryError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _label(name: str, entry: Any) -> LabelSpec:
    where = f"label {name}"
    if not isinstance(entry, dict) or set(entry) - _LABEL_KEYS:
        raise DictionaryError(f"{where}: expected an object with keys {sorted(_LABEL_KEYS)}")
    if not _NAME.match(name) or name.startswith("__"):
        raise DictionaryError(f"{where}: not a Prometheus label name")
    if ("values" in entry) == ("bounded" in entry):
        raise DictionaryError(f"{where}: give exactly one of values / bounded")
    values = _strs(entry["values"], f"{where}.values") if "values" in entry else None
    if values is not None and OTHER in values:
        raise DictionaryError(f"{where}: {OTHER!r} is the fold value, admitted by every closed set; do not list it")
    bounded = _text(entry, "bounded", where) if "bounded" in entry else None
    return LabelSpec(name=name, help=_text(entry, "help", where), values=values, bounded=bounded)


def _metric(entry: Any, labels: Mapping[str, LabelSpec]) -> MetricSpec:
    if not isinstance(entry, dict):
        raise DictionaryError("metrics: every entry must be an object")
    name = _text(entry, "name", "metric")
    where = f"metric {name}"
    unknown = set(entry) - _METRIC_KEYS
    if unknown:
        raise DictionaryError(f"{where}: unknown keys {sorted(unknown)}")
    if not _NAME.match(name):
        raise DictionaryError(f"{where}: not a Prometheus metric name")
    kind = entry.get("type")
    if kind not in TYPES:
        raise DictionaryError(f"{where}: type must be one of {TYPES}")
    for key, allowed in (("subsystem", SUBSYSTEMS), ("scope", SCOPES)):
        if entry.get(key) not in allowed:
            raise DictionaryError(f"{where}: {key} must be one of {allowed}")
    exposed = entry.get("exposed", "metrics")
    if exposed not in EXPOSED:
        raise DictionaryError(f"{where}: exposed must be one of {EXPOSED}")
    since = entry.get("since")
    if since is not None and not isinstance(since, str):
        raise DictionaryError(f"{where}: since must be a string")
    if kind == "counter" and not name.endswith("_total"):
        raise DictionaryError(f"{where}: a counter's name ends in _total")
    if kind != "counter" and name.endswith("_total") and exposed == "metrics":
        raise DictionaryError(f"{where}: only counters end in _total")
    label_names = _strs(entry.get("labels", []), f"{where}.labels") if entry.get("labels") else ()
    for label in label_names:
        if label not in labels:
            raise DictionaryError(f"{where}: label {label!r} is not in the labels section")
    narrowed: dict[str, tuple[str, ...]] = {}
    raw_narrowed = entry.get("label_values") or {}
    if not isinstance(raw_narrowed, dict):
        raise DictionaryError(f"{where}: label_values must be an object")
    for label, values in raw_narrowed.items():
        if label not in label_names:
            raise DictionaryError(f"{where}: label_values names {label!r}, which is not one of its labels")
        subset = _strs(values, f"{where}.label_values.{label}")
        base = labels[label].values
        if base is not None and not set(subset) <= set(base):
            raise DictionaryError(f"{where}: label_values.{label} is not a subset of the label's values")
        narrowed[label] = subset
    buckets: tuple[float, ...] | None = None
    if kind == "histogram":
        raw = entry.get("buckets")
        if not isinstance(raw, list) or not raw or not all(isinstance(b, int | float) for b in raw):
            raise DictionaryError(f"{where}: a histogram lists its buckets (seconds)")
        buckets = tuple(float(b) for b in raw)
        if list(buckets) != sorted(set(buckets)):
            raise DictionaryError(f"{where}: buckets must increase")
    elif "buckets" in entry:
        raise DictionaryError(f"{where}: only histograms have buckets")
    summary = None
    if "summary" in entry:
        raw_summary = entry["summary"]
        if not isinstance(raw_summary, dict) or raw_summary.get("section") not in SECTIONS:
            raise DictionaryError(f"{where}: summary.section must be one of {SECTIONS}")
        summary = SummaryEntry(section=raw_summary["section"], field=_text(raw_summary, "field", f"{where}.summary"))
    return MetricSpec(
        name=name,
        type=cast(MetricType, kind),
        unit=_text(entry, "unit", where),
        help=" ".join(_text(entry, "help", where).split()),
        labels=label_names,
        subsystem=entry["subsystem"],
        scope=entry["scope"],
        buckets=buckets,
        summary=summary,
        label_values=narrowed,
        exposed=exposed,
        since=since,
    )


def parse(data: Any) -> Dictionary:
    """Validate a parsed dictionary document."""
    if not isinstance(data, dict) or set(data) != {"labels", "metrics"}:
        raise DictionaryError("the dictionary holds exactly two sections: labels and metrics")
    if not isinstance(data["labels"], dict) or not isinstance(data["metrics"], list):
        raise DictionaryError("labels is an object and metrics a list")
    labels = {str(name): _label(str(name), entry) for name, entry in data["labels"].items()}
    metrics = [_metric(entry, labels) for entry in data["metrics"]]
    names = [m.name for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DictionaryError(f"metrics listed twice: {duplicates}")
    # Prometheus exports a histogram as _bucket/_count/_sum and a counter with _created: no other name may clash.
    derived = {
        f"{m.name}{suffix}" for m in metrics if m.type == "histogram" for suffix in ("_bucket", "_count", "_sum")
    }
    clash = sorted(derived & set(names))
    if clash:
        raise DictionaryError(f"metric names clash with a histogram's series: {clash}")
    unused = sorted(set(labels) - {label for m in metrics for label in m.labels})
    if unused:
        raise DictionaryError(f"labels no metric uses: {unused}")
    return Dictionary(metrics=metrics, labels=labels)


@functools.cache
def load() -> Dictionary:
    """The packaged dictionary, parsed and validated once."""
    text = resources.files("faultlens").joinpath("metric_dictionary.yaml").read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))


class LabelGuard:
    """Checks label values against the dictionary at `.labels()` time: raise (strict) or fold to OTHER and count."""

    def __init__(self, *, strict: bool, on_violation: Callable[[str, str], None] | None = None) -> None:
        self.strict = strict
        self.on_violation = on_violation
        self._lock = threading.Lock()

    def check(self, spec: MetricSpec, values: Sequence[str]) -> tuple[str, ...]:
        dictionary = load()
        checked: list[str] = []
        for label, value in zip(spec.labels, values, strict=True):
            value = str(value)
            if dictionary.allows(spec, label, value):
                checked.append(value)
                continue
            if self.strict:
                raise MetricLabelError(f"{spec.name}: {label}={value!r} is not in the metric dictionary's closed set")
            if self.on_violation is not None:
                self.on_violation(spec.name, label)
            checked.append(OTHER)
        return tuple(checked)


def render_docs(dictionary: Dictionary | None = None, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """docs/metrics.md, generated from the dictionary."""
    d = dictionary or load()
    out = [
        "# Metrics",
        "",
        "<!-- Generated from src/faultlens/metric_dictionary.yaml by `python -m faultlens.metric_dictionary --docs`;",
        "     do not edit by hand (tests/unit/test_metric_dictionary.py compares). -->",
        "",
        f"Every metric faultlens exports, named with the default namespace `{namespace}` (`OBS_METRICS_NAMESPACE` /",
        "`FAULTLENS_OBS_METRICS_NAMESPACE` changes the prefix). `GET /metrics` serves the *tenant* series for the",
        "scraping key's tenant and, to operator keys only, the *process* series (shared by all tenants). Labels come",
        f"from closed sets; a value outside its set is exported as `{OTHER}` and counted in",
        f"`{namespace}_metric_label_violations_total` (strict mode, `FAULTLENS_OBS_METRICS_STRICT=1`, raises instead).",
        "Entries marked *summary* are figures of the ops summary (`GET /api/v1/internal/ops/metrics/summary`) that",
        "Prometheus derives with a recording rule; *planned* entries belong to a later issue and are not emitted yet.",
        "",
    ]
    for subsystem in SUBSYSTEMS:
        specs = [m for m in d.metrics if m.subsystem == subsystem]
        if not specs:
            continue
        out += [f"## {subsystem}", "", "| metric | type | unit | scope | labels | help |", "|---|---|---|---|---|---|"]
        for m in specs:
            notes = []
            if m.planned:
                notes.append("planned")
            if m.exposed == "summary":
                notes.append("summary only")
            if m.summary is not None:
                notes.append(f"ops summary: {m.summary.section}.{m.summary.field}")
            help_text = m.help + (f" ({'; '.join(notes)})" if notes else "")
            labels = ", ".join(f"`{label}`" for label in m.labels) or "-"
            cells = (f"`{m.full_name(namespace)}`", m.type, m.unit, m.scope, labels, help_text.replace("|", "/"))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Labels", "", "| label | values | help |", "|---|---|---|"]
    for label in sorted(d.labels.values(), key=lambda spec: spec.name):
        closed = label.values is not None
        values = ", ".join(f"`{v}`" for v in label.values or ()) if closed else f"bounded: {label.bounded}"
        narrowed = [
            f"`{m.name}`: {', '.join(m.label_values[label.name])}" for m in d.metrics if label.name in m.label_values
        ]
        if narrowed:
            values += "<br>per metric: " + "; ".join(narrowed)
        out.append(f"| `{label.name}` | {values} | {label.help} |")
    out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--docs"]:
        print("usage: python -m faultlens.metric_dictionary --docs > docs/metrics.md", file=sys.stderr)
        return 2
    sys.stdout.write(render_docs())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
