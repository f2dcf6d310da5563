"""Drill `contention`: another session holds the database's write lock past the deadline; ingest answers 503 with
Retry-After in time (never 500), stores nothing of the batch, and the client's retry succeeds once the lock goes."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from faultlens.drills.harness import Drill, DrillContext, Server, metric_delta
from faultlens.drills.scenarios._evidence import access_line, delta, ids_of_source, traced_headers
from faultlens.timeutil import ms_to_rfc3339, now_ms

SOURCE = "drill-contention"
TENANT = "drill"
BATCH = 50
# The series this drill reads (the report shows their deltas).
_SERIES = ("faultlens_database_errors_total", "faultlens_http_requests_total", "faultlens_ingest_events_total")
_POST = {"method": "POST", "route": "/api/v1/events"}


@dataclass
class Attempt:
    request_id: str
    trace_id: str
    sent: float
    answered: float = 0.0
    status: int = 0
    retry_after: str | None = None
    code: str | None = None
    message: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


@dataclass
class Client:
    """A well-behaved ingest client: sends the batch, and on 503 waits what Retry-After says and sends it again."""

    server: Server
    batch: list[dict[str, Any]]
    label: str
    give_up_s: float
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.give_up_s
        try:
            while time.monotonic() < deadline:
                headers, request_id, trace_id = traced_headers(f"{self.label}-{len(self.attempts) + 1}")
                attempt = Attempt(request_id, trace_id, time.monotonic())
                answer = self.server.post("/api/v1/events", json=self.batch, headers=headers)
                attempt.answered = time.monotonic()
                attempt.status = answer.status_code
                attempt.retry_after = answer.headers.get("retry-after")
                try:
                    attempt.body = answer.json()
                except ValueError:
                    attempt.body = {"raw": answer.text[:300]}
                found = attempt.body.get("error")
                error: dict[str, Any] = found if isinstance(found, dict) else {}
                attempt.code = error.get("code")
                attempt.message = str(error.get("message", ""))
                self.attempts.append(attempt)
                if answer.status_code != 503 or attempt.retry_after is None:
                    return
                # The client's own behaviour under test: it waits as long as the server asked before sending again.
                time.sleep(float(attempt.retry_after))
            self.error = f"gave up after {self.give_up_s:g} s"
        except (httpx.HTTPError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 503]


class Holder:
    """Another session holding the write lock: SQLite BEGIN IMMEDIATE on the file, or a PostgreSQL lock."""

    def __init__(self, db_url: str) -> None:
        self.sqlite = db_url.startswith("sqlite")
        self.conn: Any
        if self.sqlite:
            # The wait for our own lock is bounded too: the server's background writers hold it only briefly.
            self.conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=10)
        else:
            self.conn = psycopg.connect(db_url, connect_timeout=5)
            self.conn.execute("SET lock_timeout = '10s'")

    def lock_file(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def lock_table(self) -> None:
        self.conn.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")

    def lock_rollup_rows(self, source: str) -> int:
        """Lock the rollup rows of `source`: a batch of it inserts its events, then waits on them at the upsert."""
        rows = self.conn.execute(
            "SELECT 1 FROM rollups WHERE tenant = %s AND source = %s FOR UPDATE", (TENANT, source)
        ).fetchall()
        return len(rows)

    def count(self, ids: list[str]) -> int:
        """How many of `ids` are committed, read inside the lock-holding session (it sees only committed rows)."""
        if self.sqlite:
            marks = ",".join("?" * len(ids))
            sql = f"SELECT count(*) FROM events WHERE tenant = ? AND id IN ({marks})"
            return int(self.conn.execute(sql, (TENANT, *ids)).fetchone()[0])
        row = self.conn.execute("SELECT count(*) FROM events WHERE tenant = %s AND id = ANY(%s)", (TENANT, ids))
        return int(row.fetchone()[0])

    def release(self) -> None:
        if self.sqlite:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        else:
            self.conn.rollback()

    def close(self) -> None:
        try:
            self.release()
        finally:
            self.conn.close()


def make_batch(run_id: str, phase: str, occurred_at: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"contention-{run_id}-{phase}-{n:03d}",
            "source": SOURCE,
            "operation": "POST /checkout",
            "status": "failure",
            "occurred_at": occurred_at,
            "http_status": 503,
            "error_message": "inventory service unavailable",
        }
        for n in range(BATCH)
    ]


def _phase(
    ctx: DrillContext,
    server: Server,
    holder: Holder,
    *,
    phase: str,
    lock: str,
    batch: list[dict[str, Any]],
    deadline_s: float,
    word: str,
) -> Client:
    """Hold the lock, let the client run into it twice, check nothing of the batch is stored, release, and check
    the client's retry stored the batch once."""
    ids = [str(e["id"]) for e in batch]
    client = Client(server, batch, f"contention-{phase.replace(' ', '-')}", give_up_s=ctx.cfg.seconds(300, at_least=20))
    thread = threading.Thread(target=client.run, name=f"drill-contention-{phase.replace(' ', '-')}", daemon=True)
    ctx.note(f"{phase}: lock held ({lock}); client sends a batch of {len(ids)}")
    thread.start()
    try:
        # The lock outlasts two tries: the first refusal and the retry after Retry-After.
        ctx.wait_until(
            lambda: len(client.refused) >= 2 or not thread.is_alive(),
            deadline_s * 2 + ctx.cfg.seconds(120, at_least=10),
            f"{phase}: two refused tries while the lock is held",
        )
        during = holder.count(ids)
    finally:
        holder.release()
    ctx.note(f"{phase}: lock released after {len(client.refused)} refused tries")
    thread.join(ctx.cfg.seconds(300, at_least=20))

    answered = [a.status for a in client.attempts]
    ctx.check(f"{phase}: never a 500", all(s in (200, 503) for s in answered), f"answers {answered}")
    refused = client.refused
    ctx.check(f"{phase}: ingest answered 503 while the lock was held", len(refused) >= 2, f"answers {answered}")
    bound = deadline_s + ctx.cfg.seconds(20, at_least=2.0)
    slowest = max((a.seconds for a in refused), default=0.0)
    ctx.check(
        f"{phase}: every 503 came within the lock deadline ({deadline_s:g} s + {bound - deadline_s:g} s)",
        bool(refused) and slowest <= bound,
        f"slowest {slowest:.2f} s",
    )
    ctx.check(
        f"{phase}: every 503 is database_unavailable with Retry-After and names the lock",
        bool(refused)
        and all(
            a.code == "database_unavailable" and (a.retry_after or "").isdigit() and word in a.message for a in refused
        ),
        "; ".join(f"{a.code} Retry-After={a.retry_after} {a.message!r}" for a in refused[:2]),
    )
    ctx.check(f"{phase}: no partial batch while refused (count by ids)", during == 0, f"{during} of {len(ids)} stored")
    final = client.attempts[-1] if client.attempts else None
    ok = final is not None and final.status == 200 and final.body.get("accepted") == len(ids)
    ctx.check(
        f"{phase}: the client's retry after the lock went stored the batch",
        ok and client.error is None,
        f"{client.error or ''} last answer {final.status if final else None} {final.body if final else ''}",
    )
    for attempt in client.attempts:
        ctx.add_trace_id(attempt.trace_id)
    waited = [
        round(later.sent - earlier.answered, 2)
        for earlier, later in zip(client.attempts, client.attempts[1:], strict=False)
        if earlier.status == 503
    ]
    ctx.check(
        f"{phase}: the client waited Retry-After before each retry",
        all(w >= float(a.retry_after or 0) - 0.05 for w, a in zip(waited, refused, strict=False)),
        f"waited {waited} s",
    )
    return client


def _check_logs(ctx: DrillContext, server: Server, phase: str, client: Client, word: str) -> None:
    """Each refused try has its 503 access line with error_code database_unavailable and a WARNING naming the
    reason, under its request id; the stored try has its 200 line."""
    refused = client.refused
    wanted = [a.request_id for a in client.attempts]
    ctx.try_wait(lambda: all(access_line(server, r) for r in wanted), ctx.cfg.seconds(50, at_least=5.0))
    lines = server.logs()
    access = {r: access_line(server, r) for r in wanted}
    ok = bool(refused) and all(
        (line := access[a.request_id]) is not None
        and line.get("status") == 503
        and line.get("error_code") == "database_unavailable"
        and line.get("trace_id") == a.trace_id
        for a in refused
    )
    ctx.check(
        f"{phase}: each 503 has its JSON access line (request id, trace id, error_code database_unavailable)",
        ok,
        f"{sum(1 for a in refused if access[a.request_id])} of {len(refused)} found",
    )
    warnings = [
        line
        for line in lines
        if line.get("level") == "WARNING"
        and line.get("request_id") in {a.request_id for a in refused}
        and "database unavailable" in str(line.get("msg"))
        and word in str(line.get("msg"))
    ]
    ctx.check(
        f"{phase}: a WARNING line names the reason under each refused request id",
        len({w["request_id"] for w in warnings}) == len(refused) and bool(refused),
        str(warnings[0].get("msg")) if warnings else "none",
    )
    ctx.add_log_lines(warnings[:1])
    ctx.add_log_lines([line for line in access.values() if line is not None])


def run(ctx: DrillContext) -> None:
    sqlite = ctx.cfg.database == "sqlite"
    deadline_s = ctx.cfg.seconds(5, at_least=0.5)
    retry_after = max(1, round(ctx.cfg.seconds(5)))
    server = ctx.start_server(
        sqlite_busy_timeout_s=deadline_s,
        database_lock_timeout_s=deadline_s,
        database_retry_after_s=retry_after,
    )
    run_id = secrets.token_hex(3)
    # One timestamp for every event: the seed and the batches share their rollup rows (same hour bucket).
    occurred_at = ms_to_rfc3339(now_ms() - 60_000) or ""
    seed = make_batch(run_id, "seed", occurred_at)
    answer = server.post("/api/v1/events", json=seed)
    ctx.check(
        "seed batch stored", answer.status_code == 200 and answer.json().get("accepted") == BATCH, answer.text[:200]
    )
    before = server.metrics()

    holder = Holder(server.db_url)
    ctx.on_cleanup(holder.close)
    phases: list[tuple[str, Client, str]] = []
    if sqlite:
        word = "locked"
        holder.lock_file()
        batch = make_batch(run_id, "file", occurred_at)
        client = _phase(
            ctx, server, holder, phase="sqlite write lock", lock="BEGIN IMMEDIATE", batch=batch,
            deadline_s=deadline_s, word=word,
        )  # fmt: skip
        phases.append(("sqlite write lock", client, word))
    else:
        word = "lock"
        holder.lock_table()
        batch = make_batch(run_id, "table", occurred_at)
        client = _phase(
            ctx, server, holder, phase="table lock", lock="LOCK TABLE events IN ACCESS EXCLUSIVE MODE",
            batch=batch, deadline_s=deadline_s, word=word,
        )  # fmt: skip
        phases.append(("table lock", client, word))
        # Rows, not the table: the batch's events go in, then its rollup upsert waits on rows another session holds;
        # the lock timeout must take the inserted events back out with the rest of the transaction.
        locked = holder.lock_rollup_rows(SOURCE)
        batch = make_batch(run_id, "rows", occurred_at)
        client = _phase(
            ctx, server, holder, phase="rollup row lock", lock=f"SELECT ... FOR UPDATE on {locked} rollup rows",
            batch=batch, deadline_s=deadline_s, word=word,
        )  # fmt: skip
        phases.append(("rollup row lock", client, word))

    after = server.metrics()
    ctx.record_deltas(before, after, _SERIES)
    moved = metric_delta(before, after)
    refused = sum(len(c.refused) for _, c, _ in phases)
    busy = delta(moved, "faultlens_database_errors_total", reason="db_busy")
    ctx.check(
        'faultlens_database_errors_total{reason="db_busy"} counts every refusal',
        busy >= refused > 0,
        f"moved {busy:g}, refused tries {refused}",
    )
    answered_5xx = delta(moved, "faultlens_http_requests_total", status_class="5xx", **_POST)
    answered_2xx = delta(moved, "faultlens_http_requests_total", status_class="2xx", **_POST)
    ctx.check(
        "faultlens_http_requests_total for POST /api/v1/events: 5xx = the refused tries, 2xx = the retries",
        answered_5xx == refused and answered_2xx == len(phases),
        f"5xx {answered_5xx:g}, 2xx {answered_2xx:g}",
    )
    accepted = delta(moved, "faultlens_ingest_events_total", outcome="accepted")
    ctx.check(
        "ingest_events_total{outcome=accepted} moved by exactly the stored batches",
        accepted == BATCH * len(phases),
        f"moved {accepted:g}",
    )
    for phase, client, phase_word in phases:
        _check_logs(ctx, server, phase, client, phase_word)
    logged_500 = [
        line for line in server.logs() if line.get("logger") == "faultlens.access" and line.get("status") == 500
    ]
    ctx.check("no 500 in the access log", not logged_500, f"{len(logged_500)} lines")

    # Count by ids through the API: every event of every batch exactly once, nothing else of the source.
    listed = ids_of_source(server, SOURCE)
    expected = [str(e["id"]) for e in seed]
    for phase in ("file",) if sqlite else ("table", "rows"):
        expected += [str(e["id"]) for e in make_batch(run_id, phase, occurred_at)]
    missing = set(expected) - set(listed)
    ctx.lost += len(missing)
    ctx.check(
        "every event stored exactly once (count by ids)",
        sorted(listed) == sorted(expected),
        f"{len(listed)} listed, {len(expected)} expected, {len(missing)} missing",
    )


DRILL = Drill(
    name="contention",
    title="Contention: the database's write lock held past its deadline",
    shows=(
        "A write lock held longer than the busy/lock timeout turns ingest into 503 database_unavailable with "
        "Retry-After within the deadline, never a 500 or a partial batch, counted as db_busy and logged under the "
        "request id, and the client's retry stores the batch once."
    ),
    run=run,
)
