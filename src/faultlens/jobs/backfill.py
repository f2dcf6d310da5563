"""Backfill: reclassify stored events with the active rules, batch by batch, keeping rollups exact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from faultlens.jobs.queue import Job, JobKind, Step, enqueue, find_active
from faultlens.model import decision
from faultlens.store import event_batches, rollup_shapes, rollup_writes
from faultlens.store.backfills import record_backfills
from faultlens.store.jobs import fail_active_jobs
from faultlens.store.state import ACTIVE_RULE_VERSION, find_state, save_state

if TYPE_CHECKING:
    from faultlens.services import Services

DERIVED = ("failure_kind", "failure_class", "is_actionable", "category", "retryable", "rule_name", "rule_version")
# A row is written (all of DERIVED, rule_version included) only when its model.DECISION differs; the rows left
# alone are answered for by rule_backfills (confirmed_by_version).
_BOOLS = ("is_actionable", "retryable")
_ROLLED_UP = ("failure_class", "failure_kind", "category", "is_actionable")  # derived fields in the rollup key
# What rollups key on, what the classifier reads, and the derived fields being replaced.
_COLUMNS = tuple(dict.fromkeys(("pk", *rollup_shapes.ROW_FIELDS, "http_status", "error_message", *DERIVED)))


def _derived(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(bool(row[n]) if n in _BOOLS else row[n] for n in DERIVED)


def reclassify_batch(
    conn: Connection,
    services: Services,
    *,
    after_pk: int,
    until_pk: int,
    limit: int,
    tenant: str | None = None,
    versions: dict[str, str] | None = None,
) -> Step:
    """Reclassify events with after_pk < pk <= until_pk (at most `limit`; one tenant's, or every tenant's with
    its own rules when `tenant` is None), in the caller's transaction.

    Only rows whose classification (DECISION) changes are written, and the rollups move by exactly those rows
    (old values out, new ones in, in one sorted upsert so concurrent ingest cannot deadlock against it).
    `versions` collects the rule version each tenant met was classified with.
    """
    rows = event_batches.list_events_after(
        conn, columns=_COLUMNS, after_pk=after_pk, until_pk=until_pk, limit=limit, tenant=tenant
    )
    if not rows:
        return Step(finished=True)
    new_rows: list[dict[str, Any]] = []
    moved_old: list[dict[str, Any]] = []
    moved_new: list[dict[str, Any]] = []
    classifiers: dict[str, Any] = {}
    for row in rows:
        new = dict(row)
        owner = row["tenant"]
        classifier = classifiers.get(owner)
        if classifier is None:
            classifier = classifiers[owner] = services.pipeline.classifier_for(owner)
        services.pipeline.classify_row(new, classifier)
        if decision(new) != decision(row):
            new_rows.append(new)
            if any(new[n] != row[n] for n in _ROLLED_UP):
                moved_old.append(row)
                moved_new.append(new)
    if new_rows:
        # Changed rows mostly share their new derived values (a whole batch of successes is restamped
        # alike), so one UPDATE per distinct value set beats one per row.
        by_values: dict[tuple[Any, ...], list[int]] = {}
        for r in new_rows:
            by_values.setdefault(_derived(r), []).append(int(r["pk"]))
        times = [int(r["occurred_at"]) for r in new_rows]
        between = (min(times), max(times))
        for values, pks in by_values.items():
            event_batches.rewrite_events(conn, pks, dict(zip(DERIVED, values, strict=True)), occurred_between=between)
        counts, attempts = rollup_writes.deltas(moved_old, -1)
        new_counts, new_attempts = rollup_writes.deltas(moved_new, +1)
        counts.update(new_counts)  # Counter.update adds, keeping negative and zero results
        attempts.update(new_attempts)
        rollup_writes.apply_deltas(conn, counts, attempts)
    if versions is not None:
        versions.update((t, c.version) for t, c in classifiers.items())
    return Step(examined=len(rows), changed=len(new_rows), checkpoint=int(rows[-1]["pk"]))


def expected_version(services: Services, tenant: str | None) -> str:
    """The rule version this process classifies a backfill's events with: the tenant's stack, or the global one."""
    classifier = services.pipeline.classifier if tenant is None else services.pipeline.classifier_for(tenant)
    return str(classifier.version)


class BackfillHandler:
    kind = JobKind.BACKFILL

    def blocked(self, job: Job, services: Services) -> str | None:
        version = expected_version(services, job.tenant)
        if job.rule_version != version:
            return f"the job is for rule version {job.rule_version}; this process classifies with {version}"
        return None

    def prepare(self, conn: Connection, job: Job, services: Services) -> dict[str, Any]:
        if "until_pk" in job.params:
            return {}
        # Rows after this were ingested once the new rules were live (the job is claimed at least a poll
        # interval after activation), so the backfill has a fixed end and a meaningful total.
        until = event_batches.max_event_pk(conn)
        total = event_batches.count_events_between(conn, until_pk=until, tenant=job.tenant)
        return {"params": {**job.params, "until_pk": until}, "total": total}

    def step(self, conn: Connection, job: Job, services: Services, batch_size: int) -> Step:
        until = int(job.params["until_pk"])
        versions: dict[str, str] = dict(job.params.get("versions", {}))
        step = reclassify_batch(
            conn,
            services,
            after_pk=job.checkpoint,
            until_pk=until,
            limit=batch_size,
            tenant=job.tenant,
            versions=versions,
        )
        if step.finished and not job.params.get("tail_checked"):
            # An ingest batch classified just before the swap may have committed after until_pk was read:
            # the rows that arrived meanwhile are looked at once more (most are already current: no writes).
            latest = event_batches.max_event_pk(conn)
            extra = event_batches.count_events_between(conn, after_pk=until, until_pk=latest, tenant=job.tenant)
            return Step(
                checkpoint=job.checkpoint,
                params={"until_pk": max(until, latest), "tail_checked": True},
                more_total=extra,
            )
        if step.finished:
            return step
        return replace(step, params={**step.params, "versions": versions})

    def finish(self, conn: Connection, job: Job, services: Services) -> None:
        """Record, per tenant met, that every event up to until_pk now carries what `to_version` decides."""
        versions: dict[str, str] = job.params.get("versions", {})
        if not versions:
            return
        record_backfills(
            conn,
            job_id=job.id,
            from_version=job.params.get("previous_version"),
            until_pk=int(job.params["until_pk"]),
            versions=versions,
        )


def request_backfill(
    conn: Connection,
    version: str,
    *,
    tenant: str | None = None,
    previous: str | None = None,
    force: bool = False,
) -> Job | None:
    """Enqueue the backfill a rule change needs; returns it (new or already queued), or None when none is needed.

    Call inside a transaction that holds `store.state.write_lock`.

    Global (`tenant` None): records `version` as the global stack history is (being) classified with and, when it
    changed (or `force`), enqueues one job over every tenant's events, each classified with its tenant's rules (a
    tenant's own pack layers over the global ones, so a global change reaches every tenant). It supersedes every
    queued backfill, the tenants' included: it covers their events with their current rules.

    Tenant: enqueues a job over that tenant's events only (`previous` is the version it replaces), superseding
    that tenant's queued backfills. Superseded jobs would stamp rows with rules no longer active.
    """
    if tenant is None:
        stored = find_state(conn, ACTIVE_RULE_VERSION)
        active = find_active(conn, JobKind.BACKFILL, global_only=True)
        if stored == version and not force:
            return active if active is not None and active.rule_version == version else None
        if stored != version:
            save_state(conn, ACTIVE_RULE_VERSION, version)
        previous = stored
    fail_active_jobs(
        conn, kind=JobKind.BACKFILL.value, tenant=tenant, message=f"superseded: rule version {version} was activated"
    )
    if not event_batches.any_events(conn, tenant=tenant):
        return None  # nothing stored yet: every event will be classified by `version` at ingest
    return enqueue(conn, JobKind.BACKFILL, rule_version=version, params={"previous_version": previous}, tenant=tenant)
