"""Failed RQ jobs from a real rq worker: timeout, permission, disk full, bad data, killed work-horse; retry, archive."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from fastapi.testclient import TestClient
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from faultlens.connectors import retention, sync
from faultlens.connectors.base import datetime_ms
from faultlens.services import Services
from faultlens.store.tables import events
from tests.integration import task_jobs
from tests.integration.task_support import run_rq_burst, task_client, task_redis, task_services

__all__ = ["task_client", "task_redis", "task_services"]  # fixtures, imported for pytest

PATH = "/codebase-embedder/api/v1/tasks/failed"
FIELDS = {
    "TaskId",
    "TaskType",
    "ClientId",
    "CodebasePath",
    "StartTime",
    "FailTime",
    "ErrorCode",
    "ErrorMessage",
    "RetryCount",
    "ProcessedFiles",
    "ErrorCategory",
}


def test_rq_failures_in_the_envelope_and_as_events(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    embed_q = Queue("embed", connection=task_redis)
    index_q = Queue("index", connection=task_redis)
    jobs = {
        "timeout": embed_q.enqueue(task_jobs.embed_codebase, client_id="c1", codebase_path="/p/slow", job_timeout=1),
        "permission": index_q.enqueue(task_jobs.index_codebase, client_id="c2", codebase_path="/p/secret"),
        "disk": index_q.enqueue(task_jobs.clean_codebase, {"client_id": "c3", "codebase_path": "/p/full"}),
        "data": index_q.enqueue(task_jobs.parse_manifest, "c4", codebasePath="/p/bad"),
        "crash": embed_q.enqueue(task_jobs.crash, client_id="c5"),
    }
    ok = index_q.enqueue(task_jobs.succeed)
    log = run_rq_burst(["embed", "index"])
    assert "Work-horse terminated unexpectedly" in log
    assert Job.fetch(ok.id, connection=task_redis).get_status() == JobStatus.FINISHED

    r = task_client.get(PATH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["Code"], body["Message"], body["Success"]) == (0, "ok", True)
    tasks = body["Data"]["Tasks"]
    assert body["Data"]["TotalTasks"] == 5 == len(tasks)
    assert all(set(t) == FIELDS for t in tasks)
    fetched = {j.id: Job.fetch(j.id, connection=task_redis) for j in jobs.values()}
    newest_first = sorted(fetched, key=lambda i: datetime_ms(fetched[i].ended_at) or 0, reverse=True)
    assert [t["TaskId"] for t in tasks] == newest_first
    by = {name: next(t for t in tasks if t["TaskId"] == job.id) for name, job in jobs.items()}

    t = by["timeout"]
    assert t["TaskType"] == "tests.integration.task_jobs.embed_codebase"
    assert (t["ClientId"], t["CodebasePath"], t["ProcessedFiles"], t["RetryCount"]) == ("c1", "/p/slow", 75, 0)
    assert t["ErrorCode"] == "JobTimeoutException"
    assert t["ErrorMessage"].startswith("JobTimeoutException: Task exceeded maximum timeout value (1 second")
    assert t["ErrorCategory"] == "service_timeout"
    assert t["StartTime"].endswith("Z") and t["FailTime"] >= t["StartTime"]

    p = by["permission"]
    assert (p["ClientId"], p["CodebasePath"], p["ErrorCode"]) == ("c2", "/p/secret", "PermissionError")
    assert p["ErrorMessage"] == "PermissionError: [Errno 13] Permission denied: '/p/secret'"

    d = by["disk"]
    assert (d["ClientId"], d["CodebasePath"], d["ProcessedFiles"]) == ("c3", "/p/full", 50)
    assert d["ErrorMessage"] == "OSError: [Errno 28] No space left on device"
    assert d["ErrorCategory"] == "resource_exhausted"

    v = by["data"]
    assert (v["ClientId"], v["CodebasePath"], v["RetryCount"]) == ("", "/p/bad", 0)  # client_id was positional
    assert v["ErrorMessage"] == "ValueError: invalid manifest: expected a JSON object, got a list"
    assert v["ErrorCategory"] == "data_error"

    c = by["crash"]
    assert c["TaskType"] == "tests.integration.task_jobs.crash" and c["ClientId"] == "c5"
    assert c["ErrorMessage"].startswith("Work-horse terminated unexpectedly") and c["ErrorCode"] == ""
    assert c["ErrorCategory"] in ("resource_exhausted", "system_error")  # SIGKILL: the OOM killer's signal

    native_items = task_client.get("/api/v1/tasks/failed", params={"source": "rq:index"}).json()["items"]
    assert {i["task_id"] for i in native_items} == {jobs["permission"].id, jobs["disk"].id, jobs["data"].id}

    result = sync.sync_failed_tasks(task_services)
    assert (result.found, result.accepted, result.errors) == (5, 5, [])
    assert sync.sync_failed_tasks(task_services).accepted == 0
    with task_services.engine.connect() as conn:
        rows = {r.job_id: r for r in conn.execute(select(events))}
    assert rows[jobs["timeout"].id].source == "rq:embed" and rows[jobs["disk"].id].source == "rq:index"
    assert rows[jobs["data"].id].status == "dead_letter" and rows[jobs["data"].id].attempt == 0
    assert rows[jobs["timeout"].id].status == "failure"
    assert rows[jobs["timeout"].id].operation == "tests.integration.task_jobs.embed_codebase"
    summary = task_client.get("/api/v1/stats/summary").json()
    assert summary["total"] == 5 and summary["failure_count"] == 5


def test_rq_retry_requeues_and_archive_deletes(
    task_client: TestClient, task_services: Services, task_redis: redis.Redis
) -> None:
    queue = Queue("index", connection=task_redis)
    # A timeout is retryable (disk full is not: it is classified to fail the same way again).
    disk = queue.enqueue(task_jobs.embed_codebase, client_id="c3", codebase_path="/p/slow", seconds=5, job_timeout=1)
    data = queue.enqueue(task_jobs.parse_manifest, "c4", codebasePath="/p/bad")
    run_rq_burst(["index"])
    registry = FailedJobRegistry(queue=queue)
    assert set(registry.get_job_ids()) == {disk.id, data.id}

    refused = task_client.post(f"/api/v1/tasks/{data.id}/retry")
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["reason"] == "category_never_retried"

    r = task_client.post(f"/api/v1/tasks/rq:{disk.id}/retry")
    assert r.status_code == 200, r.text
    assert (r.json()["kind"], r.json()["attempt"], r.json()["source"]) == ("rq", 1, "rq:index")
    assert disk.id in queue.get_job_ids() and disk.id not in registry.get_job_ids()
    assert Job.fetch(disk.id, connection=task_redis).get_status() == JobStatus.QUEUED
    assert task_client.post(f"/api/v1/tasks/{disk.id}/retry").status_code == 404  # queued, not failed

    run_rq_burst(["index"])  # fails again: the retry shows in its RetryCount
    again = {t["TaskId"]: t for t in task_client.get(PATH).json()["Data"]["Tasks"]}
    assert again[disk.id]["RetryCount"] == 1 and again[data.id]["RetryCount"] == 0
    with task_services.engine.connect() as conn:
        retries = conn.execute(select(events.c.job_id, events.c.attempt).where(events.c.status == "retry")).all()
    assert [(x.job_id, x.attempt) for x in retries] == [(disk.id, 1)]

    result = retention.archive_failed_tasks(task_services, older_than_days=0, stores=["rq"])
    assert (result.archived, result.deleted) == (2, 2)
    archived = [json.loads(line) for f in result.files for line in Path(f).read_text().splitlines()]
    assert {a["task_id"] for a in archived} == {disk.id, data.id}
    assert {a["source"] for a in archived} == {"rq:index"}
    assert all("Traceback" in a["traceback"] for a in archived)
    assert registry.get_job_ids() == []
    assert not Job.exists(disk.id, connection=task_redis) and not Job.exists(data.id, connection=task_redis)
    assert task_client.get(PATH).json()["Data"]["TotalTasks"] == 0
