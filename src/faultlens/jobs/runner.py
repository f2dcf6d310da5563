"""The job runner: claims jobs under a cross-process lock and works them in checkpointed batches."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from faultlens import request_context
from faultlens.jobs import backfill, partition_events, rollup_rebuild
from faultlens.jobs.queue import Handler, Job, JobKind, JobState, find_active, find_job, get_job
from faultlens.store import jobs as job_rows
from faultlens.store.state import write_lock
from faultlens.timeutil import now_ms

if TYPE_CHECKING:
    from faultlens.services import Services

log = logging.getLogger("faultlens.jobs")

Progress = Callable[[Job], None]

DEFAULT_STALE_S = 30.0
DEFAULT_POLL_S = 1.0
_RETRIES = 5

HANDLERS: dict[str, Handler] = {
    JobKind.BACKFILL.value: backfill.BackfillHandler(),
    JobKind.ROLLUP_REBUILD.value: rollup_rebuild.RollupRebuildHandler(),
    JobKind.PARTITION_EVENTS.value: partition_events.PartitionEventsHandler(),
}
# Both kinds rewrite rollups relative to what events hold; run together, one would count the other's
# half-done work twice, so at most one of them runs at a time (in any process). The partitioning copy joins
# them: a backfill rewriting rows it has already copied would be lost at its swap.
_EXCLUSIVE = (JobKind.BACKFILL.value, JobKind.ROLLUP_REBUILD.value, JobKind.PARTITION_EVENTS.value)
_HOST = socket.gethostname()[:40]


class JobLost(Exception):
    """Another runner took the job over (this one was presumed dead) or it was superseded."""


def make_owner() -> str:
    """host/pid/token: unique per runner, and enough to tell a dead owner on this host."""
    return f"{_HOST}/{os.getpid()}/{secrets.token_hex(4)}"


def owner_dead(owner: str | None) -> bool:
    """True only when the owner certainly died: a process of this host that no longer exists."""
    if not owner:
        return True
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claimable(job: Job, *, now: int, stale_ms: int) -> bool:
    if job.state == JobState.PENDING:
        return True
    if job.state != JobState.RUNNING:
        return False
    return job.heartbeat_at is None or job.heartbeat_at < now - stale_ms or owner_dead(job.owner)


def _others_running(conn: Connection, job: Job, *, now: int, stale_ms: int) -> bool:
    running = job_rows.list_running(conn, kinds=_EXCLUSIVE, other_than=job.id)
    return any(not claimable(other, now=now, stale_ms=stale_ms) for other in running)


def claim(services: Services, job: Job, owner: str, *, stale_s: float = DEFAULT_STALE_S) -> Job | None:
    """Take `job` for `owner` if it is pending or its owner is gone; None when someone else has it.

    Claims are serialised by a database lock (advisory on PostgreSQL, the write lock on SQLite), and the
    UPDATE compares the row with what was read, so exactly one runner wins. On a first claim the handler
    prepares the job (total, limits) in the same transaction.
    """
    handler = HANDLERS[job.kind]
    stale_ms = int(stale_s * 1000)
    now = now_ms()
    with services.engine.begin() as conn:
        write_lock(conn)
        current = find_job(conn, job.id)
        if current is None or not claimable(current, now=now, stale_ms=stale_ms):
            return None
        if current.kind in _EXCLUSIVE and _others_running(conn, current, now=now, stale_ms=stale_ms):
            return None
        if current.kind == JobKind.BACKFILL and find_active(conn, JobKind.PARTITION_EVENTS) is not None:
            return None  # not even between the copy's batches (a stopped copy resumes later): it goes first
        if not job_rows.take_job(conn, current, owner=owner, now=now):
            return None
        claimed = get_job(conn, current.id)
        values = handler.prepare(conn, claimed, services)
        if values:
            job_rows.update_job(conn, claimed.id, values)
            claimed = get_job(conn, claimed.id)
    log.info("job %s (%s) claimed by %s at checkpoint %d", claimed.id, claimed.kind, owner, claimed.checkpoint)
    return claimed


def release(engine: Engine, job_id: str, owner: str) -> None:
    """Hand a running job back to the queue (graceful stop): the next runner resumes at its checkpoint."""
    with engine.begin() as conn:
        job_rows.release_job(conn, job_id, owner=owner)


def fail(engine: Engine, job_id: str, owner: str | None, message: str) -> None:
    with engine.begin() as conn:
        job_rows.fail_job(conn, job_id, owner=owner, message=message)


def _batch(services: Services, handler: Handler, job_id: str, owner: str, batch_size: int) -> Job:
    now = now_ms()
    with services.engine.begin() as conn:
        # The fence: a runner presumed dead (or a superseded job) finds the row changed and stops here, so
        # two runners never both apply a batch. On PostgreSQL it also locks the row until commit.
        if not job_rows.beat_job(conn, job_id, owner=owner, now=now):
            raise JobLost(job_id)
        job = get_job(conn, job_id)
        step = handler.step(conn, job, services, batch_size)
        if step.finished:
            handler.finish(conn, job, services)
            values: dict[str, object] = {
                "state": JobState.DONE.value,
                "finished_at": now,
                "total": job.done,
                "owner": None,
            }
        else:
            params = {**job.params, **step.params, "changed": int(job.params.get("changed", 0)) + step.changed}
            values = {
                "checkpoint": step.checkpoint,
                "done": job.done + step.examined,
                "total": job.total + step.more_total,
                "params": params,
            }
        job_rows.update_job(conn, job_id, values)
        return get_job(conn, job_id)


def default_pause(engine: Engine) -> float:
    # SQLite has one writer: a pause after each batch lets ingest, waiting on busy_timeout, take the lock.
    return 0.02 if engine.dialect.name == "sqlite" else 0.0


def run_job(
    services: Services,
    job: Job,
    owner: str,
    *,
    stop: threading.Event | None = None,
    pause_s: float | None = None,
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> Job:
    """Work a job this owner has claimed until it is done, failed, lost, blocked or `stop` is set."""
    # Every log line of the job (its handler's too) carries its id and tenant (faultlens.logs).
    with request_context.scope(job_id=job.id, tenant_id=job.tenant):
        return _work(services, job, owner, stop=stop, pause_s=pause_s, batch_size=batch_size, on_progress=on_progress)


def _work(
    services: Services,
    job: Job,
    owner: str,
    *,
    stop: threading.Event | None,
    pause_s: float | None,
    batch_size: int | None,
    on_progress: Progress | None,
) -> Job:
    handler = HANDLERS[job.kind]
    stop = stop or threading.Event()
    size = max(1, batch_size or services.settings.backfill_batch_size)
    pause = default_pause(services.engine) if pause_s is None else pause_s
    retries = 0
    while True:
        if stop.is_set():
            release(services.engine, job.id, owner)
            break
        reason = handler.blocked(job, services)
        if reason is not None:
            log.info("job %s released: %s", job.id, reason)
            release(services.engine, job.id, owner)
            break
        try:
            job = _batch(services, handler, job.id, owner, size)
            retries = 0
        except JobLost:
            log.warning("job %s was taken over or superseded; this runner stops working it", job.id)
            break
        except OperationalError as exc:
            # Busy, deadlock or a dropped connection: the batch rolled back; try again, then give up for now.
            retries += 1
            if retries > _RETRIES:
                # If even that fails, the heartbeat goes stale and another runner resumes the job.
                with contextlib.suppress(OperationalError):
                    release(services.engine, job.id, owner)
                raise
            log.warning("job %s: batch failed (%s); retry %d", job.id, exc.orig, retries)
            stop.wait(0.1 * 2**retries)
            continue
        except Exception as exc:
            log.exception("job %s failed", job.id)
            fail(services.engine, job.id, owner, f"{type(exc).__name__}: {exc}")
            break
        if on_progress is not None:
            on_progress(job)
        if job.state != JobState.RUNNING:
            return job
        if pause:
            stop.wait(pause)
        else:
            time.sleep(0)  # let other threads (the API) run between batches
    with services.engine.connect() as conn:
        return find_job(conn, job.id) or job


def _candidates(services: Services) -> list[Job]:
    with services.engine.connect() as conn:
        found = job_rows.list_oldest_active(conn, kinds=list(HANDLERS), limit=100)
    # The partitioning copy goes first (backfills wait for it), then a rollup rebuild: until it is done, stats read
    # incomplete rollups.
    return sorted(found, key=lambda j: (j.kind != JobKind.PARTITION_EVENTS, j.kind != JobKind.ROLLUP_REBUILD))


def run_pending(
    services: Services,
    owner: str,
    *,
    stop: threading.Event | None = None,
    stale_s: float = DEFAULT_STALE_S,
    pause_s: float | None = None,
    batch_size: int | None = None,
) -> Job | None:
    """Claim and work the first job this process can take; returns it (in its final state) or None."""
    now = now_ms()
    for job in _candidates(services):
        if not claimable(job, now=now, stale_ms=int(stale_s * 1000)):
            continue
        if HANDLERS[job.kind].blocked(job, services) is not None:
            continue
        with request_context.scope(job_id=job.id, tenant_id=job.tenant):
            claimed = claim(services, job, owner, stale_s=stale_s)
        if claimed is not None:
            ended = run_job(services, claimed, owner, stop=stop, pause_s=pause_s, batch_size=batch_size)
            if ended.state in (JobState.DONE, JobState.FAILED):
                services.metrics.jobs_run.labels(ended.kind).inc()
                if ended.state == JobState.FAILED:
                    services.metrics.jobs_failed.labels(ended.kind).inc()
            return ended
    return None


def run_until_idle(
    services: Services,
    *,
    owner: str | None = None,
    stale_s: float = DEFAULT_STALE_S,
    pause_s: float | None = None,
    batch_size: int | None = None,
) -> list[Job]:
    """Work every job this process can take, in the foreground (CLI, tests); returns them as they ended."""
    owner = owner or make_owner()
    ended: list[Job] = []
    rollup_rebuild.ensure_rollup_rebuild(services.engine)
    while True:
        job = run_pending(services, owner, stale_s=stale_s, pause_s=pause_s, batch_size=batch_size)
        if job is None:
            return ended
        ended.append(job)
        if job.state not in (JobState.DONE, JobState.FAILED):
            return ended  # lost or handed back: another runner has it


def _loop(services: Services, owner: str, stop: threading.Event, poll_s: float, stale_s: float) -> None:
    synced = False
    while not stop.is_set():
        job: Job | None = None
        try:
            # A pack activated on another replica: classify and backfill with it. First, so that a process
            # built just before an activation never records its older version over the new one.
            services.follow_rules()
            if not synced:
                services.record_rule_version()
                synced = True
            rollup_rebuild.ensure_rollup_rebuild(services.engine)
            job = run_pending(services, owner, stop=stop, stale_s=stale_s)
            services.metrics.loop_pass("job_runner", ok=True)
        except Exception:
            log.exception("job runner pass failed; retrying in %.1fs", poll_s)
            services.metrics.loop_pass("job_runner", ok=False)
        if job is None or job.state != JobState.DONE:
            stop.wait(poll_s)


def start_runner(
    services: Services, *, poll_interval_s: float = DEFAULT_POLL_S, stale_after_s: float = DEFAULT_STALE_S
) -> Callable[[], None]:
    """Start the job runner in a daemon thread (start-up never waits for it); returns its stop function."""
    from faultlens.jobs.metrics import register_metrics

    register_metrics(services)
    services.metrics.loop_started("job_runner")
    stop = threading.Event()
    owner = make_owner()
    thread = threading.Thread(
        target=_loop, args=(services, owner, stop, poll_interval_s, stale_after_s), name="faultlens-jobs", daemon=True
    )
    thread.start()

    def stop_runner() -> None:
        stop.set()
        thread.join(timeout=30)
        if thread.is_alive():
            log.warning("job runner did not stop within 30s; its job resumes from the checkpoint next time")

    return stop_runner


def wait_for(services: Services, job_id: str, *, timeout_s: float, poll_s: float = 0.05) -> Job:
    """Poll until the job leaves pending/running or the deadline passes (returns it either way)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with services.engine.connect() as conn:
            job = get_job(conn, job_id)
        if not job.active or time.monotonic() >= deadline:
            return job
        time.sleep(poll_s)
