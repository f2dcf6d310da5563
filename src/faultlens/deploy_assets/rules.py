"""Prometheus recording and alert rules for faultlens itself, and a promtool unit test per alert."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faultlens.deploy_assets.names import INGEST_OBJECTIVE, INGEST_ROUTES, SCRAPE_JOB, full, runbook_url
from faultlens.jobs.runner import DEFAULT_POLL_S
from faultlens.metric_dictionary import Dictionary
from faultlens.settings import Settings

# Multi-window, multi-burn-rate (Google SRE workbook, ch. 5): (long window, short window, burn rate, for, severity).
FAST_BURN = ("1h", "5m", 14.4, "2m", "P0")  # 2% of a 30-day budget in an hour: the main path is down, page
SLOW_BURN = ("6h", "30m", 6.0, "15m", "P1")  # 5% of the budget in six hours
BURN_WINDOWS = ("5m", "30m", "1h", "6h")
# A loop is stalled when its last success is older than this many intervals (and at least STALL_FLOOR_S).
STALL_INTERVALS = 3
STALL_FLOOR_S = 60.0
# Database errors per second that page someone (a few a minute: one-off lock timeouts stay quiet).
DB_ERRORS_PER_S = 0.05


def loop_intervals() -> dict[str, float]:
    """Each background loop's default interval: the threshold of the stalled-loop alert."""
    defaults = Settings.model_fields
    return {
        "job_runner": DEFAULT_POLL_S,
        "task_sync": float(defaults["task_sync_interval_s"].default),
        "fingerprint_saver": float(defaults["fingerprint_save_interval_s"].default),
    }


@dataclass(frozen=True)
class Case:
    """One promtool test case: input series, the evaluation time, the alerts expected then (empty: none)."""

    name: str
    series: dict[str, str]
    eval_time: str
    fires: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    cases: tuple[Case, ...]

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": runbook_url(self.name),
            },
        }


def _ratio_name(namespace: str, window: str) -> str:
    return f"{namespace}:ingest_requests:error_ratio_rate{window}"


def recording_groups(dictionary: Dictionary, namespace: str) -> list[dict[str, Any]]:
    requests = full(dictionary, namespace, "http_requests_total")
    duration = full(dictionary, namespace, "http_request_duration_seconds")
    routes = "|".join(INGEST_ROUTES)
    slo = [
        {
            "record": _ratio_name(namespace, w),
            "expr": (
                f'sum by (job) (rate({requests}{{route=~"{routes}",status_class="5xx"}}[{w}]))\n'
                f'/\nsum by (job) (rate({requests}{{route=~"{routes}"}}[{w}]))'
            ),
        }
        for w in BURN_WINDOWS
    ]
    http = [
        {
            "record": f"{namespace}:http_requests:rate5m",
            "expr": f"sum by (job, route, status_class) (rate({requests}[5m]))",
        },
        {
            # the ops summary's error ratio, as Prometheus sees it (the dictionary's http_request_error_ratio)
            "record": f"{namespace}:{dictionary.metric('http_request_error_ratio').name}:rate5m",
            "expr": (
                f'sum by (job) (rate({requests}{{status_class="5xx"}}[5m]))\n/\nsum by (job) (rate({requests}[5m]))'
            ),
        },
        {
            "record": f"{namespace}:http_request_duration_seconds:p95_5m",
            "expr": f"histogram_quantile(0.95, sum by (job, route, le) (rate({duration}_bucket[5m])))",
        },
    ]
    return [
        {"name": f"{namespace}-ingest-slo", "rules": slo},
        {"name": f"{namespace}-http", "rules": http},
    ]


def _requests_series(namespace: str, route: str, status_class: str) -> str:
    return (
        f'{namespace}_http_requests_total{{job="{SCRAPE_JOB}",route="{route}",method="POST",'
        f'status_class="{status_class}"}}'
    )


def _burn_alert(dictionary: Dictionary, namespace: str, spec: tuple[str, str, float, str, str], name: str) -> Alert:
    long_w, short_w, rate, for_, severity = spec
    threshold = round(rate * (1 - INGEST_OBJECTIVE), 6)
    full(dictionary, namespace, "http_requests_total")  # the series below are named as the dictionary names them
    minutes = 420 if long_w == "6h" else 90
    eval_time = "390m" if long_w == "6h" else "70m"
    # an error share three times the threshold fires; a tenth of it does not; 5xx on other routes do not count
    bad = round(threshold * 3 * 1000)
    low = max(1, round(threshold * 100))
    expected = {"severity": severity, "job": SCRAPE_JOB}
    return Alert(
        name=name,
        expr=(f"{_ratio_name(namespace, long_w)} > {threshold}\nand\n{_ratio_name(namespace, short_w)} > {threshold}"),
        for_=for_,
        severity=severity,
        summary=f"Ingest is answering 5xx at {rate:g}x the error budget of its {INGEST_OBJECTIVE:.1%} objective",
        description=(
            f"More than {threshold:.2%} of ingest requests ({', '.join(INGEST_ROUTES)}) were answered 5xx over the "
            f"last {long_w} and the last {short_w} (job {{{{ $labels.job }}}})."
        ),
        cases=(
            Case(
                "fires",
                {
                    _requests_series(namespace, INGEST_ROUTES[0], "5xx"): f"0+{bad}x{minutes}",
                    _requests_series(namespace, INGEST_ROUTES[0], "2xx"): f"0+{1000 - bad}x{minutes}",
                },
                eval_time,
                [expected],
            ),
            Case(
                "does not fire under the threshold, nor for 5xx of other routes",
                {
                    _requests_series(namespace, INGEST_ROUTES[0], "5xx"): f"0+{low}x{minutes}",
                    _requests_series(namespace, INGEST_ROUTES[0], "2xx"): f"0+{10000 - low}x{minutes}",
                    _requests_series(namespace, "/api/v1/overview", "5xx"): f"0+1000x{minutes}",
                },
                eval_time,
            ),
        ),
    )


def _loop_alert(dictionary: Dictionary, namespace: str) -> Alert:
    lag = full(dictionary, namespace, "background_loop_lag_seconds")
    thresholds = {loop: max(STALL_INTERVALS * s, STALL_FLOOR_S) for loop, s in loop_intervals().items()}
    expr = "\nor\n".join(
        f'max by (job, loop) ({lag}{{loop="{loop}"}}) > {limit:g}' for loop, limit in thresholds.items()
    )
    loop = "task_sync"
    limit = thresholds[loop]
    series = f'{lag}{{job="{SCRAPE_JOB}",loop="{loop}"}}'
    healthy = f'{lag}{{job="{SCRAPE_JOB}",loop="job_runner"}}'
    return Alert(
        name="FaultlensBackgroundLoopStalled",
        expr=expr,
        for_="2m",
        severity="P1",
        summary="The faultlens background loop {{ $labels.loop }} has not completed a pass in time",
        description=(
            f"The last successful pass of {{{{ $labels.loop }}}} is older than {STALL_INTERVALS} of its intervals "
            f"(at least {STALL_FLOOR_S:g}s): jobs, task syncs or fingerprint saves are not happening "
            "(job {{ $labels.job }})."
        ),
        cases=(
            # the lag grows by 60 s each minute from 0: past the threshold and for 2 minutes at 10m
            Case(
                "fires",
                {series: "0+60x20", healthy: "0x20"},
                "10m",
                [{"severity": "P1", "job": SCRAPE_JOB, "loop": loop}],
            ),
            Case("does not fire while the loop passes", {series: f"{limit / 2:g}x20", healthy: "1x20"}, "10m"),
        ),
    )


def _database_alert(dictionary: Dictionary, namespace: str) -> Alert:
    errors = full(dictionary, namespace, "database_errors_total")
    series = f'{errors}{{job="{SCRAPE_JOB}",reason="db_unreachable"}}'
    return Alert(
        name="FaultlensDatabaseErrors",
        expr=f"sum by (job, reason) (rate({errors}[5m])) > {DB_ERRORS_PER_S:g}",
        for_="5m",
        severity="P1",
        summary="faultlens database calls are failing ({{ $labels.reason }})",
        description=(
            f"More than {DB_ERRORS_PER_S:g} database errors per second with reason {{{{ $labels.reason }}}} "
            "over the last 5 minutes (job {{ $labels.job }})."
        ),
        cases=(
            Case(
                "fires", {series: "0+30x30"}, "15m", [{"severity": "P1", "job": SCRAPE_JOB, "reason": "db_unreachable"}]
            ),
            Case("does not fire for one error a minute", {series: "0+1x30"}, "15m"),
        ),
    )


def _down_alert() -> Alert:
    series = f'up{{job="{SCRAPE_JOB}",instance="127.0.0.1:8000"}}'
    return Alert(
        name="FaultlensScrapeFailing",
        expr=f'up{{job="{SCRAPE_JOB}"}} == 0',
        for_="5m",
        severity="P0",
        summary="Prometheus cannot scrape faultlens at {{ $labels.instance }}",
        description=(
            "faultlens did not answer /metrics for 5 minutes: the server is down, unreachable, or refuses the "
            "scrape's operator key. The ingest SLO alerts are blind meanwhile."
        ),
        cases=(
            Case(
                "fires",
                {series: "0x10"},
                "10m",
                [{"severity": "P0", "job": SCRAPE_JOB, "instance": "127.0.0.1:8000"}],
            ),
            Case("does not fire while scrapes succeed", {series: "1x10"}, "10m"),
        ),
    )


def alerts(dictionary: Dictionary, namespace: str) -> list[Alert]:
    return [
        _burn_alert(dictionary, namespace, FAST_BURN, "FaultlensIngestAvailabilityBurnFast"),
        _burn_alert(dictionary, namespace, SLOW_BURN, "FaultlensIngestAvailabilityBurnSlow"),
        _loop_alert(dictionary, namespace),
        _database_alert(dictionary, namespace),
        _down_alert(),
    ]


def alert_groups(dictionary: Dictionary, namespace: str) -> list[dict[str, Any]]:
    return [{"name": f"{namespace}-alerts", "rules": [a.rule() for a in alerts(dictionary, namespace)]}]


def _render(template: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        template = template.replace(f"{{{{ $labels.{key} }}}}", value)
    return template


def unit_test(alert: Alert, rule_files: list[str]) -> dict[str, Any]:
    """A promtool test file for one alert: each case fires it (with its labels and annotations) or does not."""
    tests = []
    for case in alert.cases:
        expected = []
        for labels in case.fires:
            annotations = {k: _render(v, labels) for k, v in alert.rule()["annotations"].items()}
            expected.append({"exp_labels": labels, "exp_annotations": annotations})
        tests.append(
            {
                "name": f"{alert.name} {case.name}",
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [{"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": expected}],
            }
        )
    return {"rule_files": rule_files, "evaluation_interval": "1m", "tests": tests}
