"""The readiness_evidence table (immutable evaluation records) and the event and alert reads readiness judges on."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from faultlens.errors import EvidenceNotFound
from faultlens.store.tables import alerts, events, readiness_evidence
from faultlens.timeutil import ms_to_rfc3339

_c = readiness_evidence.c
_e = events.c


def insert_evidence(conn: Connection, *, tenant: str, record: dict[str, Any], created_at: int) -> None:
    """Write one evaluation; nothing here updates or deletes a record (they are evidence)."""
    conn.execute(
        readiness_evidence.insert().values(
            id=record["id"],
            tenant=tenant,
            release=record["release"],
            environment=record["environment"],
            admitted=record["admitted"],
            replay_passed=record["replay_passed"],
            failed_checks=json.dumps(record["failed_checks"]),
            checks=json.dumps(record["checks"], ensure_ascii=False, sort_keys=True),
            inputs=json.dumps(record["inputs"], ensure_ascii=False, sort_keys=True),
            replay_report_id=record["replay_report_id"],
            requested_by=record["requested_by"],
            created_at=created_at,
        )
    )


def _record(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    inputs = json.loads(m["inputs"])
    checks = json.loads(m["checks"])
    return {
        "id": m["id"],
        "release": m["release"],
        "environment": m["environment"],
        "source": inputs.get("request", {}).get("source"),
        "window": inputs.get("window"),
        "admitted": bool(m["admitted"]),
        "enforced": bool(inputs.get("settings", {}).get("p6_readiness_required", True)),
        "replay_passed": bool(m["replay_passed"]),
        "replay_report_id": m["replay_report_id"],
        "failed_checks": json.loads(m["failed_checks"]),
        # The seven checks of document 004; the replay's judgement (its reason and evidence) is stored beside them.
        "replay": checks.pop("replay", None),
        "checks": checks,
        "inputs": inputs,
        "requested_by": m["requested_by"],
        "created_at": ms_to_rfc3339(m["created_at"]),
    }


def get_evidence(conn: Connection, *, tenant: str, evidence_id: str) -> dict[str, Any]:
    """One record; another tenant's id is as unknown as a missing one (EvidenceNotFound)."""
    row = conn.execute(select(readiness_evidence).where(_c.tenant == tenant, _c.id == evidence_id)).first()
    if row is None:
        raise EvidenceNotFound(f"no readiness evidence {evidence_id!r}", details={"id": evidence_id})
    return _record(row)


def list_evidence(
    conn: Connection, *, tenant: str, release: str | None = None, environment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    q = select(readiness_evidence).where(_c.tenant == tenant)
    if release is not None:
        q = q.where(_c.release == release)
    if environment is not None:
        q = q.where(_c.environment == environment)
    q = q.order_by(_c.created_at.desc(), _c.id).limit(limit)
    return [_record(r) for r in conn.execute(q)]


def _release_events(tenant: str, release: str, environment: str, source: str | None, since: int, until: int) -> Any:
    # occurred_at bounds first in spirit: PostgreSQL prunes the daily partitions on them.
    where = and_(
        _e.tenant == tenant,
        _e.occurred_at >= since,
        _e.occurred_at < until,
        _e.release == release,
        _e.environment == environment,
    )
    return where if source is None else and_(where, _e.source == source)


def release_counts(
    conn: Connection, *, tenant: str, release: str, environment: str, source: str | None, since: int, until: int
) -> dict[str, dict[str, int]]:
    """Per source: events, actionable failures and the attempt sum (an event without a number counts 0) of one
    release in one environment over [since, until)."""
    actionable = func.sum(case((and_(_e.failure_class != "none", _e.is_actionable.is_(True)), 1), else_=0))
    q = (
        select(_e.source, func.count(), actionable, func.coalesce(func.sum(_e.attempt), 0))
        .where(_release_events(tenant, release, environment, source, since, until))
        .group_by(_e.source)
    )
    return {
        s: {"total": int(n), "actionable": int(a or 0), "attempt_sum": int(att or 0)}
        for s, n, a, att in conn.execute(q)
    }


def release_durations(
    conn: Connection,
    *,
    tenant: str,
    release: str,
    environment: str,
    source: str | None,
    since: int,
    until: int,
    limit: int = 20_000,
) -> list[float]:
    """duration_ms of the release's newest `limit` events that carry one, in the window."""
    where = and_(_release_events(tenant, release, environment, source, since, until), _e.duration_ms.is_not(None))
    q = select(_e.duration_ms).where(where).order_by(_e.occurred_at.desc()).limit(limit)
    return [float(d) for d in conn.execute(q).scalars()]


def alert_names(conn: Connection, *, tenant: str) -> list[tuple[str, str]]:
    """(name, level) of every alert the tenant has had, in any state: the conditions that can page its people."""
    q = select(alerts.c.name, alerts.c.level).where(alerts.c.tenant == tenant).distinct()
    return sorted((str(n), str(level)) for n, level in conn.execute(q))
