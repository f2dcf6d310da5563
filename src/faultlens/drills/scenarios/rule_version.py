"""The `rule_version` drill: a pack activated while ingest runs; every event ends under the new version and the
backfill changes exactly what the preview said."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from faultlens.drills.harness import Drill, DrillContext, Server, metric_sum
from faultlens.drills.scenarios import _backfill as bf
from faultlens.drills.scenarios._evidence import events_of_source

SOURCE = "drill-rule-version"
BATCH = 10
LOOKUPS = 8  # event detail reads in flight at once (confirmed_by_version is per event)


@dataclass
class Feeder:
    """Ingest in a thread, batch after batch, until stopped. Until the activation has answered it sends only events
    the pack leaves alone (successes, unmatched failures): a batch classified just before the swap then needs no
    change, so the backfill's changes are exactly the preview's. Afterwards it sends markers too (new at ingest)."""

    server: Server
    activated: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: dict[str, str] = field(default_factory=dict)  # id -> kind, once the batch was accepted
    batches: list[tuple[bool, int]] = field(default_factory=list)  # (after the activation?, status)
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="drill-feeder", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)

    def _loop(self) -> None:
        number = 0
        while not self.stop.is_set():
            after = self.activated.is_set()
            kinds = ("marker", "success", "unknown") if after else ("success", "unknown")
            events = [
                bf.make_event(f"rv-live-{number}-{i}", kinds[i % len(kinds)], SOURCE, age_s=30) for i in range(BATCH)
            ]
            number += 1
            status = self._send(events)
            self.batches.append((after, status))
            self.stop.wait(0.02)

    def _send(self, events: list[dict[str, Any]]) -> int:
        # A client that retries a busy answer (503 with Retry-After) with the same ids, as ingest clients should.
        for _ in range(20):
            try:
                answer = self.server.post("/api/v1/events", json=events)
            except Exception as exc:  # recorded: the drill fails on it
                self.errors.append(f"{type(exc).__name__}: {exc}")
                return 0
            if answer.status_code == 503:
                self.stop.wait(min(float(answer.headers.get("retry-after", "0.2") or 0.2), 1.0))
                continue
            if answer.status_code == 200 and not answer.json()["rejected"]:
                for one in events:
                    self.sent[one["id"]] = _kind_of(one)
            else:
                self.errors.append(f"{answer.status_code} {answer.text[:200]}")
            return answer.status_code
        self.errors.append("503 twenty times in a row")
        return 503


def _kind_of(event: dict[str, Any]) -> str:
    for kind in bf.KINDS:
        probe = bf.make_event("", kind, "")
        if event.get("status") == probe["status"] and event.get("error_message") == probe.get("error_message"):
            return kind
    return "?"


def _under_new_version(server: Server, items: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(events checked, the ids not under NEW_VERSION). Stamped by the new stack (its pack's id or the whole new
    version) or else confirmed by its backfill (GET /api/v1/events/{id} confirmed_by_version)."""

    def confirmed(event_id: str) -> bool:
        detail = server.get(f"/api/v1/events/{quote(event_id, safe='')}")
        return detail.status_code == 200 and detail.json().get("confirmed_by_version") == bf.NEW_VERSION

    unstamped = [i["id"] for i in items if i["rule_version"] not in (bf.PACK_ID, bf.NEW_VERSION)]
    with ThreadPoolExecutor(LOOKUPS) as pool:
        answers = list(pool.map(confirmed, unstamped))
    return len(items), [event_id for event_id, ok in zip(unstamped, answers, strict=True) if not ok]


def run(ctx: DrillContext) -> None:
    # Batches of 10: the backfill takes many checkpoints, so ingest runs beside it as well as across the activation.
    server = ctx.start_server(
        name="server",
        backfill_batch_size=10,
        rules_follow_interval_s=0.5,
        start_alerting=False,
        start_release_analyzer=False,
    )
    history = bf.mixed_events(int(ctx.cfg.seconds(800, at_least=80)), SOURCE, prefix="rv-old-")
    markers = bf.count_kind(history, "marker")
    accepted = bf.ingest(ctx, server, history)
    ctx.check("history accepted", accepted == len(history), f"{accepted} of {len(history)}")
    planned = bf.preview(server)
    ctx.note(
        f"preview of {bf.PACK_ID}: {planned['total_examined']} examined, {planned['total_changed']} would change, "
        f"{bf.moved_count(planned)} downstream_closed -> {bf.MOVED_KIND}"
    )
    ctx.check(
        "preview examines the history and moves its markers",
        planned["total_examined"] == len(history) and bf.moved_count(planned) == planned["total_changed"] == markers,
        f"examined {planned['total_examined']}, changed {planned['total_changed']}, markers {markers}",
    )
    before = server.metrics()

    feeder = Feeder(server)
    feeder.start()
    try:
        ctx.wait_until(lambda: len(feeder.batches) >= 2, ctx.cfg.seconds(100, at_least=10), "ingest under way")
        answer = server.post("/api/v1/rules/activate", json=bf.PACK)
        feeder.activated.set()
        racing = len(feeder.batches)
        answer.raise_for_status()
        activation = answer.json()
        job_id = str(activation["backfill"]["id"])
        ctx.note(f"activated mid-ingest ({racing} batches in): {activation['active_version']}, job {job_id}")
        ctx.check(
            "activation answered the new version",
            activation["previous_version"] == bf.DEFAULT_VERSION and activation["active_version"] == bf.NEW_VERSION,
            f"{activation['previous_version']} -> {activation['active_version']}",
        )

        running_batches: list[int] = []

        def done() -> dict[str, Any] | None:
            found = bf.job(server, job_id)
            if found["state"] == "running":
                running_batches.append(len(feeder.batches))
            return found if found["state"] not in ("pending", "running") else None

        final = ctx.wait_until(done, ctx.cfg.seconds(300, at_least=25), "the backfill finishing", every_s=0.05)
        # A few batches more under the new version only, then ingest stops.
        more = len(feeder.batches) + 3
        ctx.wait_until(lambda: len(feeder.batches) >= more, ctx.cfg.seconds(100, at_least=10), "ingest after it")
    finally:
        feeder.join()
    overlap = (max(running_batches) - min(running_batches)) if running_batches else 0
    after_activation = sum(1 for after, _ in feeder.batches if after)
    ctx.note(
        f"ingest: {len(feeder.batches)} batches of {BATCH} ({after_activation} after the activation, ~{overlap} "
        f"while the backfill ran), {len(feeder.errors)} errors"
    )
    ctx.check("every live batch accepted", not feeder.errors, "; ".join(feeder.errors[:3]))

    progress = final["progress"]
    ctx.note(f"job {final['state']}: {progress}")
    ctx.check(
        "backfill done, done == total",
        final["state"] == "done" and progress["done"] == progress["total"] >= len(history),
        f"state {final['state']}, done {progress['done']}, total {progress['total']}, error {final['error']}",
    )
    ctx.check(
        "preview counts == backfill counts",
        progress["changed"] == planned["total_changed"],
        f"backfill changed {progress['changed']}, preview total_changed {planned['total_changed']}",
    )

    items = events_of_source(server, SOURCE)
    expected = {e["id"]: "marker" if e.get("error_message") == "downstream_closed" else "" for e in history}
    expected.update(feeder.sent)
    stored_ids = {i["id"] for i in items}
    missing = [i for i in expected if i not in stored_ids]
    ctx.lost += len(missing)
    ctx.check(
        "every event sent is stored once", not missing and len(items) == len(stored_ids), f"missing {missing[:5]}"
    )
    checked, wrong = _under_new_version(server, items)
    ctx.check(
        f"every event ends under {bf.NEW_VERSION}",
        checked == len(expected) and not wrong,
        f"{checked} checked, {len(wrong)} not under the new version {wrong[:5]}",
    )
    marked = [i for i in items if i.get("error_message") == "downstream_closed"]
    stale = [i["id"] for i in marked if i["failure_kind"] != bf.MOVED_KIND or i["rule_version"] != bf.PACK_ID]
    ctx.check(
        f"every downstream_closed event is {bf.MOVED_KIND} by {bf.PACK_ID}",
        bool(marked) and not stale,
        f"{len(marked)} markers, {len(stale)} stale {stale[:5]}",
    )
    again = bf.preview(server)
    ctx.check(
        "a second preview of the active pack moves nothing",
        again["total_changed"] == 0 and again["candidate_version"] == bf.NEW_VERSION,
        f"{again['total_examined']} examined, {again['total_changed']} would change",
    )

    after = server.metrics()
    ctx.record_deltas(before, after, ["faultlens_jobs_", "faultlens_ingest_events_total"])
    ran = metric_sum(after, "faultlens_jobs_run_total", kind="backfill") - metric_sum(
        before, "faultlens_jobs_run_total", kind="backfill"
    )
    live = metric_sum(after, "faultlens_ingest_events_total", outcome="accepted") - metric_sum(
        before, "faultlens_ingest_events_total", outcome="accepted"
    )
    ctx.check(
        "metrics: jobs_run_total{kind=backfill} +1, ingest accepted == live events sent",
        ran == 1 and live == len(feeder.sent),
        f"jobs_run_total delta {ran:g}, accepted delta {live:g}, live sent {len(feeder.sent)}",
    )
    activated = [
        line
        for line in server.logs()
        if str(line.get("msg", "")).startswith(f"rule version {bf.NEW_VERSION} activated for tenant")
    ]
    claimed = bf.claims(server, job_id)
    ctx.add_log_lines([*activated, *(c.line for c in claimed)])
    ctx.check(
        "logs: the activation line, then the job's claim line carrying its job_id",
        bool(activated) and bool(claimed) and claimed[0].line.get("job_id") == job_id,
        f"{len(activated)} activation lines, {len(claimed)} claim lines",
    )


DRILL = Drill(
    name="rule_version",
    title="Rule version: a pack activated mid-ingest",
    shows="With ingest running across an activation and its backfill, every event ends stamped or confirmed under "
    "the new rule version, and the backfill changes exactly the preview's total_changed.",
    run=run,
)
