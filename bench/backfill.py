"""Backfill after a rule-pack activation: the job (checkpointed batches, rollups moved) vs a bare UPDATE loop.

Usage: .venv/bin/python bench/backfill.py [--events 1000000] [--pg] [--workdir /tmp/faultlens-bench]
The data set is bench/query.py's (`faultlens demo --events N --days 90`, built when missing). Each side works
on its own copy. The job side activates a small pack layered on the default one and runs the job with no pause
between batches; it writes only the rows whose decision (jobs.backfill.DECISION: every derived field but
rule_version) changes. The baseline reclassifies the same rows with the same classifier, compares the same
decision fields, and writes those rows with executemany UPDATEs, 1,000 per transaction, without rollups or
checkpoints: the floor a backfill cannot go below. Both sides print the rows they wrote, which must agree.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drop_pg, machine, pg_database
from faultlens.jobs.backfill import DERIVED
from faultlens.jobs.runner import run_until_idle
from faultlens.model import decision
from faultlens.rulepacks import activation
from faultlens.services import Services, build_services
from faultlens.settings import Settings
from faultlens.store.tables import events
from query import build

PACK: dict[str, Any] = {
    "id": "bench@2026-11-22",
    "description": "a closed downstream is the proxy's own failure",
    "rules": [
        {
            "name": "closed_is_ours",
            "match": {"text": ["downstream_closed"]},
            "failure_kind": "proxy_closed",
            "failure_class": "service_failure",
            "category": "dependency_error",
            "examples": [{"error_message": "downstream_closed"}],
        }
    ],
}
_READ = ("pk", "source", "operation", "item_type", "status", "http_status", "error_code", "error_message", *DERIVED)


def copy_sqlite(source: Path, target: Path) -> str:
    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def settled(url: str) -> Services:
    """Services on `url` with every pending job (e.g. the rollup rebuild after an upgrade) already done."""
    services = build_services(Settings(database_url=url, start_jobs=False))
    run_until_idle(services, pause_s=0)
    return services


def run_job(url: str) -> tuple[float, int]:
    services = settled(url)
    job = activation.activate(services, activation.parse_pack(PACK), PACK).job
    assert job is not None, "the activation queued no backfill"
    started = time.perf_counter()
    ended = run_until_idle(services, pause_s=0)
    seconds = time.perf_counter() - started
    services.engine.dispose()
    mine = [j for j in ended if j.id == job.id]
    assert mine and mine[0].state == "done", ended
    return seconds, int(mine[0].params.get("changed", 0))


def run_baseline(url: str) -> tuple[float, int]:
    services = settled(url)
    candidate = activation.candidate_classifier(activation.parse_pack(PACK))
    services.pipeline.classifier = candidate
    sets = ", ".join(f"{name} = :{name}" for name in DERIVED)
    update = text(f"UPDATE events SET {sets} WHERE pk = :pk")
    started = time.perf_counter()
    changed = 0
    last = 0
    with services.engine.connect() as conn:
        while True:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(*(events.c[n] for n in _READ)).where(events.c.pk > last).order_by(events.c.pk).limit(1000)
                ).mappings()
            ]
            if not rows:
                break
            last = rows[-1]["pk"]
            moved = []
            for row in rows:
                before = decision(row)
                services.pipeline.classify_row(row)
                if decision(row) != before:
                    moved.append({"pk": row["pk"], **{n: row[n] for n in DERIVED}})
            if moved:
                conn.execute(update, moved)
            conn.commit()
            changed += len(moved)
    seconds = time.perf_counter() - started
    services.engine.dispose()
    return seconds, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (FAULTLENS_TEST_PG admin URL) instead of SQLite")
    parser.add_argument("--workdir", type=Path, default=Path("data/bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    if args.pg:
        template = f"faultlens_bench_{args.events}"
        print(f"data set: {build(pg_database(template), args.events)}")
        names = ("faultlens_bench_backfill_job", "faultlens_bench_backfill_base")
        try:
            job_s, job_n = run_job(pg_database(names[0], fresh=True, template=template))
            base_s, base_n = run_baseline(pg_database(names[1], fresh=True, template=template))
        finally:
            for name in names:
                drop_pg(name)
    else:
        source = (args.workdir / f"sqlite-{args.events}.db").resolve()
        print(f"data set: {build(f'sqlite:///{source}', args.events)}")
        job_s, job_n = run_job(copy_sqlite(source, args.workdir / "backfill-job.db"))
        base_s, base_n = run_baseline(copy_sqlite(source, args.workdir / "backfill-base.db"))
    print(f"events: {args.events:,}; rows written: job {job_n:,}, baseline {base_n:,}")
    if job_n != base_n:
        print("warning: the two sides wrote different row counts; the times are not comparable")
    print(f"backfill job (rollups, checkpoints) : {job_s:8.1f} s  ({job_n / job_s:,.0f} rows/s)")
    print(f"bare UPDATE loop                    : {base_s:8.1f} s  ({base_n / base_s:,.0f} rows/s)")
    print(f"job / bare                          : {job_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
