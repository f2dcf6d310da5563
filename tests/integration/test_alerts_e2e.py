"""Alerts end to end: a real `faultlens serve` process evaluates and delivers to a real receiver that is down, hangs
and comes back, across kill -9 of faultlens; and the real Alertmanager receives faultlens' alerts on its API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from faultlens.store.tables import alert_notifications
from tests.alert_receiver import AlertReceiver
from tests.conftest import make_services, missing_service
from tests.helpers import ago, event

_CLI = [sys.executable, "-m", "faultlens.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(condition: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def _routing(tmp_path: Path, receivers: list[dict[str, Any]], *, window: str = "4s") -> Path:
    """No pending delay, no group wait, fast backoff: each step of the story is seconds apart."""
    doc = {
        "version": 1,
        "for": {"P0": "0s", "P1": "0s", "P2": "0s"},
        "defaults": {"group_wait": "0s", "repeat_interval": "4h"},
        "receivers": receivers,
        # The retry loop clears (and the alert resolves) once its retries are older than this.
        "conditions": {"recurring_window": window},
    }
    path = tmp_path / "routing.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


class Server:
    """`faultlens serve` on a SQLite file with fast alerting intervals; kill() is kill -9."""

    def __init__(self, db: Path, routing: Path) -> None:
        self.db, self.routing = db, routing
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "FAULTLENS_ALERT_ROUTING_FILE": str(self.routing),
            "FAULTLENS_ALERT_EVAL_INTERVAL_S": "0.3",
            "FAULTLENS_ALERT_DELIVERY_INTERVAL_S": "0.1",
            "FAULTLENS_ALERT_DELIVERY_BACKOFF_BASE_S": "0.2",
            "FAULTLENS_ALERT_DELIVERY_BACKOFF_MAX_S": "0.5",
            "FAULTLENS_LEASE_TTL_S": "1",
            "FAULTLENS_TASK_SYNC_INTERVAL_S": "0",
            "FAULTLENS_LOG_FORMAT": "json",
        }
        self.proc = subprocess.Popen(
            [*_CLI, "serve", "--port", str(self.port), "--db", f"sqlite:///{self.db}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return True
            except OSError:
                return False

        _wait(up, timeout_s=30, what="faultlens serve answering")

    def ingest(self, events: list[dict[str, Any]]) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/events",
            data=json.dumps(events).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc is None or self.proc.poll() is not None:
            return ""
        self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return err.decode(errors="replace")


def _loop_events(tag: str) -> list[dict[str, Any]]:
    """Retries past max_attempts with one reason: the silent retry loop (P1), occurring now."""
    return [
        event(
            id=f"{tag}-{i}",
            source="billing-worker",
            item_type="task",
            status="retry",
            operation="charge-card",
            attempt=4 + i,
            max_attempts=3,
            error_message="card processor answered 503",
            occurred_at=ago(seconds=0),
        )
        for i in range(2)
    ]


def _outbox(db: Path) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(alert_notifications))]
    finally:
        engine.dispose()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    with AlertReceiver() as r:
        yield r


def _by_kind(receiver: AlertReceiver) -> dict[str, set[str]]:
    """Kind -> idempotency keys under which that kind's notifications were accepted."""
    out: dict[str, set[str]] = {}
    for call in receiver.accepted():
        for alert in call.body["alerts"]:
            out.setdefault(alert["status"], set()).add(call.idempotency_key or "")
    return out


def test_down_receiver_and_kill_9_lose_nothing_and_send_nothing_twice(tmp_path: Path, receiver: AlertReceiver) -> None:
    db = tmp_path / "fl.db"
    server = Server(db, _routing(tmp_path, [{"name": "hook", "type": "webhook", "url": receiver.url, "timeout": "2s"}]))
    receiver.down()
    server.start()
    try:
        server.ingest(_loop_events("a"))
        # The state change wrote its notification; the receiver is down, so a try failed and another is scheduled.
        _wait(
            lambda: [n for n in _outbox(db) if n["kind"] == "firing" and n["attempts"] >= 1],
            timeout_s=20,
            what="a failed try of the firing notification",
        )
        server.kill()
        receiver.up()
        server.start()
        _wait(lambda: "resolved" in _by_kind(receiver), timeout_s=30, what="the resolved notification delivered")
        # Nothing more arrives: no second copy under a new key.
        time.sleep(1.0)
    finally:
        log = server.stop()
    kinds = _by_kind(receiver)
    assert set(kinds) == {"firing", "resolved"}
    assert all(len(keys) == 1 for keys in kinds.values()), kinds
    ids = [i for call in receiver.accepted() for i in call.notification_ids]
    assert len(ids) == len(set(ids)) == 2
    rows = _outbox(db)
    assert sorted(n["state"] for n in rows) == ["delivered", "delivered"]
    assert receiver.url not in log  # the receiver is named in logs, never its URL
    firing = next(c for c in receiver.accepted() if c.body["alerts"][0]["status"] == "firing")
    alert = firing.body["alerts"][0]
    assert firing.body["version"] == "faultlens.alert.v1"
    assert alert["labels"]["alertname"] == "silent_retry_loop" and alert["level"] == "P1"
    assert alert["annotations"]["owner"] == "unassigned"
    assert alert["annotations"]["runbook_url"].endswith("#silent_retry_loop")


def test_a_send_cut_by_kill_9_is_sent_again_under_the_same_key(tmp_path: Path, receiver: AlertReceiver) -> None:
    db = tmp_path / "fl.db"
    server = Server(db, _routing(tmp_path, [{"name": "hook", "type": "webhook", "url": receiver.url}], window="1h"))
    receiver.hang(60)
    server.start()
    try:
        server.ingest(_loop_events("b"))
        [held] = _wait(lambda: receiver.received, timeout_s=20, what="the firing notification reaching the receiver")
        server.kill()  # while the receiver holds the request: faultlens never learnt whether it arrived
        receiver.accept()
        server.start()
        _wait(lambda: receiver.accepted(), timeout_s=20, what="the notification sent again")
    finally:
        server.stop()
    [again] = receiver.accepted()
    assert again.idempotency_key == held.idempotency_key
    assert again.notification_ids == held.notification_ids
    assert [n["state"] for n in _outbox(db)] == ["delivered"]


ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if ALERTMANAGER is None:
        missing_service("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    port = _free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n")
    proc = subprocess.Popen(
        [
            str(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait(ready, timeout_s=30, what="Alertmanager ready")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_real_alertmanager_holds_faultlens_alerts_with_labels_and_annotations(
    tmp_path: Path, alertmanager: str
) -> None:
    routing = _routing(tmp_path, [{"name": "am", "type": "alertmanager_api", "url": alertmanager}], window="1h")
    services = make_services(f"sqlite:///{tmp_path / 'fl.db'}", start_jobs=False, alert_routing_file=routing)
    try:
        services.pipeline.ingest(_loop_events("c"), tenant="default")
        assert services.alerting is not None
        services.alerting.evaluate_once()
        report = services.alerting.deliver_once()
        assert report.delivered == 1, report
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as r:
            held = json.load(r)
    finally:
        services.engine.dispose()
    [alert] = [a for a in held if a["labels"].get("alertname") == "silent_retry_loop"]
    assert alert["labels"]["level"] == "P1"
    assert alert["labels"]["tenant"] == "default"
    assert alert["labels"]["source"] == "billing-worker"
    assert alert["annotations"]["owner"] == "unassigned"
    assert alert["annotations"]["runbook_url"].endswith("#silent_retry_loop")
    assert "max_attempts" in alert["annotations"]["summary"]
    assert alert["status"]["state"] in ("active", "unprocessed")
