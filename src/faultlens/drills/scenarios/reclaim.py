"""The `reclaim` drill: kill -9 the replica running a backfill; the other replica takes the job over and finishes it
from the checkpoint."""

from __future__ import annotations

import time
from typing import Any

from faultlens.drills.harness import Drill, DrillContext, Server, metric_sum
from faultlens.drills.scenarios import _backfill as bf
from faultlens.timeutil import now_ms

SOURCE = "drill-reclaim"
KILL_AT = 0.3  # the owner is killed once this share of the job is done


def _settings(ctx: DrillContext) -> dict[str, Any]:
    # Small batches make the job hundreds of checkpoints long, so the kill lands mid-job. SQLite pauses 20 ms
    # between batches (jobs/runner.default_pause); PostgreSQL does not, so its batches are smaller still.
    return {
        "backfill_batch_size": 10 if ctx.cfg.database == "sqlite" else 2,
        "rules_follow_interval_s": 0.5,  # the survivor adopts the activation (and may work its job) within this
        "start_alerting": False,
        "start_release_analyzer": False,
    }


def _sample(server: Server, job_id: str, samples: list[tuple[int, int, str]]) -> dict[str, Any]:
    found = bf.job(server, job_id)
    samples.append((now_ms(), int(found["progress"]["done"]), str(found["state"])))
    return found


def run(ctx: DrillContext) -> None:
    settings = _settings(ctx)
    first = ctx.start_server(name="replica1", start=False, **settings)
    second = ctx.start_server(name="replica2", same_database_as=first, start=False, **settings)
    bf.start_together(ctx, [first, second])
    replicas = {first.pid: first, second.pid: second}

    # A job of about 120 batches in fast mode (ten times as many at full scale).
    n = int(ctx.cfg.seconds(12_000, at_least=1_200))
    events = bf.mixed_events(n, SOURCE, prefix="rc-")
    markers = bf.count_kind(events, "marker")
    accepted = bf.ingest(ctx, first, events)
    ctx.note(f"{accepted} events stored on the shared database ({markers} that the drill pack moves)")
    ctx.check("every event accepted", accepted == n, f"{accepted} of {n}")
    planned = bf.preview(first)
    ctx.note(f"preview: {planned['total_examined']} examined, {planned['total_changed']} would change")

    before = {s.name: s.metrics() for s in (first, second)}
    answer = first.post("/api/v1/rules/activate", json=bf.PACK)
    answer.raise_for_status()
    job_id = str(answer.json()["backfill"]["id"])
    ctx.note(f"pack {bf.PACK_ID} activated on {first.name}: backfill job {job_id}")

    # Whoever claims the job is the owner; the drill kills it once KILL_AT of the job is done.
    samples: list[tuple[int, int, str]] = []

    def mid_job() -> dict[str, Any] | None:
        found = _sample(first, job_id, samples)
        total = int(found["progress"]["total"])
        running = found["state"] == "running" and total > 0
        return found if running and found["progress"]["done"] >= KILL_AT * total else None

    seen = ctx.wait_until(mid_job, ctx.cfg.seconds(300, at_least=20), "the backfill a third done", every_s=0.02)
    opened = ctx.wait_until(
        lambda: [c for s in (first, second) for c in bf.claims(s, job_id)], 5, "the owner's claim line"
    )
    owner_claim = opened[0]
    owner = replicas.get(owner_claim.pid)
    if owner is None:
        ctx.check("the claim names a replica's pid", False, owner_claim.owner)
        return
    survivor = second if owner is first else first
    done_seen = int(seen["progress"]["done"])
    owner.kill9()
    killed_at = now_ms()
    ctx.note(f"kill -9 {owner.name} (pid {owner.pid}, owner {owner_claim.owner}) with {done_seen} of {n} done")

    # The stuck state as an operator sees it on the survivor: the job still "running", its progress frozen.
    stuck = survivor.metrics()
    stuck_running = metric_sum(stuck, "faultlens_jobs_running", kind="backfill")
    stuck_ratio = metric_sum(stuck, "faultlens_jobs_progress_ratio", kind="backfill")
    ctx.note(f"{survivor.name} /metrics right after the kill: jobs_running {stuck_running:g}, ratio {stuck_ratio:.3f}")
    ctx.check(
        "after the kill the job still shows running, unfinished (jobs_running=1, progress_ratio<1)",
        stuck_running == 1 and 0 < stuck_ratio < 1,
        f"jobs_running {stuck_running:g}, jobs_progress_ratio {stuck_ratio:.3f}",
    )

    after_kill: list[tuple[int, int, str]] = []

    def finished() -> bool:
        return _sample(survivor, job_id, after_kill)["state"] not in ("pending", "running")

    ctx.wait_until(finished, ctx.cfg.seconds(300, at_least=25), "the survivor finishing the job", every_s=0.05)
    final = bf.job(survivor, job_id)
    progress = final["progress"]
    ctx.note(f"job {final['state']} on {survivor.name}: {progress}")

    taken = [c for c in bf.claims(survivor, job_id) if c.pid == survivor.pid]
    ctx.add_log_lines([owner_claim.line, *(c.line for c in taken)])
    ctx.check(
        "the job's owner changed (claim lines: killed pid, then the survivor's)",
        bool(taken) and taken[-1].owner != owner_claim.owner and owner_claim.pid == owner.pid,
        f"{owner_claim.owner} at checkpoint {owner_claim.checkpoint} -> "
        + (f"{taken[-1].owner} at checkpoint {taken[-1].checkpoint}" if taken else "no claim by the survivor"),
    )
    resumed = taken[-1].checkpoint if taken else 0
    # With one tenant's events, pks 1..n, the checkpoint (last pk done) equals the rows done.
    ctx.check(
        "resumed from the checkpoint, not from zero",
        owner_claim.checkpoint == 0 and done_seen <= resumed < n,
        f"survivor claimed at checkpoint {resumed}; {done_seen} seen done before the kill; {n} events",
    )
    ctx.check(
        "done == total == events, each examined once",
        final["state"] == "done" and progress["done"] == progress["total"] == n,
        f"state {final['state']}, done {progress['done']}, total {progress['total']}, events {n}",
    )
    ctx.check(
        "changed == preview's total_changed == markers sent",
        progress["changed"] == planned["total_changed"] == markers,
        f"changed {progress['changed']}, preview {planned['total_changed']}, markers {markers}",
    )

    # The gap: between the kill and the survivor's claim nothing moved.
    claim_at = taken[-1].at_ms if taken else 0
    frozen = {done for at, done, _ in after_kill if at < claim_at}
    gap_ms = claim_at - killed_at
    ctx.note(f"gap: {gap_ms} ms from the kill to {survivor.name}'s claim; progress during it {sorted(frozen)}")
    ctx.check(
        "the gap is visible: the claim logged after the kill, progress frozen until then",
        claim_at >= killed_at - 50 and len(frozen) <= 1 and all(done <= resumed for done in frozen),
        f"claim {gap_ms} ms after the kill, done while waiting {sorted(frozen) or 'not sampled'}",
    )

    after = survivor.metrics()
    ctx.record_deltas(before[survivor.name], after, ["faultlens_jobs_"])
    finished_here = metric_sum(after, "faultlens_jobs_run_total", kind="backfill") - metric_sum(
        before[survivor.name], "faultlens_jobs_run_total", kind="backfill"
    )
    ratio = metric_sum(after, "faultlens_jobs_progress_ratio", kind="backfill")
    ctx.check(
        f"{survivor.name} finished it: jobs_run_total{{kind=backfill}} +1, progress_ratio 1",
        finished_here == 1 and ratio == 1,
        f"jobs_run_total delta {finished_here:g}, jobs_progress_ratio {ratio:g}",
    )

    # Nothing left behind: every event is there and a preview of the active pack moves nothing more.
    again = bf.preview(survivor)
    ctx.lost += max(0, n - int(again["total_examined"]))
    ctx.check(
        "after the takeover nothing is left to reclassify",
        again["total_changed"] == 0 and again["total_examined"] == n,
        f"preview: {again['total_examined']} examined, {again['total_changed']} would change",
    )
    ctx.note(f"{len(samples) + len(after_kill)} job samples over {(time.monotonic() - ctx.started):.1f} s")


DRILL = Drill(
    name="reclaim",
    title="Stuck and reclaim: kill -9 of the replica running a backfill",
    shows="A backfill whose process is killed -9 is claimed by another replica (new owner in its claim log line) "
    "and finished from its checkpoint: done == total == events, changes as previewed, the gap frozen in the logs.",
    run=run,
)
