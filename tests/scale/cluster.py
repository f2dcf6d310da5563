"""A faultlens cluster on one machine: N `faultlens serve` replicas on one PostgreSQL database behind HAProxy.

Used by the scale test (tests/scale) and bench/scale.py. Each replica is a real process started with FAULTLENS_*
settings and killed with SIGKILL; HAProxy (the Debian package) balances round-robin, health-checks /healthz and
moves a request whose connection failed to another replica.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
CLI = [sys.executable, "-m", "faultlens.cli"]
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)

# Every interval short, so a lease lapses in seconds and each periodic duty runs many times in a minute.
FAST_ENV = {
    "FAULTLENS_LEASE_TTL_S": "3",
    "FAULTLENS_ALERT_EVAL_INTERVAL_S": "1",
    "FAULTLENS_ALERT_DELIVERY_INTERVAL_S": "1",
    "FAULTLENS_TASK_SYNC_INTERVAL_S": "2",
    "FAULTLENS_FINGERPRINT_SAVE_INTERVAL_S": "1",
    "FAULTLENS_FINGERPRINT_FOLLOW_INTERVAL_S": "1",
    "FAULTLENS_API_USAGE_FLUSH_INTERVAL_S": "1",
    "FAULTLENS_LOG_FORMAT": "json",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], T | None], *, timeout_s: float, what: str, every_s: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; AssertionError naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(every_s)


def cli(db_url: str, *args: str) -> str:
    """Run a `faultlens` command against `db_url`; its standard output."""
    done = subprocess.run(
        [*CLI, *args, "--db", db_url], capture_output=True, text=True, timeout=300, check=False, env=os.environ
    )
    if done.returncode != 0:
        raise RuntimeError(f"faultlens {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def create_key(db_url: str, tenant: str, *scopes: str) -> str:
    """A new API key's secret (`faultlens keys create`)."""
    flags = [part for scope in scopes for part in ("--scope", scope)]
    return str(json.loads(cli(db_url, "keys", "create", "--tenant", tenant, *flags))["key"])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Replica:
    """One `faultlens serve` process on its own port; restart() keeps the port, so the balancer's list holds."""

    number: int
    db_url: str
    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"replica{self.number}.{self.starts}.log", "wb")  # noqa: SIM115 (the child owns it)
        with log:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port), "--db", self.db_url],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_up(self, timeout_s: float = 90) -> None:
        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"replica {self.number} exited {self.proc.returncode}; see {self.log_dir}")
            return _answers(f"{self.url}/healthz")

        wait_for(up, timeout_s=timeout_s, what=f"replica {self.number} answering /healthz", every_s=0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> None:
        self.spawn()
        self.wait_up()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def haproxy_config(port: int, replicas: list[Replica]) -> str:
    """Round-robin over the replicas; a replica is out after 2 failed /healthz checks 0.5 s apart and back after 2
    good ones; a request whose connection failed or got no answer is tried again on another replica."""
    servers = "\n".join(f"    server r{r.number} 127.0.0.1:{r.port}" for r in replicas)
    return f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout queue 10s
    timeout check 1s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend api
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server check inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
{servers}
"""


@dataclass
class HAProxy:
    replicas: list[Replica]
    work_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if HAPROXY is None:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        config = self.work_dir / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.replicas))
        subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], check=True, timeout=30)
        with open(self.work_dir / "haproxy.log", "wb") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _answers(f"{self.url}/healthz"), timeout_s=30, what="HAProxy answering", every_s=0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Cluster:
    replicas: list[Replica]
    balancer: HAProxy

    @property
    def url(self) -> str:
        return self.balancer.url

    def by_pid(self, pid: int) -> Replica | None:
        return next((r for r in self.replicas if r.proc is not None and r.pid == pid), None)


@contextmanager
def cluster(db_url: str, work_dir: Path, *, replicas: int = 3, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """`replicas` servers on `db_url` (migrated beforehand) behind HAProxy; everything stopped on exit."""
    work_dir.mkdir(parents=True, exist_ok=True)
    members = [Replica(n, db_url, {**FAST_ENV, **(env or {})}, work_dir) for n in range(1, replicas + 1)]
    balancer = HAProxy(members, work_dir)
    try:
        for r in members:
            r.spawn()
        for r in members:
            r.wait_up()
        balancer.start()
        yield Cluster(members, balancer)
    finally:
        balancer.stop()
        for r in members:
            r.stop()


def scratch_events(prefix: str, count: int, *, source: str = "scale-sender") -> list[dict[str, Any]]:
    """`count` failures with ids prefix-0 .. prefix-(count-1), occurring now, in a few message shapes."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    shapes = (
        "upstream answered 502 for order {n}",
        "connection reset by peer while charging card {n}",
        "timeout after 3000 ms calling inventory for sku {n}",
        "KeyError: 'customer_{n}' in build_invoice",
    )
    return [
        {
            "id": f"{prefix}-{i}",
            "source": source,
            "operation": "POST /orders",
            "status": "failure",
            "occurred_at": at,
            "http_status": 502 if i % 2 else 500,
            "error_message": shapes[i % len(shapes)].format(n=i),
        }
        for i in range(count)
    ]
