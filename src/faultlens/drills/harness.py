"""The drill harness: configuration, the context a drill runs in (servers, sinks, checks, evidence) and the runner."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from faultlens.drills.sink import Sink
from faultlens.drills.waits import WaitTimeout, poll_until

T = TypeVar("T")
Database = Literal["sqlite", "postgresql"]
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
# Every key an API key can hold: operator, because the process-wide /metrics series are served to operator keys only.
ALL_SCOPES = ("admin", "ingest", "read", "operator")
HTTP_TIMEOUT_S = 10.0
_SERVER_START_S = 120.0


def _pg_admin_default() -> str:
    return os.environ.get("FAULTLENS_DRILL_PG_URL", DEFAULT_PG_ADMIN_URL)


def _redis_default() -> str:
    return os.environ.get("FAULTLENS_DRILL_REDIS_URL", DEFAULT_REDIS_URL)


def _temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="faultlens-drill-"))


@dataclass
class DrillConfig:
    """How drills run. time_scale shortens every wait and outage (fast mode: 0.1); see seconds()."""

    time_scale: float = 1.0
    database: Database = "sqlite"
    pg_admin_url: str = field(default_factory=_pg_admin_default)
    redis_url: str = field(default_factory=_redis_default)
    work_dir: Path = field(default_factory=_temp_dir)
    python: str = sys.executable
    # Settings every server of every drill gets (a drill's own settings win), e.g. {"obs_metrics_strict": True}.
    server_settings: dict[str, Any] = field(default_factory=dict)

    def seconds(self, x: float, *, at_least: float = 0.0) -> float:
        """A drill's duration of `x` seconds at this time scale (60 -> 6.0 in fast mode), never below at_least."""
        return max(x * self.time_scale, at_least)

    @property
    def fast(self) -> bool:
        return self.time_scale < 1.0


@dataclass(frozen=True)
class Drill:
    """A drill: its name (the CLI's), a title, one sentence of what evidence it proves, and run(ctx)."""

    name: str
    title: str
    shows: str
    run: Callable[[DrillContext], None]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


class DrillError(RuntimeError):
    """The harness could not set something up (a server that did not start, a database not created)."""


# --- databases -------------------------------------------------------------------------------------------------------
def _pg_url(admin_url: str, name: str) -> str:
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def create_pg_database(admin_url: str, name: str) -> str:
    """A new empty database `name` on admin_url's server; its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return _pg_url(admin_url, name)


def drop_pg_database(admin_url: str, name: str) -> None:
    """Drop `name`, ending any session still on it (a killed server's connections linger until the kernel says)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(url: str, *, tenant: str, scopes: Iterable[str] = ALL_SCOPES) -> str:
    """Bring the schema at `url` to head and create an API key for `tenant`; the key's secret."""
    from faultlens.store import keys
    from faultlens.store.db import create_db_engine, migrate

    engine = create_db_engine(url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            _, secret = keys.create_key(conn, tenant=tenant, scopes=list(scopes), name="drill")
    finally:
        engine.dispose()
    return secret


# --- metrics and logs ----------------------------------------------------------------------------------------------
def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{a="x",b="y"}': value} (labels sorted; bare name without labels). The _created
    samples of counters are left out: they are timestamps, not counts."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out[series_key(sample.name, sample.labels)] = float(sample.value)
    return out


def series_key(name: str, labels: dict[str, str] | None = None) -> str:
    """The key parse_metrics uses for one series: name{k="v",...} with labels sorted, or the bare name."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def metric_delta(before: dict[str, float], after: dict[str, float], prefix: str = "") -> dict[str, float]:
    """after - before for every series starting with `prefix` that changed (a series new in `after` counts from 0)."""
    out: dict[str, float] = {}
    for key, value in after.items():
        if not key.startswith(prefix):
            continue
        delta = value - before.get(key, 0.0)
        if delta != 0:
            out[key] = delta
    return out


def metric_sum(metrics: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s series whose labels include all of `labels` (e.g. reason="db_busy")."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        parts = rest.rstrip("}").split(",") if rest else []
        if all(w in parts for w in wanted):
            total += value
    return total


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON object lines of a log file (other lines, e.g. a traceback printed before logging was set up, are
    returned as {"msg": line, "raw": True})."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            out.append({"msg": line, "raw": True})
            continue
        out.append(parsed if isinstance(parsed, dict) else {"msg": line, "raw": True})
    return out


def new_trace_id() -> str:
    return secrets.token_hex(16)


def traceparent(trace_id: str | None = None) -> str:
    """A W3C traceparent header for a new span of `trace_id` (a new trace when None)."""
    return f"00-{trace_id or new_trace_id()}-{secrets.token_hex(8)}-01"


_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id_of(response: httpx.Response) -> str | None:
    """The trace id a response names: its traceparent header, an X-Trace-Id header, or an error body's trace_id."""
    found = _TRACEPARENT.match(response.headers.get("traceparent", "").strip().lower())
    if found:
        return found.group(1)
    if response.headers.get("x-trace-id"):
        return response.headers["x-trace-id"]
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        for holder in (body, body.get("error")):
            if isinstance(holder, dict) and isinstance(holder.get("trace_id"), str):
                return str(holder["trace_id"])
    return None


# --- servers -------------------------------------------------------------------------------------------------------
def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A `faultlens serve` subprocess on its own port; restart() keeps the port and the database."""

    name: str
    db_url: str
    key: str
    env: dict[str, str]
    log_dir: Path
    python: str = sys.executable
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_paths: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise DrillError(f"server {self.name} was never started")
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        """The log file of the current (latest) start."""
        if not self.log_paths:
            raise DrillError(f"server {self.name} was never started")
        return self.log_paths[-1]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = _SERVER_START_S) -> Server:
        """Spawn the process (stderr and stdout to a new log file) and wait until /healthz answers 200."""
        self.starts += 1
        path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.log_paths.append(path)
        with open(path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "faultlens.cli", "serve", "--port", str(self.port), "--db", self.db_url],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a drill's kill -9 or Ctrl-C of the runner never reaches the wrong process.
                start_new_session=True,
            )
        self.wait_healthy(timeout_s)
        return self

    def wait_healthy(self, timeout_s: float = _SERVER_START_S) -> None:
        # One client for every poll: a client of its own per poll spent about 20 ms of CPU on its TLS context, ten
        # times a second, beside the server starting.
        with httpx.Client(timeout=2) as client:

            def healthy() -> bool:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise DrillError(f"server {self.name} exited {code} while starting: {self.log_tail()}")
                try:
                    return client.get(f"{self.url}/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            try:
                poll_until(healthy, timeout_s=timeout_s, what=f"server {self.name} answering /healthz", every_s=0.1)
            except WaitTimeout as exc:
                self.kill9()
                raise DrillError(f"{exc}; log: {self.log_tail()}") from None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except (OSError, DrillError):
            return ""

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush, like a crash or an OOM kill."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit (SIGKILL after 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout_s: float = _SERVER_START_S) -> Server:
        """Stop the process if it still runs, then start it again: same port, database, key and settings."""
        self.stop()
        return self.start(timeout_s)

    # --- HTTP ----------------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """An HTTP call with the drill's key (headers given are merged over it) and a 10 s deadline."""
        headers = {**self.headers, **(kw.pop("headers", None) or {})}
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return httpx.request(method, f"{self.url}{path}", headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def metrics(self) -> dict[str, float]:
        """A /metrics scrape (process-wide series included: the key has operator scope), parsed by parse_metrics."""
        answer = self.get("/metrics")
        answer.raise_for_status()
        return parse_metrics(answer.text)

    def logs(self, *, start: int | None = None) -> list[dict[str, Any]]:
        """The JSON log lines written so far, over every start (or only start number `start`, from 1). Each line
        gets `_start`: the number of the start that wrote it."""
        out: list[dict[str, Any]] = []
        for number, path in enumerate(self.log_paths, start=1):
            if start is not None and number != start:
                continue
            for line in read_json_lines(path):
                line["_start"] = number
                out.append(line)
        return out


# --- the context -----------------------------------------------------------------------------------------------------
class DrillContext:
    """What a drill works with: the config, its servers and sinks, and the evidence it records. Everything it
    starts or creates is torn down by close(), which the runner calls even when the drill raised."""

    def __init__(self, cfg: DrillConfig, *, name: str = "drill") -> None:
        self.cfg = cfg
        self.name = name
        self.started = time.monotonic()
        self.work_dir = cfg.work_dir / f"{name}-{secrets.token_hex(3)}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.timeline: list[tuple[int, str]] = []
        self.checks: list[Check] = []
        self.lost = 0
        self.trace_ids: list[str] = []
        self.log_lines: list[dict[str, Any]] = []
        self.metric_deltas: dict[str, float] = {}
        self.servers: list[Server] = []
        self.sinks: list[Sink] = []
        self._cleanups: list[Callable[[], None]] = []
        self._databases = 0

    # --- evidence ------------------------------------------------------------------------------------------------
    def elapsed_ms(self) -> int:
        """Milliseconds since the drill started (the timeline's clock)."""
        return int((time.monotonic() - self.started) * 1000)

    def note(self, text: str) -> None:
        self.timeline.append((self.elapsed_ms(), text))

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record an expectation; a failed one fails the drill but does not stop it. Returns ok."""
        self.checks.append(Check(name, bool(ok), detail))
        self.note(f"{'ok' if ok else 'FAILED'}: {name}{f' ({detail})' if detail else ''}")
        return bool(ok)

    def add_trace_id(self, trace_id: str | None) -> None:
        if trace_id and trace_id not in self.trace_ids:
            self.trace_ids.append(trace_id)

    def add_log_lines(self, lines: Iterable[dict[str, Any]]) -> None:
        self.log_lines.extend(lines)

    def record_deltas(
        self,
        before: dict[str, float],
        after: dict[str, float],
        prefixes: Iterable[str] = ("faultlens_",),
        *,
        buckets: bool = False,
    ) -> dict[str, float]:
        """Add the changed series under each prefix to metric_deltas (summed with earlier ones); returns them.
        Histogram _bucket series are left out unless `buckets` (their _count and _sum say enough in a report)."""
        found: dict[str, float] = {}
        for prefix in prefixes:
            found.update(metric_delta(before, after, prefix))
        if not buckets:
            found = {k: v for k, v in found.items() if not k.partition("{")[0].endswith("_bucket")}
        for key, value in found.items():
            self.metric_deltas[key] = self.metric_deltas.get(key, 0.0) + value
        return found

    # --- waiting -------------------------------------------------------------------------------------------------
    def wait_until(self, condition: Callable[[], T | None], timeout_s: float, what: str, *, every_s: float = 0.05) -> T:
        """Poll `condition` until truthy and return its value; WaitTimeout (the drill fails with it) after the
        deadline. timeout_s is wall seconds: scale it with cfg.seconds() where the drill's own durations scale."""
        return poll_until(condition, timeout_s=timeout_s, what=what, every_s=every_s)

    def try_wait(self, condition: Callable[[], T | None], timeout_s: float, *, every_s: float = 0.05) -> T | None:
        """wait_until that returns None at the deadline instead of raising."""
        try:
            return poll_until(condition, timeout_s=timeout_s, what="", every_s=every_s)
        except WaitTimeout:
            return None

    # --- resources -----------------------------------------------------------------------------------------------
    def on_cleanup(self, fn: Callable[[], None]) -> None:
        """Run `fn` at close() (last registered runs first)."""
        self._cleanups.append(fn)

    def new_database(self) -> str:
        """A fresh empty database of cfg.database (a SQLite file under work_dir, or a new PostgreSQL database that
        close() drops); its URL. start_server migrates it."""
        self._databases += 1
        if self.cfg.database == "sqlite":
            return f"sqlite:///{self.work_dir / f'db{self._databases}.sqlite3'}"
        name = f"faultlens_drill_{re.sub(r'[^a-z0-9]', '_', self.name.lower())[:20]}_{secrets.token_hex(4)}"
        url = create_pg_database(self.cfg.pg_admin_url, name)
        self.on_cleanup(lambda: drop_pg_database(self.cfg.pg_admin_url, name))
        return url

    def start_server(
        self,
        *,
        name: str | None = None,
        same_database_as: Server | None = None,
        db_url: str | None = None,
        tenant: str = "drill",
        start: bool = True,
        **settings: Any,
    ) -> Server:
        """A faultlens server process with FAULTLENS_<KEY>=value for each setting (JSON logs, INFO by default).

        Database: `same_database_as` shares another server's database and key (a second runner on one database);
        else `db_url` (migrated, a key created), else a new one from new_database(). Returns once /healthz
        answers (start=False: created, not started; call .start())."""
        if same_database_as is not None:
            url, key = same_database_as.db_url, same_database_as.key
        else:
            url = db_url or self.new_database()
            key = prepare_database(url, tenant=tenant)
        # The server sees only the settings the drill gives: none of the runner's own FAULTLENS_* leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLENS_")}
        env.update({"FAULTLENS_LOG_FORMAT": "json", "FAULTLENS_LOG_LEVEL": "INFO", "FAULTLENS_DATABASE_URL": url})
        env.update(
            {f"FAULTLENS_{k.upper()}": _env_value(v) for k, v in {**self.cfg.server_settings, **settings}.items()}
        )
        server = Server(
            name=name or f"server{len(self.servers) + 1}",
            db_url=url,
            key=key,
            env=env,
            log_dir=self.work_dir,
            python=self.cfg.python,
        )
        self.servers.append(server)
        if start:
            server.start()
            self.note(f"{server.name} up on port {server.port} (pid {server.pid})")
        return server

    def sink(self) -> Sink:
        """A started webhook sink, stopped at close()."""
        found = Sink().start()
        self.sinks.append(found)
        return found

    def redis_prefix(self) -> str:
        """A unique Redis key prefix on cfg.redis_url; close() deletes every key under it."""
        prefix = f"faultlens-drill:{self.name}:{secrets.token_hex(4)}"
        self.on_cleanup(lambda: delete_redis_prefix(self.cfg.redis_url, prefix))
        return prefix

    def close(self) -> list[str]:
        """Stop every server and sink, run the cleanups; the errors met (each step runs regardless)."""
        errors: list[str] = []
        steps: list[Callable[[], None]] = [s.stop for s in self.servers]
        steps += [s.stop for s in self.sinks]
        steps += list(reversed(self._cleanups))
        for step in steps:
            try:
                step()
            except Exception as exc:  # one failed cleanup must not skip the others
                errors.append(f"{type(exc).__name__}: {exc}")
        return errors


def delete_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        batch = list(client.scan_iter(match=f"{prefix}*", count=500))
        if batch:
            client.delete(*batch)
    finally:
        client.close()


# --- the runner ------------------------------------------------------------------------------------------------------
@dataclass
class DrillResult:
    name: str
    title: str
    shows: str
    verdict: Literal["pass", "fail"]
    checks: list[Check]
    timeline: list[tuple[int, str]]
    metric_deltas: dict[str, float]
    trace_ids: list[str]
    log_lines: list[dict[str, Any]]
    lost: int
    duration_s: float
    time_scale: float
    database: str
    work_dir: str
    id: str = field(default_factory=lambda: f"drill-{secrets.token_hex(6)}")

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def run_drill(drill: Drill, cfg: DrillConfig) -> DrillResult:
    """Run one drill and tear everything down; never raises for what the drill does (an exception is a failed
    check "drill raised"). Pass = at least one check, all ok, nothing lost, and a clean teardown."""
    ctx = DrillContext(cfg, name=drill.name)
    ctx.note(f"drill {drill.name} starts (time scale {cfg.time_scale:g}, {cfg.database})")
    try:
        drill.run(ctx)
    except Exception as exc:  # a drill's failure is its verdict, not the runner's crash
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        ctx.check("drill raised", False, f"{type(exc).__name__}: {exc}{where}")
    finally:
        errors = ctx.close()
    if errors:
        ctx.check("teardown", False, "; ".join(errors))
    ctx.check("nothing lost", ctx.lost == 0, f"lost {ctx.lost}")
    ok = len(ctx.checks) > 1 and all(c.ok for c in ctx.checks)
    ctx.note(f"drill {drill.name} ends: {'pass' if ok else 'fail'}")
    return DrillResult(
        name=drill.name,
        title=drill.title,
        shows=drill.shows,
        verdict="pass" if ok else "fail",
        checks=ctx.checks,
        timeline=ctx.timeline,
        metric_deltas=dict(sorted(ctx.metric_deltas.items())),
        trace_ids=ctx.trace_ids,
        log_lines=ctx.log_lines,
        lost=ctx.lost,
        duration_s=round(time.monotonic() - ctx.started, 3),
        time_scale=cfg.time_scale,
        database=cfg.database,
        work_dir=str(ctx.work_dir),
    )


def run_all(
    names: Iterable[str], cfg: DrillConfig, *, on_result: Callable[[DrillResult], None] | None = None
) -> list[DrillResult]:
    """Run the named drills (registry order as given) one after another."""
    from faultlens.drills.registry import get

    results: list[DrillResult] = []
    for name in names:
        result = run_drill(get(name), cfg)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
