"""Classifier throughput: cached repeating mix, all-unique messages, and a naive per-rule baseline."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from faultlens.classify.engine import Classifier
from faultlens.classify.rules import Rule, RulePack, default_pack, frame_evidence_of, load_pack
from faultlens.classify.text import Literal, decision_text
from faultlens.model import Category, Classification, FailureClass, Status

# Realistic failure texts; {id} {n} {ip} {host} {port} {ms} {hex} are filled per message.
TEMPLATES: list[tuple[int, str, int | None, str | None]] = [
    # (weight, message, http_status, error_code)
    (
        12,
        "upstream timed out (110: Connection timed out) while reading response header from upstream, "
        'client: {ip}, server: api.example.com, request: "GET /v1/orders/{n} HTTP/1.1", '
        'upstream: "http://{ip}:8080/v1/orders/{n}", host: "api.example.com"',
        504,
        None,
    ),
    (
        10,
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host}', port=443): "
        "Read timed out. (read timeout={n})",
        None,
        None,
    ),
    (8, "Error: connect ECONNREFUSED {ip}:{port}", None, "ECONNREFUSED"),
    (
        8,
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
        'dial tcp {ip}:{port}: connect: connection refused"',
        None,
        None,
    ),
    (8, "context deadline exceeded", None, None),
    (6, 'Post "http://{host}:{port}/v2/score": context canceled', None, None),
    (
        6,
        "client prematurely closed connection while sending to client, client: {ip}, server: _, "
        'request: "GET /stream/{id} HTTP/1.1"',
        499,
        None,
    ),
    (
        6,
        "psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "
        '"users_email_key"\nDETAIL:  Key (email)=(user{n}@example.org) already exists.',
        None,
        None,
    ),
    (
        5,
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, "
        "timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
        None,
        None,
    ),
    (
        5,
        "Incorrect API key provided: sk-proj-{hex}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        401,
        "invalid_api_key",
    ),
    (
        5,
        "Rate limit reached for gpt-4o in organization org-{hex} on tokens per min (TPM): "
        "Limit 30000, Used {n}, Requested 1200. Please try again in {ms}ms.",
        429,
        "rate_limit_exceeded",
    ),
    (
        5,
        'Traceback (most recent call last):\n  File "/app/worker/tasks.py", line {n}, in run\n'
        '    resp = session.get(url, timeout=5)\n  File "/usr/lib/python3.11/site-packages/requests/'
        'sessions.py", line 602, in get\n    return self.request("GET", url, **kwargs)\n'
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='{host}', port={port}): Max retries "
        "exceeded with url: /api/items/{n} (Caused by NewConnectionError('<urllib3.connection.HTTPConnection "
        "object at 0x7f{hex}>: Failed to establish a new connection: [Errno 111] Connection refused'))",
        None,
        None,
    ),
    (
        4,
        "java.net.SocketTimeoutException: Read timed out\n\tat java.base/sun.nio.ch.NioSocketImpl.timedRead"
        "(NioSocketImpl.java:288)\n\tat java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)",
        None,
        None,
    ),
    (4, "redis.exceptions.ConnectionError: Error 111 connecting to {host}:6379. Connection refused.", None, None),
    (4, "billiard.exceptions.WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL) Job: {n}.", None, None),
    (4, "OSError: [Errno 28] No space left on device: '/var/lib/app/tmp/{id}.parquet'", None, None),
    (
        4,
        "1 validation error for CreateOrder\nquantity\n  Input should be greater than 0 "
        "[type=greater_than, input_value=-{n}, input_type=int]",
        422,
        None,
    ),
    (4, "jwt expired", 401, None),
    (3, "TypeError: 'NoneType' object is not subscriptable", 500, None),
    (3, 'KafkaError{{code=_MSG_TIMED_OUT,val=-192,str="Local: Message timed out"}}', None, None),
    (
        3,
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure, "
        "transport failure reason: delayed connect error: 111",
        503,
        "UF",
    ),
    (3, "Error: socket hang up", None, "ECONNRESET"),
    (
        3,
        "An error occurred (ThrottlingException) when calling the InvokeModel operation "
        "(reached max retries: 4): Rate exceeded",
        None,
        None,
    ),
    (3, "请求超时，请稍后重试 (trace_id={hex})", None, None),
    (3, "权限不足，无法访问资源 {id}", 403, None),
    (3, "HTTP 404 Not Found: /api/v1/users/{n}", 404, None),
    (2, "java.lang.OutOfMemoryError: Java heap space", None, None),
    (2, "json.decoder.JSONDecodeError: Expecting value: line 1 column {n} (char {n})", None, None),
    (
        2,
        "deadlock detected\nDETAIL:  Process {n} waits for ShareLock on transaction {n}; blocked by process {n}.",
        None,
        "40P01",
    ),
    (2, "Request failed with status code 502", 502, None),
    (2, "processing failed for job {id}", None, None),
    (2, "", 500, None),
    (2, "", 499, None),
    (2, "", None, None),
]
STATUS_MIX = [
    (Status.FAILURE, 80),
    (Status.RETRY, 10),
    (Status.DEAD_LETTER, 4),
    (Status.CANCELLED, 3),
    (Status.SUCCESS, 3),
]


def _filler(rnd: random.Random) -> dict[str, Any]:
    return {
        "id": f"{rnd.getrandbits(64):016x}",
        "n": rnd.randint(1, 999_999),
        "ip": f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        "host": rnd.choice(["orders-db", "billing.internal", "api.partner.io", "redis-master", "ranker"])
        + f"-{rnd.randint(0, 99)}",
        "port": rnd.choice([80, 443, 5432, 6379, 8080, 9092, 50051]),
        "ms": rnd.randint(10, 60_000),
        "hex": f"{rnd.getrandbits(48):012x}",
    }


Event = tuple[str, int | None, str | None, str | None, str | None, str | None]


_TEMPLATE_CUM = list(itertools.accumulate(t[0] for t in TEMPLATES))
_STATUSES = [s for s, _ in STATUS_MIX]
_STATUS_CUM = list(itertools.accumulate(w for _, w in STATUS_MIX))


def _event(rnd: random.Random) -> Event:
    _, tmpl, http, code = rnd.choices(TEMPLATES, cum_weights=_TEMPLATE_CUM)[0]
    status = rnd.choices(_STATUSES, cum_weights=_STATUS_CUM)[0]
    source = rnd.choice(["api", "worker", "gateway"])
    return (status.value, http, code, tmpl.format(**_filler(rnd)), source, "POST /v1/orders")


def repeating_mix(n: int, distinct: int, seed: int = 7) -> list[Event]:
    """`n` events drawn (skewed, like production) from `distinct` realistic ones."""
    rnd = random.Random(seed)
    pool = [_event(rnd) for _ in range(distinct)]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(distinct)]
    return rnd.choices(pool, weights=weights, k=n)


def unique_mix(n: int, seed: int = 11) -> Iterator[list[Event]]:
    """`n` events, every message different (fresh ids, hosts, numbers), in batches."""
    rnd = random.Random(seed)
    done = 0
    while done < n:
        batch = [_event(rnd) for _ in range(min(100_000, n - done))]
        # A per-event suffix keeps even the fixed-text templates unique.
        batch = [(s, h, c, f"{m} [event {done + i}]", src, op) for i, (s, h, c, m, src, op) in enumerate(batch)]
        done += len(batch)
        yield batch


class NaiveClassifier:
    """The baseline: every rule's conditions in turn, each substring list as its own regex, no cache."""

    def __init__(self, packs: list[RulePack]) -> None:
        self.rules: list[tuple[str, Rule, Callable[..., bool]]] = []
        self.frames = frame_evidence_of(packs)
        for pack in packs:
            for rule in pack.tried_in_order():
                self.rules.append((pack.id, rule, self._compile(rule, token=pack.literal_match == "token")))

    @staticmethod
    def _compile(rule: Rule, *, token: bool = False) -> Callable[..., bool]:
        m = rule.match
        # A token boundary as a lookaround: no letter of a spaced script (or no digit) on that side.
        guard = {"L": "[^\\W\\d_\u2e80-\U0010ffff]", "D": "\\d", "": ""}

        def one(s: str) -> str:
            lit = Literal.of(s, token=token)
            left = f"(?<!{guard[lit.left]})" if lit.left else ""
            right = f"(?!{guard[lit.right]})" if lit.right else ""
            return left + re.escape(lit.core) + right

        def alt(subs: tuple[str, ...] | None) -> re.Pattern[str] | None:
            return None if subs is None else re.compile("|".join(one(s) for s in subs), re.IGNORECASE)

        msg_rx, txt_rx = alt(m.error_message), alt(m.text)
        msg_res = [re.compile(p, re.IGNORECASE) for p in m.error_message_regex or ()]
        txt_res = [re.compile(p, re.IGNORECASE) for p in m.text_regex or ()]

        def check(st: str, http: int | None, code: str, msg: str, src: str, op: str) -> bool:
            if msg_rx is not None and not msg_rx.search(msg):
                return False
            if txt_rx is not None and not (txt_rx.search(msg) or txt_rx.search(code)):
                return False
            if m.status is not None and st not in m.status:
                return False
            if m.http_status is not None and (http is None or not any(a <= http <= b for a, b in m.http_status)):
                return False
            if m.without_http_status and http is not None:
                return False
            if m.error_code is not None and code not in m.error_code:
                return False
            if m.source is not None and src not in m.source:
                return False
            if m.operation is not None and op not in m.operation:
                return False
            if msg_res and not any(r.search(msg) for r in msg_res):
                return False
            return not txt_res or any(r.search(msg) or r.search(code) for r in txt_res)

        return check

    def classify(
        self, status: str, http: int | None, code: str | None, msg: str | None, src: str | None, op: str | None
    ) -> Classification:
        if status == "success":
            return Classification("none", FailureClass.NONE, False, Category.NONE, False, "success", "naive")
        text = decision_text(msg, self.frames)
        code_l, src_l, op_l = (code or "").lower(), (src or "").lower(), (op or "").lower()
        for pack_id, rule, check in self.rules:
            if check(status, http, code_l, text, src_l, op_l):
                return Classification(
                    rule.failure_kind,
                    rule.failure_class,
                    rule.is_actionable,
                    rule.category.value,
                    rule.retryable,
                    rule.name,
                    pack_id,
                )
        return Classification(
            "unclassified", FailureClass.SERVICE_FAILURE, True, "unknown", False, "unclassified", "naive"
        )


def _run(clf: Classifier, events: list[Event]) -> tuple[float, float]:
    classify = clf.classify
    wall, cpu = time.perf_counter(), time.process_time()
    for st, http, code, msg, src, op in events:
        classify(status=st, http_status=http, error_code=code, error_message=msg, source=src, operation=op)
    return time.perf_counter() - wall, time.process_time() - cpu


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f}/s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000, help="events per mix (default 1,000,000)")
    ap.add_argument("--distinct", type=int, default=5_000, help="distinct events in the repeating mix")
    ap.add_argument("--naive-n", type=int, default=5_000, help="events for the naive baseline")
    ap.add_argument(
        "--pack",
        type=Path,
        default=None,
        help="classify with this pack file instead of the shipped default (e.g. a previous version, to compare)",
    )
    args = ap.parse_args(argv)

    print(
        f"machine: {platform.platform()} | {platform.processor() or platform.machine()} | "
        f"cpus={os.cpu_count()} | python {sys.version.split()[0]}"
    )
    with contextlib.suppress(OSError):  # no load average on some platforms
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (rates use CPU time too)")
    pack = default_pack() if args.pack is None else load_pack(args.pack)
    clf = Classifier([pack])
    print(f"pack {clf.version}: {len(pack.rules)} rules")

    events = repeating_mix(args.n, args.distinct)
    wall, cpu = _run(clf, events)
    rep_rate = args.n / cpu
    print(
        f"repeating mix ({args.distinct} distinct, cached): {args.n:,} events in {wall:.2f}s wall "
        f"{_rate(args.n, wall)} wall, {_rate(args.n, cpu)} cpu"
    )

    total_wall = total_cpu = 0.0
    uniq = Classifier([pack])
    warm = next(unique_mix(2_000, seed=99))
    _run(uniq, warm)  # the word caches fill on first sight of the vocabulary; measure steady state
    for batch in unique_mix(args.n):
        wall, cpu = _run(uniq, batch)
        total_wall += wall
        total_cpu += cpu
    uniq_rate = args.n / total_cpu
    print(
        f"all-unique messages (no cache hits):        {args.n:,} events in {total_wall:.2f}s wall "
        f"{_rate(args.n, total_wall)} wall, {_rate(args.n, total_cpu)} cpu"
    )

    naive = NaiveClassifier([pack])
    sample = next(unique_mix(args.naive_n, seed=5))
    wall, cpu = time.perf_counter(), time.process_time()
    decided = [naive.classify(st, http, code, msg, src, op) for st, http, code, msg, src, op in sample]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    naive_rate = args.naive_n / cpu
    # The engine's index and caches must not change a single decision.
    disagree = 0
    for got, (st, http, code, msg, src, op) in zip(decided, sample, strict=True):
        want = clf.classify(status=st, http_status=http, error_code=code, error_message=msg, source=src, operation=op)
        disagree += got.rule_name != want.rule_name
    print(
        f"naive baseline (per-rule regex, no cache):  {args.naive_n:,} events in {wall:.2f}s wall "
        f"{_rate(args.naive_n, wall)} wall, {_rate(args.naive_n, cpu)} cpu; "
        f"decisions differing from the engine: {disagree}"
    )
    print(f"speed-up vs naive (cpu): repeating x{rep_rate / naive_rate:,.0f}, unique x{uniq_rate / naive_rate:,.1f}")
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
