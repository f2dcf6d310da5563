"""Event reads the API answers: filtered cursor pages, and one event with its related events and its provenance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from faultlens.store import events as event_store
from faultlens.store.backfills import find_confirmed_version
from faultlens.store.events import EventFilter

__all__ = ["EventFilter", "event_detail", "list_events"]


def list_events(
    conn: Connection, *, tenant: str, flt: EventFilter, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events, newest first, and the cursor of the next page (None on the last)."""
    return event_store.list_events(conn, tenant=tenant, flt=flt, limit=limit, cursor=cursor)


def event_detail(conn: Connection, *, tenant: str, event_id: str) -> dict[str, Any]:
    """The event (EventNotFound if the tenant has none of that id) with `related`, `fingerprint` and
    `confirmed_by_version`."""
    event = event_store.get_event(conn, tenant=tenant, event_id=event_id)
    event["related"] = event_store.list_related(conn, tenant=tenant, event=event)
    event["fingerprint"] = event_store.find_fingerprint(conn, tenant=tenant, fingerprint_id=event["fingerprint_id"])
    # rule_version: the pack that decided when the row was last written; this: the newest backfill since.
    event["confirmed_by_version"] = find_confirmed_version(conn, tenant=tenant, event_id=event["id"])
    return event
