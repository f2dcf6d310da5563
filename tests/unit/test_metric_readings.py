"""Readings: /metrics' overview readings kept per tenant for metrics_cache_ttl_s, refreshed in the background."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from faultlens.triage import slo
from faultlens.triage.metrics_collector import Reading, Readings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Counts reads; each reading carries its number in `windows` so a test can tell them apart."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail = False
        self.gate: threading.Event | None = None

    def __call__(self, tenant: str, config: slo.SloConfig) -> Reading:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("database down")
        self.calls.append(tenant)
        marker: Any = {"n": {(): (len(self.calls), 0)}}
        return Reading(config=config, windows=marker, overview=None, active_alerts={})  # type: ignore[arg-type]


def number(reading: Reading) -> int:
    return reading.windows["n"][()][0]


def wait_for(check: Any) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.01)


CONFIG = slo.SloConfig()


def test_a_fresh_reading_is_answered_without_reading_again() -> None:
    reader, clock = Reader(), Clock()
    readings = Readings(reader, ttl_s=10, monotonic=clock)
    assert number(readings.get("a", CONFIG)) == 1
    clock.now += 9.9
    assert number(readings.get("a", CONFIG)) == 1
    assert reader.calls == ["a"]
    assert number(readings.get("b", CONFIG)) == 2  # each tenant has its own reading
    assert reader.calls == ["a", "b"]


def test_a_stale_reading_is_answered_while_a_fresh_one_is_read_in_the_background() -> None:
    reader, clock = Reader(), Clock()
    readings = Readings(reader, ttl_s=10, monotonic=clock)
    readings.get("a", CONFIG)
    clock.now += 15
    reader.gate = threading.Event()  # the background read waits until released
    assert number(readings.get("a", CONFIG)) == 1  # answered at once, not after the read
    assert number(readings.get("a", CONFIG)) == 1  # one refresh at a time
    reader.gate.set()
    wait_for(lambda: "a" not in readings.refreshing)
    assert number(readings.get("a", CONFIG)) == 2
    assert reader.calls == ["a", "a"]


def test_too_old_a_reading_or_another_configuration_is_read_again_at_once() -> None:
    reader, clock = Reader(), Clock()
    readings = Readings(reader, ttl_s=10, monotonic=clock)
    readings.get("a", CONFIG)
    clock.now += 10 * Readings.STALE_TTLS + 1
    assert number(readings.get("a", CONFIG)) == 2
    other = slo.SloConfig.model_validate({"default": {"actionable_target": 0.5}})
    assert other != CONFIG
    assert number(readings.get("a", other)) == 3


def test_a_failed_background_read_keeps_the_last_reading_until_it_ages_out(caplog: pytest.LogCaptureFixture) -> None:
    reader, clock = Reader(), Clock()
    readings = Readings(reader, ttl_s=10, monotonic=clock)
    readings.get("a", CONFIG)
    clock.now += 11
    reader.fail = True
    assert number(readings.get("a", CONFIG)) == 1
    wait_for(lambda: "a" not in readings.refreshing)
    assert "could not be refreshed" in caplog.text
    clock.now += 10 * Readings.STALE_TTLS
    with pytest.raises(RuntimeError):
        readings.get("a", CONFIG)  # the scrape reports the outage (overview_up 0)


def test_zero_reads_every_time() -> None:
    reader = Reader()
    readings = Readings(reader, ttl_s=0)
    for _ in range(3):
        readings.get("a", CONFIG)
    assert reader.calls == ["a", "a", "a"]
