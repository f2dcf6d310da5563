"""SLO hints as pure functions: multi-window burn rates, minimum volume, threshold hints, config loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from faultlens.connectors import hints
from faultlens.errors import SloConfigError
from faultlens.triage import slo
from faultlens.triage.counts import Counts
from faultlens.triage.slo import Objective


def burn_windows(**burns: tuple[int, int]) -> dict[str, Counts]:
    """window label -> (total, actionable failures)."""
    return {label: Counts(total=t, failures=a, actionable=a) for label, (t, a) in burns.items()}


BUDGET = 0.01  # a 99% target


def test_critical_when_1h_and_5m_both_burn_fast() -> None:
    windows = burn_windows(**{"1h": (1000, 200), "5m": (100, 20)})  # both 20x
    rule, long_burn, short_burn = slo.judge_burn(windows, budget=BUDGET, min_events=20) or (None, 0, 0)
    assert rule is not None and (rule.level, rule.long, rule.short, rule.factor) == ("critical", "1h", "5m", 14.4)
    assert long_burn == pytest.approx(20) and short_burn == pytest.approx(20)


def test_critical_from_the_6h_30m_pair_when_the_1h_pair_is_below_14_4() -> None:
    windows = burn_windows(**{"1h": (1000, 100), "5m": (100, 10), "6h": (6000, 420), "30m": (500, 40)})
    verdict = slo.judge_burn(windows, budget=BUDGET, min_events=20)
    assert (
        verdict is not None and verdict[0].level == "critical" and (verdict[0].long, verdict[0].short) == ("6h", "30m")
    )
    assert verdict[1] == pytest.approx(7) and verdict[2] == pytest.approx(8)


def test_warn_pairs_and_none() -> None:
    warn_1d = burn_windows(**{"1d": (10_000, 400), "2h": (1000, 35), "6h": (3000, 60), "30m": (300, 3)})
    verdict = slo.judge_burn(warn_1d, budget=BUDGET, min_events=20)
    assert verdict is not None and (verdict[0].level, verdict[0].long) == ("warn", "1d")
    warn_3d = burn_windows(**{"3d": (30_000, 360), "6h": (3000, 33), "1d": (10_000, 120), "2h": (1000, 12)})
    verdict = slo.judge_burn(warn_3d, budget=BUDGET, min_events=20)
    assert verdict is not None and (verdict[0].level, verdict[0].long) == ("warn", "3d")
    assert verdict[1] == pytest.approx(1.2)
    calm = burn_windows(**{k: (1000, 5) for k in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")})
    assert slo.judge_burn(calm, budget=BUDGET, min_events=20) is None


def test_the_short_window_must_agree_so_a_recovered_incident_stops_paging() -> None:
    windows = burn_windows(
        **{
            "1h": (1000, 300),
            "5m": (100, 0),
            "6h": (6000, 300),
            "30m": (500, 0),
            "1d": (20_000, 300),
            "2h": (2000, 0),
            "3d": (60_000, 300),
        }
    )
    assert slo.judge_burn(windows, budget=BUDGET, min_events=20) is None


def test_minimum_volume_keeps_one_failure_from_paging() -> None:
    one_of_three = burn_windows(
        **{"1h": (3, 1), "5m": (3, 1), "6h": (3, 1), "30m": (3, 1), "1d": (3, 1), "2h": (3, 1), "3d": (3, 1)}
    )  # 33x everywhere, but 3 events
    assert slo.judge_burn(one_of_three, budget=BUDGET, min_events=20) is None
    assert slo.judge_burn(one_of_three, budget=BUDGET, min_events=3) is not None
    assert (
        slo.threshold_hints("svc", Counts(total=3, success=1, failures=2, dead_letter=2), Objective(), window="7d")
        == []
    )


def test_burn_hint_fields() -> None:
    hint = slo.burn_hint("billing", burn_windows(**{"1h": (1000, 200), "5m": (100, 20)}), Objective())
    assert hint is not None
    assert (hint.code, hint.level, hint.source, hint.threshold, hint.window) == (
        "actionable_failure_rate_high",
        "critical",
        "billing",
        14.4,
        "1h/5m",
    )
    assert hint.observed == pytest.approx(20) and "1%" in hint.message and "20.0x" in hint.message


def test_threshold_hints_levels() -> None:
    o = Objective(success_rate_min=0.9, dead_letter_rate_max=0.05, retry_rate_max=0.2, failure_rate_max=0.2)
    counts = Counts(total=100, success=85, failures=15, dead_letter=6, retry=1)
    hints = {h.code: h for h in slo.threshold_hints("doc_sync", counts, o, window="7d")}
    assert set(hints) == {"success_rate_low", "dead_letter_rate_high"}
    assert (hints["success_rate_low"].level, hints["success_rate_low"].observed) == ("warn", 0.85)
    assert (hints["dead_letter_rate_high"].level, hints["dead_letter_rate_high"].threshold) == ("warn", 0.05)
    bad = Counts(total=100, success=70, failures=30, dead_letter=11, retry=45)
    levels = {h.code: h.level for h in slo.threshold_hints("doc_sync", bad, o, window="7d")}
    assert levels == {
        "success_rate_low": "critical",
        "failure_rate_high": "warn",
        "dead_letter_rate_high": "critical",
        "retry_rate_high": "critical",
    }


def test_category_dominant_needs_share_and_volume() -> None:
    o = Objective(category_min_failures=50, category_share_max=0.6)
    many = Counts(total=1000, success=900, failures=100, categories={"authorization": 70, "data_error": 30})
    hints = slo.threshold_hints("doc_sync", many, o, window="7d")
    assert [(h.code, h.level, h.observed) for h in hints] == [("category_dominant", "info", 0.7)]
    assert "authorization" in hints[0].message
    few = Counts(total=1000, success=960, failures=40, categories={"authorization": 40})
    assert slo.threshold_hints("doc_sync", few, o, window="7d") == []
    balanced = Counts(total=1000, success=900, failures=100, categories={"authorization": 55, "data_error": 45})
    assert slo.threshold_hints("doc_sync", balanced, o, window="7d") == []


def test_failure_spike_against_the_window_baseline() -> None:
    o = Objective(spike_factor=3, spike_min_failures=10)
    baseline = Counts(total=10_000, failures=200)  # 2%
    spike = slo.spike_hint("api", baseline, Counts(total=100, failures=12), o, window="7d")
    assert spike is not None and (spike.code, spike.level, spike.window) == ("failure_spike", "critical", "15m")
    assert spike.observed == pytest.approx(0.12) and spike.threshold == pytest.approx(0.06)
    warn = slo.spike_hint("api", baseline, Counts(total=200, failures=14), o, window="7d")  # 7%: 3.5x
    assert warn is not None and warn.level == "warn" and "3.5x" in warn.message
    assert slo.spike_hint("api", baseline, Counts(total=1000, failures=40), o, window="7d") is None  # 4% < 6%
    assert slo.spike_hint("api", baseline, Counts(total=20, failures=9), o, window="7d") is None  # too few


def test_summarize_status_is_the_worst_level_and_level_filters_the_rest() -> None:
    hints = [
        slo.Hint("a", "info", "s", 0.7, 0.6, "m", "7d"),
        slo.Hint("b", "warn", "s", 0.1, 0.05, "m", "7d"),
        slo.Hint("b", "warn", "t", 0.1, 0.05, "m", "7d"),
    ]
    everything = slo.summarize(hints)
    assert (everything["status"], everything["total"], everything["by_code"]) == ("warn", 3, {"a": 1, "b": 2})
    warn = slo.summarize(hints, level="warn")
    assert (warn["status"], warn["total"], warn["by_code"]) == ("warn", 2, {"b": 2})
    critical = slo.summarize(hints, level="critical")
    assert (critical["status"], critical["total"], critical["hints"]) == ("warn", 0, [])
    assert slo.summarize([hints[0]])["status"] == "ok"
    assert slo.summarize([])["status"] == "ok"


def test_config_overrides_merge_onto_the_default(tmp_path: Path) -> None:
    yaml_file = tmp_path / "slo.yaml"
    yaml_file.write_text(
        "default:\n  actionable_target: 0.999\n  min_events: 50\n"
        "sources:\n  doc_sync:\n    dead_letter_rate_max: 0.01\n"
    )
    config = slo.load_config(yaml_file)
    doc_sync = config.for_source("doc_sync")
    assert (doc_sync.dead_letter_rate_max, doc_sync.actionable_target, doc_sync.min_events) == (0.01, 0.999, 50)
    assert config.for_source("other").dead_letter_rate_max == Objective().dead_letter_rate_max
    assert config.for_source("other").budget == pytest.approx(0.001)
    json_file = tmp_path / "slo.json"
    json_file.write_text('{"sources": {"api": {"success_rate_min": 0.5}}}')
    assert slo.load_config(json_file).for_source("api").success_rate_min == 0.5
    assert slo.load_config(None) == slo.SloConfig()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("default:\n  actionable_target: 1.5\n", "default.actionable_target"),
        ("sources:\n  api:\n    no_such_objective: 1\n", "sources.api.no_such_objective"),
        ("default: [1, 2\n", "not valid YAML"),
    ],
)
def test_a_bad_config_file_is_reported_with_its_path_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    with pytest.raises(SloConfigError) as info:
        slo.load_config(path)
    assert fragment in info.value.message and str(path) in info.value.message
    assert info.value.code == "invalid_slo_file"


def test_the_engine_judges_a_value_past_its_limit() -> None:
    assert slo.level_past(0.2, 0.2) is None  # at the limit is within it
    assert slo.level_past(0.3, 0.2) == "warn"
    assert slo.level_past(0.4, 0.2) == "critical"  # twice the limit
    # A caller may cap where critical starts: a 60% limit can still page at 100%.
    assert slo.level_past(1.0, 0.6) == "warn" and slo.level_past(1.0, 0.6, critical_at=1.0) == "critical"


def test_one_spike_rule_for_rates_and_for_counts_per_window() -> None:
    # Rates (per-source hints): 12% against a 2% baseline at factor 3 -> limit 6%, critical from 12%.
    for now, level in ((0.12, "critical"), (0.07, "warn")):
        verdict = slo.judge_spike(now, 0.02, factor=3)
        assert verdict is not None and verdict[0] == level and verdict[1] == pytest.approx(0.06)
    assert slo.judge_spike(0.05, 0.02, factor=3) is None
    # Counts per spike window (task hints): the floor holds when the baseline is quiet.
    assert slo.judge_spike(4, 0.5, factor=3, floor=5) is None
    assert slo.judge_spike(5, 0.5, factor=3, floor=5) == ("warn", 5)
    assert slo.judge_spike(12, 0.5, factor=3, floor=5) == ("critical", 5)
    assert slo.judge_spike(9, 3.0, factor=3, floor=5) == ("warn", 9)
    # Nothing spikes that is not above its baseline, even with a zero floor and factor.
    assert slo.judge_spike(0.0, 0.0, factor=3) is None


def test_the_dominant_category_and_its_ties() -> None:
    assert slo.dominant({"data_error": 3, "authorization": 7}) == ("authorization", 7)
    assert slo.dominant({"service_timeout": 5, "authorization": 5}) == ("authorization", 5)  # first by name


def test_one_spike_window_for_every_hint_source() -> None:
    assert slo.RECENT_WINDOWS_MS[slo.SPIKE_WINDOW] == slo.SPIKE_WINDOW_MS == 15 * 60_000
    assert slo.SPIKE_WINDOW_TEXT == "the last 15 minutes"
    assert not [name for name in vars(hints) if "SPIKE" in name]  # task hints keep no window of their own
