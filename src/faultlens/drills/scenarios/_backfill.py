"""Shared by the backfill drills (reclaim, rule_version): the drill's rule pack, event mixes, job reads, claim lines."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faultlens.classify.rules import default_pack
from faultlens.drills.harness import DrillContext, Server
from faultlens.timeutil import ms_to_rfc3339, now_ms, parse_rfc3339_ms

DEFAULT_VERSION = default_pack().id  # the shipped default the drill's server starts with
PACK_ID = "drill@2026-12-06"
NEW_VERSION = f"{PACK_ID}+{DEFAULT_VERSION}"
# A tenant pack: our proxy closing a stream is our failure. Under the default pack "downstream_closed" is a client
# abort, so every such event moves (client_abort/downstream_closed -> service_failure/proxy_closed).
PACK: dict[str, Any] = {
    "id": PACK_ID,
    "description": "drill: a closed downstream is the proxy's failure",
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
MOVED_KIND = "proxy_closed"
# Kinds of events a drill sends. "marker": moved by PACK. "success" and "unknown" (no rule matches): built-in
# decisions stamped with the whole stack version, so their rule_version tells which stack classified them.
# "plain": decided by the default pack under either stack (its rule_version cannot tell old from new).
KINDS = ("marker", "success", "plain", "unknown")
_CLAIMED = re.compile(r"^job (\S+) \((\w+)\) claimed by (\S+) at checkpoint (\d+)$")


def make_event(event_id: str, kind: str, source: str, *, age_s: int = 60) -> dict[str, Any]:
    one: dict[str, Any] = {
        "id": event_id,
        "source": source,
        "operation": "GET /streams",
        "status": "failure",
        "occurred_at": ms_to_rfc3339(now_ms() - age_s * 1000),
    }
    if kind == "marker":
        one["error_message"] = "downstream_closed"
    elif kind == "success":
        one["status"] = "success"
    elif kind == "plain":
        one["error_message"] = "failed_contact_upstream"
    else:
        one["error_message"] = "drill widget wobbled at step 7"
    return one


def mixed_events(n: int, source: str, *, prefix: str, kinds: Sequence[str] = KINDS) -> list[dict[str, Any]]:
    """n events cycling through `kinds`, ids prefix0..prefix{n-1}, occurred over the last 20 minutes."""
    return [make_event(f"{prefix}{i}", kinds[i % len(kinds)], source, age_s=30 + i % 1200) for i in range(n)]


def count_kind(events: Sequence[dict[str, Any]], kind: str) -> int:
    probe = make_event("", kind, "")
    return sum(
        1 for e in events if e.get("status") == probe["status"] and e.get("error_message") == probe.get("error_message")
    )


def ingest(ctx: DrillContext, server: Server, events: Sequence[dict[str, Any]], *, chunk: int = 1000) -> int:
    """POST the events in chunks; the number accepted (a chunk not answered 200 fails a check)."""
    accepted = 0
    for start in range(0, len(events), chunk):
        answer = server.post("/api/v1/events", json=list(events[start : start + chunk]))
        if answer.status_code != 200:
            ctx.check(f"ingest chunk at {start} answered 200", False, f"{answer.status_code} {answer.text[:200]}")
            continue
        accepted += int(answer.json()["accepted"])
    return accepted


def preview(server: Server) -> dict[str, Any]:
    answer = server.post("/api/v1/rules/preview", params={"window": "24h"}, json=PACK)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def moved_count(found: dict[str, Any]) -> int:
    """The preview's count of the move PACK makes (downstream_closed -> proxy_closed)."""
    return sum(
        int(m["count"])
        for m in found.get("moves", [])
        if m["from"]["failure_kind"] == "downstream_closed" and m["to"]["failure_kind"] == MOVED_KIND
    )


def job(server: Server, job_id: str) -> dict[str, Any]:
    answer = server.get(f"/api/v1/jobs/{job_id}")
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


@dataclass(frozen=True)
class Claim:
    """One `job ... claimed by host/pid/token at checkpoint N` line of the job runner."""

    job_id: str
    owner: str
    pid: int
    checkpoint: int
    at_ms: int
    line: dict[str, Any]


def claims(server: Server, job_id: str) -> list[Claim]:
    """The claim lines for `job_id` in the server's JSON log, oldest first."""
    out: list[Claim] = []
    for line in server.logs():
        found = _CLAIMED.match(str(line.get("msg", "")))
        if found is None or found.group(1) != job_id:
            continue
        owner = found.group(3)
        parts = owner.split("/")
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
        at = parse_rfc3339_ms(str(line["ts"])) if line.get("ts") else 0
        out.append(Claim(job_id, owner, pid, int(found.group(4)), at, line))
    return out


def start_together(ctx: DrillContext, servers: Sequence[Server]) -> None:
    """Start the servers at once (each start waits for /healthz): two replicas cost one start-up, not two."""
    errors: list[BaseException] = []

    def start(server: Server) -> Callable[[], None]:
        def go() -> None:
            try:
                server.start()
            except BaseException as exc:  # re-raised in the drill's thread below
                errors.append(exc)

        return go

    threads = [threading.Thread(target=start(s), name=f"start-{s.name}") for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for s in servers:
        ctx.note(f"{s.name} up on port {s.port} (pid {s.pid})")
