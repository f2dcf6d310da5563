"""Drill `crash_untraced`: kill -9 mid-ingest with no tracing; the pre-crash /metrics scrape and the JSON logs alone
tell what was accepted and that the server restarted, and the clients' re-send with the same ids loses nothing."""

from __future__ import annotations

import re
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from faultlens.drills.harness import Drill, DrillContext, Server, metric_sum, parse_metrics
from faultlens.drills.scenarios._evidence import access_line, ids_of_source
from faultlens.timeutil import ms_to_rfc3339, now_ms

SOURCE = "drill-crash"
BATCH = 100
GATED_BEFORE = 3  # batches the gated client gets accepted before its next one is cut by the crash
GATED_TOTAL = 6
STREAM_TOTAL = 24
_STARTED = re.compile(r"Started server process \[(\d+)\]")
_ENDED = ("Shutting down", "Finished server process")
_OTEL_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass
class Sender:
    """A client sending numbered batches in order, each under its own X-Request-ID and no traceparent (untraced).
    It stops at the first batch without an answer and remembers which batches the server acknowledged."""

    server: Server
    name: str
    run_id: str
    total: int
    occurred_at: str
    gate_at: int | None = None  # this batch's body stops half way until `crashed` is set
    acked: list[int] = field(default_factory=list)
    unanswered: int | None = None
    error: str | None = None
    go: threading.Event = field(default_factory=threading.Event)  # the gated batch may start
    cut: threading.Event = field(default_factory=threading.Event)  # the gated batch is half sent
    crashed: threading.Event = field(default_factory=threading.Event)

    def request_id(self, index: int, attempt: str = "") -> str:
        return f"crash-{self.run_id}-{self.name}-b{index:02d}{attempt}"

    def ids(self, index: int) -> list[str]:
        return [f"crash-{self.run_id}-{self.name}-b{index:02d}-e{n:03d}" for n in range(BATCH)]

    def batch(self, index: int) -> list[dict[str, Any]]:
        return [
            {
                "id": event_id,
                "source": SOURCE,
                "operation": f"sync {self.name}",
                "status": "failure",
                "occurred_at": self.occurred_at,
                "error_message": "upstream reset the connection",
            }
            for event_id in self.ids(index)
        ]

    def _half_then_wait(self, body: bytes) -> Iterator[bytes]:
        yield body[: len(body) // 2]
        self.cut.set()
        self.crashed.wait(60)
        yield body[len(body) // 2 :]

    def post(self, index: int, attempt: str = "") -> httpx.Response:
        headers = {"X-Request-ID": self.request_id(index, attempt), "Content-Type": "application/json"}
        body = orjson.dumps(self.batch(index))
        if index == self.gate_at and not attempt:
            headers["Content-Length"] = str(len(body))
            return self.server.post("/api/v1/events", content=self._half_then_wait(body), headers=headers)
        return self.server.post("/api/v1/events", content=body, headers=headers)

    def run(self) -> None:
        for index in range(self.total):
            if index == self.gate_at:
                self.go.wait(60)
            try:
                answer = self.post(index)
            except httpx.TransportError as exc:
                self.unanswered = index
                self.error = f"{type(exc).__name__}"
                return
            if answer.status_code != 200:
                self.unanswered = index
                self.error = f"answered {answer.status_code}"
                return
            self.acked.append(index)


@dataclass
class Epoch:
    """One process's life as its JSON log lines tell it."""

    pid: int
    started_ts: str
    lines: list[dict[str, Any]]

    @property
    def ended_cleanly(self) -> bool:
        return any(
            line.get("logger") == "uvicorn.error" and str(line.get("msg", "")).startswith(_ENDED) for line in self.lines
        )

    def accepted(self) -> list[dict[str, Any]]:
        """The access lines of ingest requests answered 200, in order."""
        return [
            line
            for line in self.lines
            if line.get("logger") == "faultlens.access"
            and line.get("method") == "POST"
            and line.get("path") == "/api/v1/events"
            and line.get("status") == 200
        ]


def epochs(lines: list[dict[str, Any]]) -> list[Epoch]:
    """Split the log stream into processes: `faultlens serve` opens with its `database ...` line (faultlens.cli),
    then uvicorn names the pid (`Started server process [pid]`)."""
    found: list[Epoch] = []
    for line in lines:
        msg = str(line.get("msg", ""))
        opening = line.get("logger") == "faultlens.cli" and msg.startswith("database ")
        started = _STARTED.search(msg) if line.get("logger") == "uvicorn.error" else None
        if opening or (started and (not found or found[-1].pid)):
            found.append(Epoch(0, str(line.get("ts")), []))
        if started and found:
            found[-1].pid = int(started.group(1))
            found[-1].started_ts = str(line.get("ts"))
        if found:
            found[-1].lines.append(line)
    return found


def run(ctx: DrillContext) -> None:
    server = ctx.start_server(start=False)
    for name in _OTEL_ENV:  # untraced: no exporter, whatever the runner's environment says
        server.env.pop(name, None)
    server.start()
    ctx.note(f"{server.name} up on port {server.port} (pid {server.pid}), no OTLP exporter")
    ctx.check("no OTLP exporter configured", not any(server.env.get(n) for n in _OTEL_ENV), "OTEL_* endpoints unset")
    first_pid = server.pid
    run_id = secrets.token_hex(3)
    occurred_at = ms_to_rfc3339(now_ms() - 60_000) or ""
    gated = Sender(server, "gated", run_id, GATED_TOTAL, occurred_at, gate_at=GATED_BEFORE)
    stream = Sender(server, "stream", run_id, STREAM_TOTAL, occurred_at)
    senders = (gated, stream)
    threads = [threading.Thread(target=s.run, name=f"drill-crash-{s.name}", daemon=True) for s in senders]
    for thread in threads:
        thread.start()

    wait_s = ctx.cfg.seconds(100, at_least=10)
    ctx.wait_until(lambda: len(gated.acked) >= GATED_BEFORE and stream.acked, wait_s, "both clients acknowledged")
    # Prometheus' last scrape before the crash: the only record of the counters once the process is gone.
    scrape_id = f"crash-{run_id}-scrape"
    scrape = server.get("/metrics", headers={"X-Request-ID": scrape_id})
    scrape.raise_for_status()
    before_crash = parse_metrics(scrape.text)
    ctx.note(f"/metrics scraped ({scrape_id})")
    gated.go.set()
    ctx.wait_until(gated.cut.is_set, wait_s, "the gated batch half sent")
    last = gated.request_id(gated.acked[-1])
    ctx.try_wait(lambda: access_line(server, last), ctx.cfg.seconds(10, at_least=1.0))
    server.kill9()
    ctx.note(f"kill -9 pid {first_pid} mid-ingest: gated batch {GATED_BEFORE} half sent, stream at {len(stream.acked)}")
    gated.crashed.set()
    for thread in threads:
        thread.join(wait_s)
    ctx.check(
        "the gated client's batch was cut mid-request by the crash",
        gated.unanswered == GATED_BEFORE and gated.error is not None,
        f"gated unanswered {gated.unanswered} ({gated.error}), stream unanswered {stream.unanswered} ({stream.error})",
    )
    server.start()
    ctx.note(f"{server.name} restarted (pid {server.pid}), same database and port")
    after_restart = server.metrics()

    # --- what the logs and the pre-crash scrape alone say -------------------------------------------------------
    lives = epochs(server.logs())
    ctx.check(
        "logs: two processes, the first ended without a shutdown line (killed), then a restart",
        len(lives) == 2 and lives[0].pid == first_pid and lives[1].pid == server.pid and not lives[0].ended_cleanly,
        ", ".join(f"pid {e.pid} from {e.started_ts} clean end {e.ended_cleanly}" for e in lives),
    )
    if len(lives) < 2:
        return
    crashed, restarted = lives
    accepted_lines = crashed.accepted()
    logged = [str(line.get("request_id")) for line in accepted_lines]
    last_seen = crashed.lines[-1].get("ts") if crashed.lines else None
    for sender in senders:
        mine = [r for r in logged if r.startswith(f"crash-{run_id}-{sender.name}-")]
        ctx.note(
            f"logs: {sender.name} last accepted batch {mine[-1] if mine else None}; "
            f"{len(mine)} accepted before the crash"
        )
    ctx.note(f"logs: last line of pid {crashed.pid} at {last_seen}; pid {restarted.pid} started {restarted.started_ts}")
    ctx.add_log_lines([accepted_lines[-1]] if accepted_lines else [])
    ctx.add_log_lines([line for line in restarted.lines if _STARTED.search(str(line.get("msg", "")))])

    truth_gated = [gated.request_id(i) for i in gated.acked]
    logged_gated = [r for r in logged if r.startswith(f"crash-{run_id}-gated-")]
    ctx.check(
        "logs name the gated client's accepted batches and its last one exactly",
        logged_gated == truth_gated,
        f"logged {logged_gated[-1:]} of {len(logged_gated)}, client acked {truth_gated[-1:]} of {len(truth_gated)}",
    )
    truth_stream = {stream.request_id(i) for i in stream.acked}
    logged_stream = {r for r in logged if r.startswith(f"crash-{run_id}-stream-")}
    # A crash can fall between an answer and its log line, or between a log line and the client reading it.
    edge = {stream.request_id(i) for i in stream.acked[-1:]} | (
        {stream.request_id(stream.unanswered)} if stream.unanswered is not None else set()
    )
    if logged_stream ^ truth_stream:
        ctx.note(f"the crash fell between an answer and its access line: {sorted(logged_stream ^ truth_stream)}")
    ctx.check(
        "logs name the stream client's accepted batches (up to the one the crash cut)",
        not (logged_stream ^ truth_stream) - edge,
        f"logged {len(logged_stream)}, client acked {len(truth_stream)}, differ {sorted(logged_stream ^ truth_stream)}",
    )
    untraced = [line for line in crashed.lines if line.get("logger") == "faultlens.access" and line.get("trace_id")]
    ctx.check(
        "untraced: no log line carries a trace id, request ids alone tie it together", not untraced, f"{len(untraced)}"
    )

    scrape_line = next((i for i, line in enumerate(crashed.lines) if line.get("request_id") == scrape_id), None)
    accepted_at = {id(line) for line in accepted_lines}
    posts_before = sum(1 for line in crashed.lines[: scrape_line or 0] if id(line) in accepted_at)
    scraped_posts = metric_sum(
        before_crash, "faultlens_http_requests_total", method="POST", route="/api/v1/events", status_class="2xx"
    )
    scraped_events = metric_sum(before_crash, "faultlens_ingest_events_total", outcome="accepted")
    # One request can straddle the scrape either way: counted but not yet logged, or answered and logged after the
    # scrape read the counters but before the scrape's own access line (written once its body is sent). Only the
    # stream client was sending then, one batch at a time.
    ctx.check(
        "the pre-crash scrape agrees with the logs up to its own access line",
        scrape_line is not None
        and posts_before - 1 <= scraped_posts <= posts_before + 1
        and (posts_before - 1) * BATCH <= scraped_events <= (posts_before + 1) * BATCH,
        f"logged 200s before the scrape {posts_before}; scraped requests {scraped_posts:g}, events {scraped_events:g}",
    )
    restarted_posts = metric_sum(after_restart, "faultlens_http_requests_total", method="POST", status_class="2xx")
    ctx.check(
        "after the restart /metrics starts over: the scrape before the crash is the record",
        restarted_posts == 0,
        f"POST 2xx after restart {restarted_posts:g}",
    )
    ctx.metric_deltas.update(
        {
            'pre-crash scrape: faultlens_ingest_events_total{outcome="accepted"}': scraped_events,
            'after restart: faultlens_ingest_events_total{outcome="accepted"}': metric_sum(
                after_restart, "faultlens_ingest_events_total", outcome="accepted"
            ),
        }
    )

    # --- durability and the re-send -----------------------------------------------------------------------------
    present = Counter(ids_of_source(server, SOURCE))
    logged_ids = [
        event_id for sender in senders for i in range(sender.total) if sender.request_id(i) in logged
        for event_id in sender.ids(i)
    ]  # fmt: skip
    ctx.check(
        "every batch the logs show accepted survived the crash",
        all(present[event_id] == 1 for event_id in logged_ids),
        f"{sum(1 for e in logged_ids if present[e])} of {len(logged_ids)} present",
    )
    partial = []
    resent: list[str] = []
    for sender in senders:
        for index in range(sender.total):
            if index in sender.acked:
                continue
            stored_before = sum(present[e] for e in sender.ids(index))
            if stored_before not in (0, BATCH):
                partial.append(f"{sender.request_id(index)}: {stored_before}")
            answer = sender.post(index, "-resend")
            body = answer.json() if answer.status_code == 200 else {}
            if (
                answer.status_code != 200
                or body.get("accepted", 0) + body.get("duplicates", 0) != BATCH
                or body.get("duplicates") != stored_before
            ):
                partial.append(f"{sender.request_id(index)} re-send: {answer.status_code} {answer.text[:120]}")
            resent.append(sender.request_id(index))
    ctx.note(f"clients re-sent {len(resent)} unacknowledged batches with the same ids")
    ctx.check(
        "a batch cut by the crash is all or nothing, and its re-send reports the stored part as duplicates",
        not partial,
        "; ".join(partial[:3]) or f"{len(resent)} re-sent",
    )
    final = Counter(ids_of_source(server, SOURCE))
    expected = [e for sender in senders for i in range(sender.total) for e in sender.ids(i)]
    missing = [e for e in expected if final[e] == 0]
    twice = [e for e in expected if final[e] > 1]
    ctx.lost += len(missing)
    ctx.check(
        "after the re-send every event is stored exactly once (count by ids)",
        not missing and not twice and sum(final.values()) == len(expected),
        f"{sum(final.values())} stored, {len(expected)} sent, {len(missing)} missing, {len(twice)} twice",
    )


DRILL = Drill(
    name="crash_untraced",
    title="Crash without tracing: kill -9 mid-ingest, reconstructed from /metrics and logs",
    shows=(
        "With no OTLP exporter, the last /metrics scrape and the JSON logs alone show which batches were accepted "
        "before a kill -9, the crash and the restart; the clients' re-send with the same ids loses nothing and "
        "stores nothing twice."
    ),
    run=run,
)
