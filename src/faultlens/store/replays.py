"""The replay_reports table: immutable replay reports, written once, read by id and newest first per release."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from faultlens.errors import ReplayReportNotFound
from faultlens.store.tables import replay_reports
from faultlens.timeutil import ms_to_rfc3339

_c = replay_reports.c
# What a list answers per report: the columns, not the stored document (its per-request results can be long).
_SUMMARY = (
    _c.id,
    _c.release,
    _c.environment,
    _c.suite,
    _c.suite_version,
    _c.target,
    _c.passed,
    _c.total,
    _c.failed,
    _c.p95_ms,
    _c.rule_version,
    _c.requested_by,
    _c.started_at,
    _c.finished_at,
)


def insert_report(conn: Connection, *, tenant: str, report: dict[str, Any], started_at: int, finished_at: int) -> None:
    conn.execute(
        replay_reports.insert().values(
            id=report["id"],
            tenant=tenant,
            release=report["release"],
            environment=report["environment"],
            suite=report["suite"],
            suite_version=report["suite_version"],
            target=report["target"],
            passed=report["passed"],
            total=report["total"],
            failed=report["counts"]["failed"] + report["counts"]["not_run"],
            p95_ms=report["p95_ms"],
            rule_version=report["rule_version"],
            report=json.dumps(report, ensure_ascii=False),
            requested_by=report["requested_by"],
            started_at=started_at,
            finished_at=finished_at,
        )
    )


def get_report(conn: Connection, *, tenant: str, report_id: str) -> dict[str, Any]:
    """The stored report; another tenant's id is unknown here (ReplayReportNotFound), as a missing one."""
    text = conn.execute(select(_c.report).where(_c.tenant == tenant, _c.id == report_id)).scalar()
    if text is None:
        raise ReplayReportNotFound(f"no replay report {report_id!r}", details={"id": report_id})
    report: dict[str, Any] = json.loads(text)
    return report


def _summary(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["passed"] = bool(out["passed"])
    out["started_at"] = ms_to_rfc3339(out["started_at"])
    out["finished_at_ms"] = out["finished_at"]
    out["finished_at"] = ms_to_rfc3339(out["finished_at"])
    return out


def list_reports(
    conn: Connection, *, tenant: str, release: str | None = None, environment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Report summaries, newest first (finished_at_ms is the sort key, for callers comparing with other records)."""
    q = select(*_SUMMARY).where(_c.tenant == tenant)
    if release is not None:
        q = q.where(_c.release == release)
    if environment is not None:
        q = q.where(_c.environment == environment)
    q = q.order_by(_c.finished_at.desc(), _c.id).limit(limit)
    return [_summary(r) for r in conn.execute(q)]


def find_summary(conn: Connection, *, tenant: str, report_id: str) -> dict[str, Any]:
    row = conn.execute(select(*_SUMMARY).where(_c.tenant == tenant, _c.id == report_id)).first()
    if row is None:
        raise ReplayReportNotFound(f"no replay report {report_id!r}", details={"id": report_id})
    return _summary(row)
