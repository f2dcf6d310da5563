"""Replay runs: a suite against an allow-listed target, bounded in concurrency and time, each outcome classified with
the tenant's rules, stored as an immutable report (store/replays.py) that unblocks a rolled-back release when passed.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from faultlens.classify.redact import MASK, redact
from faultlens.errors import InvalidRequest, ReplayTargetNotAllowed, param_details
from faultlens.releases import replay_suite, rollouts
from faultlens.releases.replay_suite import Planned
from faultlens.releases.stats import quantile
from faultlens.settings import Settings
from faultlens.store import replays as store
from faultlens.timeutil import ms_to_rfc3339, now_ms

EXCERPT_CHARS = 300
# Bytes of a response body kept for the excerpt; the rest is read (latency counts it) and dropped.
_KEEP_BYTES = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The source and operation the classifier sees for a replayed request (tenant rules may match them).
SOURCE = "replay"


@dataclass(frozen=True)
class _Base:
    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash

    def covers(self, other: _Base) -> bool:
        same = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        return same and (not self.path or other.path == self.path or other.path.startswith(self.path + "/"))


def _base(url: str) -> _Base | None:
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if u.scheme not in _DEFAULT_PORTS or not u.host:
        return None
    return _Base(u.scheme, u.host.lower(), u.port or _DEFAULT_PORTS[u.scheme], u.path.rstrip("/"))


def check_target(target: str, allowed: str) -> str:
    """The target as called (no trailing slash) when one allow-list entry covers its scheme, host, port and path
    prefix; ReplayTargetNotAllowed otherwise (an empty list refuses every target)."""
    base = _base(target)
    if base is None or "@" in target.split("//", 1)[-1].split("/", 1)[0] or "?" in target or "#" in target:
        message = "target is an http(s) base URL without credentials, query or fragment"
        raise InvalidRequest(message, details=param_details("target", message, location="body"))
    entries = [b for b in (_base(e.strip()) for e in allowed.split(",") if e.strip()) if b is not None]
    if not any(entry.covers(base) for entry in entries):
        raise ReplayTargetNotAllowed(
            "the replay target is not on this server's allow-list (FAULTLENS_REPLAY_TARGETS)"
            if entries
            else "replay is off on this server: FAULTLENS_REPLAY_TARGETS is empty",
            details={"target": target[:200]},
        )
    return target.rstrip("/")


@dataclass
class Outcome:
    request: Planned
    ran: bool = False
    http_status: int | None = None
    duration_ms: float | None = None
    reason: str = ""
    excerpt: str = ""
    passed: bool = False


def _expected(expect: str | int, status: int) -> bool:
    return status == expect if isinstance(expect, int) else str(status)[0] == expect[0]


def _scrub(text: str, secrets: Mapping[str, str]) -> str:
    """Redacted, and every resolved secret value masked even where redaction would not recognise it (an echo)."""
    for value in secrets.values():
        text = text.replace(value, MASK)
    return redact(text)


class _Runner:
    def __init__(self, client: httpx.Client, target: str, settings: Settings, secrets: Mapping[str, str]) -> None:
        self.client = client
        self.target = target
        self.secrets = secrets
        self.request_timeout_s = settings.replay_request_timeout_s
        self.run_deadline = time.monotonic() + settings.replay_run_timeout_s

    def run(self, request: Planned) -> Outcome:
        out = Outcome(request)
        remaining = self.run_deadline - time.monotonic()
        if remaining <= 0:
            out.reason = "not run: the replay's deadline passed first"
            return out
        budget_s = min(self.request_timeout_s, remaining)
        end = time.monotonic() + budget_s
        body = request.body
        kwargs: dict[str, Any] = {"json": body} if body is not None and not isinstance(body, str) else {}
        if isinstance(body, str):
            kwargs["content"] = body.encode()
        headers = replay_suite.concrete_headers(request, self.secrets)
        if isinstance(body, str) and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "text/plain; charset=utf-8"
        out.ran = True
        started = time.perf_counter()
        kept = bytearray()
        try:
            with self.client.stream(
                request.method,
                self.target + request.path,
                headers=headers,
                timeout=httpx.Timeout(budget_s),
                **kwargs,
            ) as response:
                for chunk in response.iter_bytes():
                    if len(kept) < _KEEP_BYTES:
                        kept += chunk[: _KEEP_BYTES - len(kept)]
                    if time.monotonic() > end:
                        raise httpx.ReadTimeout("the response body did not arrive within the deadline")
                out.http_status = response.status_code
        except httpx.TimeoutException:
            out.reason = f"timed out after {budget_s * 1000:.0f} ms"
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body or header httpx cannot encode
            out.reason = _scrub(f"request failed: {type(exc).__name__}: {str(exc)[:200]}", self.secrets)
        out.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if out.http_status is not None:
            self._judge(out)
        # Masked before the cut, so a cut never leaves the head of a secret behind its mask.
        out.excerpt = _scrub(kept.decode("utf-8", "replace"), self.secrets)[:EXCERPT_CHARS] if not out.passed else ""
        return out

    @staticmethod
    def _judge(out: Outcome) -> None:
        request, status, took = out.request, out.http_status or 0, out.duration_ms or 0.0
        if not _expected(request.expect, status):
            out.reason = f"expected {request.expect}, got {status}"
        elif request.budget_ms is not None and took > request.budget_ms:
            out.reason = f"took {took:.0f} ms, over the latency budget of {request.budget_ms:g} ms"
        else:
            out.passed = True


def execute(planned: list[Planned], *, target: str, settings: Settings, secrets: Mapping[str, str]) -> list[Outcome]:
    """Every request against the target, settings.replay_concurrency at a time; those not started before the run's
    deadline are not run. No redirect is followed, and no proxy or .netrc of the environment is used."""
    with (
        httpx.Client(follow_redirects=False, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=settings.replay_concurrency, thread_name_prefix="replay") as pool,
    ):
        runner = _Runner(client, target, settings, secrets)
        return list(pool.map(runner.run, planned))


def _classified(out: Outcome, classifier: Any) -> dict[str, Any]:
    r = out.request
    message = f"{out.reason}: {out.excerpt}" if out.excerpt else out.reason
    c = classifier.classify(
        status="failure",
        http_status=out.http_status,
        error_code=None,
        error_message=message,
        source=SOURCE,
        operation=f"{r.method} {r.path.split('?', 1)[0]}"[:256],
    )
    return {
        "name": r.name,
        "method": r.method,
        "path": r.path,
        "expected": r.expect,
        "status": out.http_status,
        "duration_ms": out.duration_ms,
        "reason": message,
        "failure_kind": c.failure_kind,
        "failure_class": c.failure_class.value,
        "is_actionable": c.is_actionable,
    }


def build_report(outcomes: list[Outcome], classifier: Any) -> dict[str, Any]:
    """passed, counts, failures (classified), not_run, results (no bodies) and p95 of the requests that ran."""
    failures = [_classified(o, classifier) for o in outcomes if o.ran and not o.passed]
    not_run = [
        {"name": o.request.name, "method": o.request.method, "path": o.request.path} for o in outcomes if not o.ran
    ]
    durations = [o.duration_ms for o in outcomes if o.ran and o.duration_ms is not None]
    results = [
        {
            "name": o.request.name,
            "method": o.request.method,
            "path": o.request.path,
            "expected": o.request.expect,
            "latency_budget_ms": o.request.budget_ms,
            "outcome": "passed" if o.passed else ("failed" if o.ran else "not_run"),
            "status": o.http_status,
            "duration_ms": o.duration_ms,
        }
        for o in outcomes
    ]
    passed = sum(o.passed for o in outcomes)
    return {
        "passed": bool(outcomes) and passed == len(outcomes),
        "total": len(outcomes),
        "counts": {
            "passed": passed,
            "failed": len(failures),
            "not_run": len(not_run),
            "by_failure_class": dict(Counter(f["failure_class"] for f in failures)),
        },
        "failures": failures,
        "not_run": not_run,
        "results": results,
        "p95_ms": round(quantile(durations, 0.95), 3) if durations else None,
    }


def run_replay(
    engine: Engine,
    classifier: Any,
    settings: Settings,
    *,
    tenant: str,
    release: str,
    environment: str,
    target: str,
    suite: Any,
    requested_by: str,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run a suite (its parsed document or text) against `target` and store the report; the stored report."""
    parsed = replay_suite.parse_suite(suite)
    base = check_target(target, settings.replay_targets)
    planned = replay_suite.plan(parsed)
    secrets = replay_suite.resolve_secrets(planned, env)
    started = now_ms()
    outcomes = execute(planned, target=base, settings=settings, secrets=secrets)
    finished = now_ms()
    report = {
        "id": str(uuid.uuid4()),
        "release": release,
        "environment": environment,
        "suite": parsed.suite,
        "suite_version": parsed.suite_version,
        "target": base,
        **build_report(outcomes, classifier),
        "rule_version": classifier.version,
        "started_at": ms_to_rfc3339(started),
        "finished_at": ms_to_rfc3339(finished),
        "requested_by": requested_by,
    }
    with engine.begin() as conn:
        store.insert_report(conn, tenant=tenant, report=report, started_at=started, finished_at=finished)
        # A passing replay after a rollback lets traffic return (document 004 §7.3); the rollout service records it.
        rollouts.record_replay(
            conn, tenant=tenant, release=release, report_id=report["id"], passed=report["passed"], at=finished
        )
    return report


def get_report(engine: Engine, *, tenant: str, report_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return store.get_report(conn, tenant=tenant, report_id=report_id)


def list_reports(
    engine: Engine, *, tenant: str, release: str | None = None, environment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = store.list_reports(conn, tenant=tenant, release=release, environment=environment, limit=limit)
    for row in rows:
        row.pop("finished_at_ms")
    return rows
