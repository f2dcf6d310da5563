"""The `sink_down` drill: the alert receiver is down for a minute; retries are scheduled and counted, nothing lost."""

from __future__ import annotations

import time

from faultlens.drills.harness import Drill, DrillContext, metric_delta, metric_sum
from faultlens.drills.scenarios import _alerting as a
from faultlens.timeutil import now_ms

# A receiver that refuses connections: httpx says ConnectError, the only text the outbox keeps (never the URL).
REFUSED = "ConnectError"


def run(ctx: DrillContext) -> None:
    cfg = ctx.cfg
    sink = ctx.sink()
    sink.down()
    ctx.note(f"sink down: port {sink.port} closed")
    outage_s = cfg.seconds(60)
    # Backoff up to cfg.seconds(10), so the outage sees several tries, and enough tries that none is dead-lettered.
    server = a.start_alerting_server(
        ctx,
        sink,
        alert_delivery_backoff_base_s=cfg.seconds(5),
        alert_delivery_backoff_max_s=cfg.seconds(10),
        alert_delivery_max_attempts=100,
    )
    before = server.metrics()
    raised = a.raise_alerts(ctx, server)
    # The outage is counted from the moment there is something to deliver: the alerts fired, the sink still down.
    down_at = ctx.elapsed_ms()
    ctx.note(f"notifications written while the sink is down; it stays down {outage_s:g} s")
    a.check_refusals_logged(ctx, server, raised)

    def retried() -> list[dict[str, object]] | None:
        items = a.outbox(server)
        ok = len(items) == len(a.ALERTS) and all(i["state"] == "pending" and i["attempts"] >= 2 for i in items)
        return items if ok else None

    during = ctx.wait_until(retried, outage_s + cfg.seconds(60, at_least=5), "every notification tried twice")
    ctx.note("outbox during the outage: " + ", ".join(f"{i['id']} tries={i['attempts']}" for i in during))
    ctx.check(
        "during the outage every notification is pending, retried, its error named, its next try scheduled",
        all(i["last_error"] == REFUSED and i["last_status"] is None and i["due_at"] for i in during),
        "; ".join(f"{i['state']} tries={i['attempts']} error={i['last_error']} due={i['due_at']}" for i in during),
    )
    # The outage lasts its full length whatever the sender does: this is the fault, not a synchronisation.
    remaining = outage_s - (ctx.elapsed_ms() - down_at) / 1000
    if remaining > 0:
        time.sleep(remaining)
    mid = server.metrics()
    mid_delta = metric_delta(before, mid)
    retrying_mid = metric_sum(mid_delta, a.DELIVERIES, result="retrying")
    ctx.check(
        "deliveries_total{result=retrying} counted the failed tries; nothing delivered, nothing dead",
        retrying_mid >= 2 * len(a.ALERTS)
        and metric_sum(mid_delta, a.DELIVERIES, result="delivered") == 0
        and metric_sum(mid_delta, a.DEAD) == 0,
        f"retrying +{retrying_mid:g}, delivered +{metric_sum(mid_delta, a.DELIVERIES, result='delivered'):g}, "
        f"dead +{metric_sum(mid_delta, a.DEAD):g}",
    )
    ctx.check(
        "alert_notifications_pending shows the waiting notifications",
        mid.get(a.PENDING) == len(a.ALERTS),
        f"pending {mid.get(a.PENDING)}",
    )
    up_wall = now_ms()
    sink.up()
    ctx.note(f"sink up after {(ctx.elapsed_ms() - down_at) / 1000:.1f} s of outage ({retrying_mid:g} failed tries)")

    items = a.await_delivery(ctx, server, cfg.seconds(100, at_least=10))
    a.check_delivered_once(ctx, sink, items)
    early = [c for c in sink.calls if c.at_ms < up_wall]
    ctx.check("no call reached the sink while it was down", not early, f"{len(early)} early calls")
    ctx.check(
        "each notification was delivered after the sink came back",
        all(a.ms(i["delivered_at"]) >= up_wall for i in items),
        ", ".join(str(i["delivered_at"]) for i in items),
    )

    after = ctx.try_wait(lambda: a.settled(server.metrics()), cfg.seconds(50, at_least=5)) or server.metrics()
    ctx.record_deltas(before, after, ["faultlens_alert_"])
    delta = metric_delta(before, after)
    retrying = metric_sum(delta, a.DELIVERIES, result="retrying")
    delivered = metric_sum(delta, a.DELIVERIES, result="delivered")
    tries = sum(int(i["attempts"]) for i in items)
    ctx.check(
        "every try is counted: outbox tries == deliveries_total retrying + delivered",
        tries == retrying + delivered and delivered == len(sink.accepted()) == len(a.ALERTS),
        f"tries {tries}, retrying +{retrying:g}, delivered +{delivered:g}, accepted calls {len(sink.accepted())}",
    )
    ctx.check("nothing dead-lettered", metric_sum(delta, a.DEAD) == 0, f"dead +{metric_sum(delta, a.DEAD):g}")
    ctx.check("alert_notifications_pending back to 0", after.get(a.PENDING) == 0, f"pending {after.get(a.PENDING)}")
    waited = sum(a.ms(i["delivered_at"]) - a.ms(i["created_at"]) for i in items if i["delivered_at"]) / 1000
    lag_sum = metric_sum(delta, a.LAG_SUM)
    ctx.check(
        "notification_lag_seconds observed each delivery, the outage included",
        metric_sum(delta, a.LAG_COUNT) == len(items) and abs(lag_sum - waited) <= 0.1 * len(items),
        f"lag count +{metric_sum(delta, a.LAG_COUNT):g}, sum +{lag_sum:.3f} s, outbox says {waited:.3f} s",
    )
    lines = a.retry_lines(server, REFUSED)
    ctx.check(
        "one JSON warning per failed try, naming the receiver (never its URL)",
        len(lines) == retrying and not any(sink.url in str(x.get("msg")) for x in lines),
        f"{len(lines)} warnings, retrying +{retrying:g}",
    )
    ctx.add_log_lines(lines[:2])


DRILL = Drill(
    name="sink_down",
    title="Alert receiver down for a minute",
    shows=(
        "While the webhook sink refuses connections, alert notifications stay in the outbox with retries scheduled "
        "and counted (deliveries_total retrying, one warning per try); once it is back each is delivered exactly "
        "once, by notification id, and nothing is dead-lettered or lost."
    ),
    run=run,
)
