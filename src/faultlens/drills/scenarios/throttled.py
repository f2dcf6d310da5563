"""The `throttled` drill: the receiver answers 429 with Retry-After; no try comes before it elapsed, all delivered."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

from faultlens.drills.harness import Drill, DrillContext, Server, metric_delta, metric_sum
from faultlens.drills.scenarios import _alerting as a
from faultlens.drills.sink import Call, Sink

THROTTLED_TRIES = 2  # 429 answers each batch gets before the sink accepts


def run(ctx: DrillContext) -> None:
    cfg = ctx.cfg
    # Retry-After is whole seconds; the backoff is far shorter, so a sender ignoring Retry-After would come back
    # within a fraction of it and the spacing check below would catch it.
    retry_after_s = max(1, round(cfg.seconds(20)))
    wait_ms = retry_after_s * 1000
    sink = ctx.sink()
    sink.throttle(str(retry_after_s))
    ctx.note(f"sink throttling: every call answered 429 Retry-After: {retry_after_s}")
    server = a.start_alerting_server(
        ctx,
        sink,
        alert_delivery_backoff_base_s=cfg.seconds(1, at_least=0.05),
        alert_delivery_backoff_max_s=cfg.seconds(2, at_least=0.1),
        alert_retry_after_max_s=retry_after_s * 10,
    )
    before = server.metrics()
    raised = a.raise_alerts(ctx, server)
    a.check_refusals_logged(ctx, server, raised)

    def throttled_enough() -> dict[str, list[Call]] | None:
        batches = by_batch(sink.calls)
        ok = len(batches) == len(a.ALERTS) and all(len(calls) >= THROTTLED_TRIES for calls in batches.values())
        return batches if ok else None

    ctx.wait_until(
        throttled_enough,
        THROTTLED_TRIES * retry_after_s + cfg.seconds(100, at_least=10),
        f"{THROTTLED_TRIES} throttled calls per batch",
    )
    snapshot = ctx.wait_until(lambda: consistent(server, sink), cfg.seconds(50, at_least=5), "outbox matches the sink")
    sink.accept()
    ctx.note(f"sink accepting after {len(sink.calls)} throttled calls")
    items, calls = snapshot
    ctx.check(
        "while throttled each notification is pending with HTTP 429 recorded and its next try due Retry-After later",
        all(
            i["state"] == "pending"
            and i["last_status"] == 429
            and i["last_error"] == "HTTP 429"
            and a.ms(i["due_at"]) - last_call(calls, i["id"]).at_ms >= wait_ms
            for i in items
        ),
        "; ".join(
            f"{i['state']} tries={i['attempts']} status={i['last_status']} "
            f"due {a.ms(i['due_at']) - last_call(calls, i['id']).at_ms} ms after the last call"
            for i in items
        ),
    )

    items = a.await_delivery(ctx, server, retry_after_s + cfg.seconds(100, at_least=10))
    a.check_delivered_once(ctx, sink, items)
    calls = sink.calls
    batches = by_batch(calls)
    gaps = [
        (key, later.at_ms - earlier.at_ms)
        for key, seq in batches.items()
        for earlier, later in pairwise(seq)
        if earlier.status == 429
    ]
    shortest = min((g for _, g in gaps), default=0)
    ctx.check(
        f"no call came before Retry-After ({wait_ms} ms) elapsed (sink timestamps)",
        len(gaps) >= len(a.ALERTS) * THROTTLED_TRIES and shortest >= wait_ms,
        f"{len(gaps)} gaps after a 429, shortest {shortest} ms: " + ", ".join(f"{key[:8]} {g} ms" for key, g in gaps),
    )
    longest = max((g for _, g in gaps), default=0)
    ctx.check(
        "each retry came soon after Retry-After elapsed (honoured, not replaced by a long backoff)",
        longest < 2 * wait_ms + 1000,
        f"longest gap {longest} ms",
    )
    ctx.check(
        "every call of a batch carries the same Idempotency-Key and notification ids",
        all(len({tuple(c.notification_ids) for c in seq}) == 1 for seq in batches.values())
        and all(c.idempotency_key for c in calls),
        "; ".join(f"{key[:8]}: {len(seq)} calls {[c.status for c in seq]}" for key, seq in batches.items()),
    )
    ctx.check(
        "each batch accepted once, after its 429s",
        all(
            [c.status for c in seq] == [429] * (len(seq) - 1) + [200] and len(seq) > THROTTLED_TRIES
            for seq in batches.values()
        ),
        "; ".join(f"{key[:8]}: {[c.status for c in seq]}" for key, seq in batches.items()),
    )
    per_id = {i["id"]: sum(1 for c in calls if i["id"] in c.notification_ids) for i in items}
    ctx.check(
        "outbox tries of each notification == calls the sink received with its id",
        all(int(i["attempts"]) == per_id[i["id"]] for i in items),
        ", ".join(f"tries {i['attempts']} / calls {per_id[i['id']]}" for i in items),
    )

    after = ctx.try_wait(lambda: a.settled(server.metrics()), cfg.seconds(50, at_least=5)) or server.metrics()
    ctx.record_deltas(before, after, ["faultlens_alert_"])
    delta = metric_delta(before, after)
    throttled = sum(1 for c in calls if c.status == 429)
    retrying = metric_sum(delta, a.DELIVERIES, result="retrying")
    delivered = metric_sum(delta, a.DELIVERIES, result="delivered")
    ctx.check(
        "deliveries_total counted each 429 as retrying and each batch once as delivered",
        retrying == throttled and delivered == len(sink.accepted()) == len(a.ALERTS),
        f"retrying +{retrying:g} for {throttled} answers 429, delivered +{delivered:g}",
    )
    ctx.check("nothing dead-lettered", metric_sum(delta, a.DEAD) == 0, f"dead +{metric_sum(delta, a.DEAD):g}")
    ctx.check("alert_notifications_pending back to 0", after.get(a.PENDING) == 0, f"pending {after.get(a.PENDING)}")
    lines = a.retry_lines(server, "HTTP 429")
    said = f"tried again in {float(retry_after_s):.1f} s"
    ctx.check(
        f"one JSON warning per 429, each saying '{said}'",
        len(lines) == throttled and all(said in str(x.get("msg")) for x in lines),
        f"{len(lines)} warnings for {throttled} answers 429",
    )
    ctx.add_log_lines(lines[:2])


def by_batch(calls: list[Call]) -> dict[str, list[Call]]:
    """The sink's calls per batch (Idempotency-Key), in arrival order."""
    out: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.at_ms):
        out[call.idempotency_key or ""].append(call)
    return dict(out)


def last_call(calls: list[Call], notification_id: str) -> Call:
    return max((c for c in calls if notification_id in c.notification_ids), key=lambda c: c.at_ms)


def consistent(server: Server, sink: Sink) -> tuple[list[dict[str, Any]], list[Call]] | None:
    """The outbox and the sink's calls as of the same moment: each notification's tries == the calls carrying it
    (a call the sink has seen may not be recorded by the sender yet)."""
    calls = sink.calls
    items = a.outbox(server)
    if len(items) != len(a.ALERTS):
        return None
    for item in items:
        if int(item["attempts"]) != sum(1 for c in calls if item["id"] in c.notification_ids):
            return None
    return items, calls


DRILL = Drill(
    name="throttled",
    title="Alert receiver throttling (429 with Retry-After)",
    shows=(
        "A receiver answering 429 Retry-After: N gets no call before N seconds passed (the sink's own timestamps), "
        "every throttled try is counted as a retry and logged with that wait, and each notification is then "
        "delivered exactly once under the same Idempotency-Key."
    ),
    run=run,
)
