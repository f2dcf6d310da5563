"""Every alert name faultlens can raise has a section of docs/runbook.md whose anchor is the name itself.

Without a routing file an alert's runbook link is `docs/runbook.md#<alertname>` (alerting/routing.py), so a name
without a heading is a dead link in every notification. The names are read from the code that raises them: the
SLO hint codes by running the hint engine, the other conditions from their source text, with guards that fail when
a condition names its alert in a way the scan does not know.
"""

from __future__ import annotations

import re
from pathlib import Path

from faultlens.alerting import conditions, security
from faultlens.triage import slo
from faultlens.triage.counts import Counts

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
CONDITIONS_PY = Path(conditions.__file__)
SECURITY_PY = Path(security.__file__)
SLO_PY = Path(slo.__file__)
# Hint codes the engine only ever gives at level info: advice, never an alert (conditions.HINT_LEVELS).
INFO_ONLY_CODES = {"category_dominant"}


def _every_hint() -> list[slo.Hint]:
    """Hints for two sources that break every objective: `broken` all thresholds and the fast burn pair,
    `spiking` the failure spike (its hour is healthy, its last 15 minutes all failures)."""
    broken = Counts(total=100, failures=100, actionable=100, dead_letter=40, retry=40, categories={"network": 100})
    healthy_hour = Counts(total=1000, success=900, failures=100, actionable=100)
    all_failed = Counts(total=20, failures=20, actionable=20)
    return slo.build_hints(
        window_counts={"broken": broken, "spiking": healthy_hour},
        recent={"broken": {"1h": broken, "5m": all_failed}, "spiking": {slo.SPIKE_WINDOW: all_failed}},
        config=slo.SloConfig(),
        window="1h",
    )


def _slo_codes_in_source() -> set[str]:
    text = SLO_PY.read_text(encoding="utf-8")
    # Hint("code", level, ...) and the rate table of threshold_hints: ("code", "what", counts.rate, objective.max).
    literal = set(re.findall(r'\bHint\(\s*"(\w+)"', text))
    table = set(re.findall(r'\(\s*"(\w+)",\s*"[^"]+",\s*counts\.\w+,', text))
    # Any other Hint(...) must take its code from that table (`_above(source, code, ...)`), or the scan misses it.
    computed = re.findall(r"\bHint\(\s*(?!\")(\w+)", text)
    assert computed == ["code"], f"slo.py builds a Hint from {computed}: teach this test where its code comes from"
    return literal | table


def slo_alert_names() -> set[str]:
    """The hint codes that become alerts: those the engine gives at a level conditions.HINT_LEVELS maps."""
    hints = _every_hint()
    raised = {h.code for h in hints if h.level in conditions.HINT_LEVELS}
    info = {h.code for h in hints if h.level not in conditions.HINT_LEVELS}
    in_source = _slo_codes_in_source()
    # Every code slo.py can build was produced above, so the set is complete; info-only codes are no alerts.
    assert info == INFO_ONLY_CODES and not info & raised
    assert in_source == raised | INFO_ONLY_CODES, sorted(in_source ^ (raised | INFO_ONLY_CODES))
    return raised


def condition_alert_names() -> set[str]:
    """The names conditions.py gives its own candidates (SLO hints aside: their name is the hint code)."""
    text = CONDITIONS_PY.read_text(encoding="utf-8")
    names = set(re.findall(r'^\s+name = "(\w+)"$', text, flags=re.M))
    names.add(conditions.DELIVERY_DEAD_LETTER)
    # Each Candidate takes its name from `name`, the hint's code or DELIVERY_DEAD_LETTER; anything else is unscanned.
    sources = set(re.findall(r"\bCandidate\(\s*name=([\w.]+)", text))
    assert sources == {"name", "hint.code", "DELIVERY_DEAD_LETTER"}, sources
    return names


def security_alert_names() -> set[str]:
    """The names security.py passes to _candidate, the one place it builds a Candidate."""
    text = SECURITY_PY.read_text(encoding="utf-8")
    names = re.findall(r'\b_candidate\(\s*"(\w+)"', text)
    calls = re.findall(r"\b_candidate\(", text)
    assert len(calls) == len(names) + 1, "a _candidate call without a literal name"  # + 1: its definition
    assert len(re.findall(r"\bCandidate\(", text)) == 1 and "name=alertname" in text
    return set(names)


def alert_names() -> set[str]:
    return slo_alert_names() | condition_alert_names() | security_alert_names()


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> list[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return [github_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M)]


def test_the_scan_finds_every_kind_of_alert() -> None:
    assert slo_alert_names() == {
        "success_rate_low",
        "failure_rate_high",
        "dead_letter_rate_high",
        "retry_rate_high",
        "actionable_failure_rate_high",
        "failure_spike",
    }
    assert condition_alert_names() == {
        "dead_letter_surge",
        "event_volume_spike",
        "failure_kind_recurring",
        "fingerprint_recurring",
        "silent_retry_loop",
        "alert_delivery_dead_letter",
        "release_rollback",
        "group_regressed",
    }
    assert security_alert_names() == {"revoked_key_used", "cross_tenant_attempts", "auth_failure_spike"}


def test_every_alert_name_has_a_runbook_heading_with_its_exact_anchor() -> None:
    anchors = runbook_anchors()
    missing = sorted(alert_names() - set(anchors))
    assert missing == [], f"docs/runbook.md has no heading whose anchor is {missing}"
    # GitHub suffixes a repeated anchor (-1, -2 ...): a second heading of the same name would steal nothing but
    # would mean two entries for one alert.
    repeated = sorted(a for a in alert_names() if anchors.count(a) > 1)
    assert repeated == []


def test_each_alert_entry_sits_under_alerts_and_states_its_response_time() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    alerts = text.split("\n## Alerts\n", 1)
    assert len(alerts) == 2, "docs/runbook.md has no '## Alerts' section"
    entries = dict(re.findall(r"^### (\w+)\n(.*?)(?=^##|\Z)", alerts[1], flags=re.M | re.S))
    for name in alert_names():
        assert name in entries, name
        assert re.search(r"\bP[012]\b", entries[name]) and "respond within" in entries[name], name


def test_the_slug_rule_keeps_underscores() -> None:
    assert github_slug("silent_retry_loop") == "silent_retry_loop"
    assert github_slug("FaultlensScrapeFailing (P0)") == "faultlensscrapefailing-p0"
    assert github_slug("API and CLI") == "api-and-cli"
