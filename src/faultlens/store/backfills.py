"""rule_backfills: which completed backfill's rules stand behind each stored event's classification."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, select

from faultlens.store.tables import events, rule_backfills
from faultlens.timeutil import now_ms


def record_backfills(
    conn: Connection, *, job_id: str, from_version: str | None, until_pk: int, versions: Mapping[str, str]
) -> None:
    """Record, per tenant of `versions` (tenant -> rule version), that its events up to until_pk were examined."""
    if not versions:
        return
    now = now_ms()
    conn.execute(
        rule_backfills.insert(),
        [
            {
                "job_id": job_id,
                "tenant": tenant,
                "from_version": from_version,
                "to_version": version,
                "until_pk": until_pk,
                "completed_at": now,
            }
            for tenant, version in sorted(versions.items())
        ],
    )


def find_confirmed_version(conn: Connection, *, tenant: str, event_id: str) -> str | None:
    """The rules of the newest completed backfill that examined this event, or None when none has since it was
    stored."""
    pk = select(events.c.pk).where(events.c.tenant == tenant, events.c.id == event_id).scalar_subquery()
    found = conn.execute(
        select(rule_backfills.c.to_version)
        .where(rule_backfills.c.tenant == tenant, rule_backfills.c.until_pk >= pk)
        .order_by(rule_backfills.c.completed_at.desc(), rule_backfills.c.job_id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)
