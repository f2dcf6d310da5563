"""The classifier: required semantics, the labeled corpus, caching, and prefilter exactness."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from faultlens.classify.compile import regex_needs
from faultlens.classify.engine import Classifier
from faultlens.classify.masks import MESSAGE_MASK_RE, masked_guard, stable_under_message_mask
from faultlens.classify.prefilter import samples_holding
from faultlens.classify.rules import RulePack, default_pack, load_pack_data
from faultlens.classify.text import decision_text
from faultlens.classify.versions import find_shipped_pack
from faultlens.errors import RulePackError
from faultlens.model import Category, Classification, FailureClass, Status

CORPUS_DIR = Path(__file__).parent / "corpus"
SVC, CLI, ABT, NONE = (
    FailureClass.SERVICE_FAILURE,
    FailureClass.CLIENT_FAILURE,
    FailureClass.CLIENT_ABORT,
    FailureClass.NONE,
)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier([default_pack()])


def classify(clf: Classifier, message: str | None = None, **kw: Any) -> Classification:
    kw.setdefault("status", "failure")
    return clf.classify(error_message=message, **kw)


# ------------------------------------------------------------------------- required semantics


@pytest.mark.parametrize("message", [None, "", "connection refused", "client disconnected", "API密钥无效"])
@pytest.mark.parametrize("http_status", [None, 200, 499, 500])
def test_success_is_none_whatever_the_evidence(clf: Classifier, message: str | None, http_status: int | None) -> None:
    got = classify(clf, message, status="success", http_status=http_status, error_code="ECONNRESET")
    assert (got.failure_kind, got.failure_class, got.is_actionable, got.category, got.retryable) == (
        "none",
        NONE,
        False,
        "none",
        False,
    )
    assert classify(clf, message, status=Status.SUCCESS).failure_class is NONE


def test_cancelled_without_evidence_is_a_client_abort(clf: Classifier) -> None:
    for message in (None, "", "job stopped by the scheduler", "任务终止"):
        got = classify(clf, message, status="cancelled")
        assert (got.failure_kind, got.failure_class, got.is_actionable, got.category) == (
            "cancelled",
            ABT,
            False,
            "cancelled",
        )


@pytest.mark.parametrize(
    ("text", "kind", "cls", "actionable"),
    [
        ("downstream_closed", "downstream_closed", ABT, False),
        ("failed_contact_upstream", "failed_contact_upstream", SVC, True),
        ("upstream_stream_error", "upstream_stream_error", SVC, True),
        ("request_body_read_timeout", "request_body_read_timeout", SVC, True),
    ],
)
def test_product_literals_as_message_or_code(
    clf: Classifier, text: str, kind: str, cls: FailureClass, actionable: bool
) -> None:
    for got in (classify(clf, text), classify(clf, None, error_code=text), classify(clf, "x", error_code=text.upper())):
        assert (got.failure_kind, got.failure_class, got.is_actionable) == (kind, cls, actionable)


@pytest.mark.parametrize(
    "message",
    [
        "invalid api key",
        "api key expired",
        "Incorrect API key provided: sk-proj-abc***xyz",
        "missing api key",
        "API密钥无效",
        "Invalid API Key",
        "The API key you provided has been revoked.",
        "API key not valid. Please pass a valid API key.",
    ],
)
def test_api_key_errors(clf: Classifier, message: str) -> None:
    got = classify(clf, message)
    assert (got.failure_kind, got.failure_class, got.category, got.is_actionable) == (
        "api_key_invalid",
        CLI,
        "authorization",
        False,
    )


@pytest.mark.parametrize("message", [None, "", "   ", "\n\n", "zzz unknown zzz", "😀", "\x00"])
def test_no_evidence_is_unclassified_and_never_raises(clf: Classifier, message: str | None) -> None:
    got = classify(clf, message)
    assert (got.failure_kind, got.failure_class, got.is_actionable, got.category, got.rule_name) == (
        "unclassified",
        SVC,
        True,
        "unknown",
        "unclassified",
    )


def test_odd_inputs_never_raise(clf: Classifier) -> None:
    huge = "x" * 200_000 + " connection refused"
    assert classify(clf, huge).failure_class is SVC
    assert classify(clf, "timeout", status="weird").failure_class is SVC  # unknown status: still a failure
    assert classify(clf, "timeout", status="RETRY").failure_kind == "timeout"
    assert classify(clf, None, http_status=0).rule_name == "unclassified"
    assert classify(clf, None, http_status=1234).rule_name == "unclassified"
    assert classify(clf, "Traceback (most recent call last):\n").failure_class is SVC
    assert classify(clf, "a\nb\n\tat x\n    at y\ngoroutine 1 [running]:\n").failure_class is SVC


@pytest.mark.parametrize(
    ("http_status", "kind", "cls", "category"),
    [
        (499, "client_closed_request", ABT, "client_abort"),
        (400, "bad_request", CLI, "data_error"),
        (401, "unauthorized", CLI, "authorization"),
        (403, "forbidden", CLI, "authorization"),
        (404, "not_found", CLI, "not_found"),
        (408, "client_request_timeout", CLI, "network_error"),
        (409, "conflict", CLI, "conflict"),
        (413, "payload_too_large", CLI, "data_error"),
        (422, "bad_request", CLI, "data_error"),
        (429, "rate_limited", CLI, "rate_limited"),
        (418, "http_4xx", CLI, "data_error"),
        (500, "internal_server_error", SVC, "system_error"),
        (502, "bad_gateway", SVC, "dependency_error"),
        (503, "service_unavailable", SVC, "system_error"),
        (529, "service_unavailable", SVC, "dependency_error"),
        (504, "gateway_timeout", SVC, "service_timeout"),
        (599, "gateway_timeout", SVC, "service_timeout"),
        (520, "http_5xx", SVC, "system_error"),
    ],
)
def test_bare_http_status(clf: Classifier, http_status: int, kind: str, cls: FailureClass, category: str) -> None:
    got = classify(clf, None, http_status=http_status)
    assert (got.failure_kind, got.failure_class, got.category) == (kind, cls, category)
    assert got.is_actionable is (cls is SVC)


def test_rate_limits_are_the_callers_and_not_actionable(clf: Classifier) -> None:
    for got in (classify(clf, None, http_status=429), classify(clf, "rate limit exceeded")):
        assert (got.failure_class, got.is_actionable, got.retryable) == (CLI, False, True)


@pytest.mark.parametrize(
    ("message", "category"),
    [
        (
            "botocore.exceptions.ClientError: An error occurred (ThrottlingException) when calling the Query operation:"
            " Rate exceeded",
            "rate_limited",
        ),
        (
            "An error occurred (ExpiredTokenException) when calling the AssumeRole operation: The security token"
            " included in the request is expired",
            "authorization",
        ),
        (
            "openai.RateLimitError: Error code: 429 - {'error': {'type': 'insufficient_quota',"
            " 'code': 'insufficient_quota'}}",
            "resource_exhausted",
        ),
    ],
)
def test_a_provider_refusing_our_own_call_is_ours_and_relayed_it_is_the_callers(
    clf: Classifier, message: str, category: str
) -> None:
    """docs/rules.md "Who was refused": no caller status -> our outbound call; the 4xx the caller got -> theirs."""
    ours = classify(clf, message)
    assert (ours.failure_class, ours.is_actionable, ours.category) == (SVC, True, category)
    relayed = classify(clf, message, http_status=429 if category != "authorization" else 403)
    assert (relayed.failure_class, relayed.is_actionable) == (CLI, False)


def test_api_key_errors_stay_the_callers_even_from_a_provider(clf: Classifier) -> None:
    # The document-000 golden case outranks the provider policy.
    got = classify(clf, "openai.AuthenticationError: Error code: 401 - Incorrect API key provided: sk-proj-****")
    assert (got.failure_class, got.is_actionable) == (CLI, False)


@pytest.mark.parametrize(
    ("message", "http_status", "cls", "category"),
    [
        ("OK", 200, FailureClass.NONE, "none"),
        ("Created", 201, FailureClass.NONE, "none"),
        ("", 304, FailureClass.NONE, "none"),
        ("订单处理失败", 200, SVC, "unknown"),
        ("OK", 503, SVC, "system_error"),
    ],
)
def test_a_success_like_status_on_a_failed_event(
    clf: Classifier, message: str, http_status: int, cls: FailureClass, category: str
) -> None:
    got = classify(clf, message, http_status=http_status)
    assert (got.failure_class, got.category, got.is_actionable) == (cls, category, cls is SVC)


@pytest.mark.parametrize(
    ("message", "http_status", "cls"),
    [
        ("client disconnected", 500, ABT),
        ("broken pipe", 502, ABT),
        ("connection refused", 404, SVC),
        ("jwt expired", 500, CLI),
        ("upstream timed out", 400, SVC),
        ("context canceled", 504, ABT),
        ("Request Timeout", 408, CLI),
        ("ValueError: invalid literal for int() with base 10: 'x'", 500, SVC),
        ("ValueError: invalid literal for int() with base 10: 'x'", None, CLI),
    ],
)
def test_message_evidence_beats_a_bare_status(
    clf: Classifier, message: str, http_status: int | None, cls: FailureClass
) -> None:
    assert classify(clf, message, http_status=http_status).failure_class is cls


def test_traceback_last_exception_decides(clf: Classifier) -> None:
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/app/permission_denied_handler.py", line 3, in retry_on_timeout\n'
        "    client_disconnected = call()\n"
        "    ^^^^^^^^^^^^^^^^^^^^\n"
        "requests.exceptions.ConnectionError: connection refused"
    )
    got = classify(clf, tb)
    assert (got.failure_class, got.failure_kind) == (SVC, "connection_refused")
    chained = (
        'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    g()\n'
        "TimeoutError: read timed out\n\nDuring handling of the above exception, another exception occurred:\n\n"
        'Traceback (most recent call last):\n  File "b.py", line 2, in h\n    raise Invalid()\n'
        "app.errors.Invalid: missing required field: sku"
    )
    assert classify(clf, chained).failure_kind == "validation_error"


def test_decision_text_drops_frames_and_nginx_request_tail() -> None:
    java = (
        "java.net.SocketTimeoutException: Read timed out\n\tat com.acme.Forbidden.call(Forbidden.java:1)\n\t... 12 more"
    )
    assert "forbidden" not in decision_text(java)
    nginx = 'upstream timed out (110), client: 1.2.3.4, server: x, request: "GET /token/expired HTTP/1.1"'
    assert decision_text(nginx) == "upstream timed out (110)"
    assert decision_text("GET https://api.x.io/v1/rate-limits/7?a=1 failed: EOF") == "get https://api.x.io failed: eof"
    assert decision_text(None) == "" and decision_text("") == ""
    assert decision_text("Ünicode ÉRROR") == "ünicode érror"


# ------------------------------------------------------------------------------------- corpus


def _corpus() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                row["where"] = f"{path.name}:{n}"
                rows.append(row)
    return rows


def _run(clf: Classifier, row: dict[str, Any]) -> Classification:
    return clf.classify(
        status=row["status"],
        http_status=row.get("http_status"),
        error_code=row.get("error_code"),
        error_message=row["message"],
    )


# What produced each corpus text; every one must be represented. `generic` is text no one stack produced
# (product wording, bare phrases, tools outside the list).
CORPUS_ECOSYSTEMS = (
    "java",
    "go",
    "node",
    "dotnet",
    "ruby",
    "php",
    "python",
    "proxy_lb",
    "kubernetes",
    "datastores",
    "cloud_sdk",
    "payment_api",
    "llm_api",
    "chinese",
    "status_only",
)


def test_corpus_is_big_and_well_formed() -> None:
    rows = _corpus()
    assert len(rows) >= 1500
    classes = {c.value for c in FailureClass}
    categories = {c.value for c in Category}
    allowed_ecosystems = {*CORPUS_ECOSYSTEMS, "generic"}
    assert {row.get("ecosystem") for row in rows} >= set(CORPUS_ECOSYSTEMS)
    for row in rows:
        assert row["expected_class"] in classes, row["where"]
        assert row.get("ecosystem") in allowed_ecosystems, row["where"]
        assert row.get("expected_category", "none") in categories, row["where"]
        reason = row.get("reason", "x")
        assert isinstance(reason, str) and reason.strip() and "\n" not in reason, row["where"]
        assert set(row) <= {
            "message",
            "http_status",
            "error_code",
            "status",
            "expected_class",
            "expected_category",
            "expected_kind",
            "ecosystem",
            "reason",
            "where",
        }, row["where"]
        assert row["status"] in {s.value for s in Status}, row["where"]


def test_corpus_class_accuracy(clf: Classifier) -> None:
    rows = _corpus()
    wrong = [
        (r["where"], r["expected_class"], _run(clf, r))
        for r in rows
        if _run(clf, r).failure_class != r["expected_class"]
    ]
    accuracy = 1 - len(wrong) / len(rows)
    detail = "\n".join(f"{w}: want {want}, got {got.failure_class.value} by {got.rule_name}" for w, want, got in wrong)
    assert accuracy >= 0.97, f"accuracy {accuracy:.3f}\n{detail}"


def test_corpus_category_and_kind(clf: Classifier) -> None:
    rows = [r for r in _corpus() if "expected_category" in r or "expected_kind" in r]
    wrong = []
    for r in rows:
        got = _run(clf, r)
        if (
            r.get("expected_category", got.category) != got.category
            or r.get("expected_kind", got.failure_kind) != got.failure_kind
        ):
            want = f"{r.get('expected_category')}/{r.get('expected_kind')}"
            wrong.append(f"{r['where']}: want {want}, got {got.category}/{got.failure_kind}")
    assert len(wrong) <= len(rows) * 0.03, "\n".join(wrong)


# ------------------------------------------------------------------------------------- caching


def test_cache_returns_the_same_decision_and_is_bounded() -> None:
    small = Classifier([default_pack()], cache_size=64)
    first = small.classify(status="failure", error_message="Read timed out")
    assert small.classify(status="failure", error_message="Read timed out") is first
    for i in range(1000):
        small.classify(status="failure", error_message=f"Read timed out after {i}ms")
    assert len(small._cache) + len(small._old) <= 64
    assert small.classify(status="failure", error_message="Read timed out") == first
    small.cache_clear()
    assert small.classify(status="failure", error_message="Read timed out") == first


def test_cache_key_keeps_fields_apart(clf: Classifier) -> None:
    a = clf.classify(status="failure", error_message="x", http_status=404)
    b = clf.classify(status="failure", error_message="x", http_status=500)
    c = clf.classify(status="failure", error_code="x", http_status=404)
    assert (a.failure_kind, b.failure_kind, c.failure_kind) == ("not_found", "internal_server_error", "not_found")


# --------------------------------------------------------------- prefilter exactness vs reference


def _kind(ch: str) -> str:
    """Letter of a spaced script, digit, or neither: the reference's own reading of a token boundary."""
    cat = unicodedata.category(ch)
    if ch.isdigit():
        return "digit"
    if cat.startswith("L") and ord(ch) < 0x2E80:
        return "letter"
    return ""


def _found(literal: str, text: str, token: bool) -> bool:
    """A literal in a text: anywhere (substring packs) or on token boundaries unless an end says `*`."""
    if not token:
        return literal in text
    core = literal.strip("*")
    if core not in text:
        return False
    left = "" if literal.startswith("*") else _kind(core[0])
    right = "" if literal.endswith("*") else _kind(core[-1])
    for m in re.finditer(f"(?={re.escape(core)})", text):
        i, j = m.start(), m.start() + len(core)
        if left and i > 0 and _kind(text[i - 1]) == left:
            continue
        if right and j < len(text) and _kind(text[j]) == right:
            continue
        return True
    return False


_TIERS = {"product": 0, "transport": 1, "message": 2}


def _reference(pack: RulePack, status: str, http: int | None, code: str | None, message: str | None) -> str:
    """Every rule tried in tier order with plain finds and `re.search`: what the engine must agree with."""
    if status == "success":
        return "success"
    text = decision_text(message, pack.frame_evidence)
    code_l = (code or "").strip().lower()
    token = pack.literal_match == "token"
    for r in sorted(pack.rules, key=lambda r: _TIERS[r.evidence]):
        m = r.match
        if m.error_message is not None and not any(_found(s, text, token) for s in m.error_message):
            continue
        if m.text is not None and not any(_found(s, text, token) or _found(s, code_l, token) for s in m.text):
            continue
        if m.error_code is not None and code_l not in m.error_code:
            continue
        if m.status is not None and status not in m.status:
            continue
        if m.http_status is not None and (http is None or not any(a <= http <= b for a, b in m.http_status)):
            continue
        if m.without_http_status and http is not None:
            continue
        if m.error_message_regex is not None and not any(re.search(p, text, re.I) for p in m.error_message_regex):
            continue
        if m.text_regex is not None and not any(
            re.search(p, text, re.I) or (code_l and re.search(p, code_l, re.I)) for p in m.text_regex
        ):
            continue
        if m.source is not None or m.operation is not None:
            continue
        return r.name
    return "unclassified"


def _packs() -> list[RulePack]:
    """The shipped default (token literals, evidence tiers) and the first shipped version (substrings)."""
    first = find_shipped_pack("default@2026-11-22")
    assert first is not None and first.literal_match == "substring"
    return [default_pack(), first]


@pytest.fixture(params=["default", "first"], scope="module")
def pack(request: pytest.FixtureRequest) -> RulePack:
    return _packs()[0 if request.param == "default" else 1]


def test_engine_agrees_with_reference_on_corpus_and_mutations(pack: RulePack) -> None:
    engine_clf = Classifier([pack])
    rnd = random.Random(20261122)
    words = [w for r in pack.rules for w in (r.match.text or ()) + (r.match.error_message or ())]
    words = [w.strip("*") for w in words]
    samples: list[tuple[str, int | None, str | None, str | None]] = [
        (r["status"], r.get("http_status"), r.get("error_code"), r["message"]) for r in _corpus()
    ]
    glue = ["", " ", "x", "_", "-", "9", ".", "(", "\n", "  ", "ü", "超"]
    for _ in range(3000):
        parts = [rnd.choice(words) for _ in range(rnd.randint(1, 4))]
        # Cut words, glue them to neighbours and to digits: substrings inside words must still count.
        parts = [p[rnd.randint(0, 2) :] if rnd.random() < 0.2 else p for p in parts]
        msg = "".join(p + rnd.choice(glue) for p in parts)
        if rnd.random() < 0.3:
            msg = msg.upper()
        code = rnd.choice([None, None, rnd.choice(words), "ECONNRESET", "23505"])
        http = rnd.choice([None, None, 404, 429, 500, 503, 499])
        samples.append((rnd.choice(["failure", "retry", "cancelled"]), http, code, msg))
    for status, http, code, message in samples:
        want = _reference(pack, status, http, code, message)
        got = engine_clf.classify(status=status, http_status=http, error_code=code, error_message=message)
        assert got.rule_name == want, (status, http, code, message)


@pytest.mark.parametrize("seed", range(5))
def test_samples_holding_counts_as_a_search_in_every_sample_would(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcé_1ß日x "  # word characters of several kinds (digits, underscore, non-ASCII) and a space
    samples = ["".join(rng.choice(alphabet + ".-:") for _ in range(rng.randint(0, 40))) for _ in range(60)]
    runs = {"".join(rng.choice(alphabet.strip()) for _ in range(rng.randint(1, 5))) for _ in range(200)}
    runs |= {"ab", "日x", "é_1"}
    expected = {run: sum(run in text for text in samples) for run in runs}
    assert samples_holding(runs, samples) == expected
    assert any(expected.values()) and not all(expected.values())


def test_index_handles_awkward_substrings() -> None:
    tricky = load_pack_data(
        {
            "id": "tricky@2026-11-22",
            "rules": [
                {
                    "name": "digits_only",
                    "match": {"error_message": "4711"},
                    "failure_kind": "a",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "punct_only",
                    "match": {"error_message": "(!)"},
                    "failure_kind": "b",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "spaced_edges",
                    "match": {"error_message": " ab cd "},
                    "failure_kind": "c",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "inner_word",
                    "match": {"error_message": "imeou"},
                    "failure_kind": "d",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "cjk",
                    "match": {"error_message": "超时了"},
                    "failure_kind": "e",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "digit_led",
                    "match": {"error_message": "0xdeadbeef"},
                    "failure_kind": "f",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "multi_line",
                    "match": {"error_message": "a\nb"},
                    "failure_kind": "g",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
                {
                    "name": "one_char",
                    "match": {"error_message": "q"},
                    "failure_kind": "h",
                    "failure_class": "client_failure",
                    "category": "data_error",
                },
            ],
        }
    )
    clf = Classifier([tricky])
    cases = {
        "id=94711x": "digits_only",
        "wow(!)": "punct_only",
        "xx ab cd yy": "spaced_edges",
        "xx ab cdyy": "unclassified",
        "READTIMEOUT": "inner_word",
        "请求超时了吗": "cjk",
        "ptr=0xDEADBEEF1": "digit_led",
        "a\nb": "multi_line",
        "a b": "unclassified",
        "zzq": "one_char",
        "zzz": "unclassified",
    }
    for message, want in cases.items():
        assert clf.classify(status="failure", error_message=message).rule_name == want, message
        assert _reference(tricky, "failure", None, None, message) == want, message


def test_masked_chunk_cache_never_changes_a_decision(pack: RulePack) -> None:
    """Chunks that differ only in digits or hex ids share a cached verdict; decisions must not."""
    clf = Classifier([pack])
    templates = [
        "[errno {n}] connection refused",
        "OSError: [Errno {n}] something",
        "x{n}: certificate problem",
        "{h} bad gateway",
        "bad{n} gateway",
        "ab{n}c timed out",
        "signal {n} (SIGKILL) worker exited prematurely",
        "WorkerLostError: Worker exited prematurely: signal {n} (SIGKILL)",
        "process exit code {n}",
        "error {n} connecting to cache:6379",
        "request failed with status code {n}",
        'GET /x HTTP/1.1" {n} UF 0 91',
        "0xc000000{n} access",
        "{n} cancelled: by peer",
        "{n} unavailable: io exception",
        "dead{n}beef deadlock",
        "{h}-timeout",
        "timeout-{h}",
        "e{n} duplicate key",
        "http{n} server sent goaway",
        "utf-{n} codec can't decode",
        "{n}",
    ]
    numbers = ["0", "1", "2", "5", "9", "11", "13", "14", "24", "28", "32", "101", "110", "111", "113", "137", "139"]
    numbers += ["143", "408", "429", "499", "500", "503", "509", "1213", "23505", "8f", "0b46", "c0ffee1"]
    for template in templates:
        for n in numbers:
            for h in ("c20b50b601fc", "0b46", "bad1", "a1", "9"):
                message = template.format(n=n, h=h)
                want = _reference(pack, "failure", None, None, message)
                got = clf.classify(status="failure", error_message=message)
                assert got.rule_name == want, message


def test_loosely_typed_http_status(clf: Classifier) -> None:
    loose: Any = "503"
    assert clf.classify(status="failure", http_status=loose).failure_kind == "service_unavailable"
    loose = "n/a"
    assert clf.classify(status="failure", http_status=loose, error_message="Request Timeout").failure_class is SVC
    loose = 408.0
    assert clf.classify(status="failure", http_status=loose, error_message="Request Timeout").failure_class is CLI


def _mask(text: str) -> str:
    return MESSAGE_MASK_RE.sub("0", text)


def test_message_mask_keeps_stable_substrings_and_guards() -> None:
    """What the whole-message cache relies on, tried on every pack substring in hostile contexts."""
    rnd = random.Random(20261122)
    pack = default_pack()
    patterns = sorted({s.strip("*") for r in pack.rules for s in (r.match.error_message or ()) + (r.match.text or ())})
    patterns += ["ab cd", "cafe", "x1", "1x", "a-b", "0xdeadbeef", "e 9", "fa", "超时了", "id=", ".", " f"]
    glue = ["", "", " ", "0", "7", "42", "a", "f", "ab", "c0", "1f", "dead", "x", "_", "-", ".", ":", "é", "超", "٣"]
    for p in patterns:
        stable = stable_under_message_mask(p)
        guard = None if stable else masked_guard(p)
        for _ in range(60):
            pre = "".join(rnd.choice(glue) for _ in range(rnd.randint(0, 3)))
            post = "".join(rnd.choice(glue) for _ in range(rnd.randint(0, 3)))
            text = pre + p + post
            masked = _mask(text)
            if stable:
                assert p in masked, (p, text, masked)
                # and the mask creates no occurrence: a near miss stays a miss
                cut = pre + p[:-1] + "|" + post
                assert (p in cut) == (p in _mask(cut)), (p, cut)
            elif guard is not None:
                assert guard in masked, (p, guard, text, masked)


def test_regex_needs_are_in_every_matching_text() -> None:
    assert regex_needs((r"code[^0-9]{0,3}429(?!\d)", r"^429")) == ("429",)
    assert regex_needs((r"(?:404|410)",)) in {("404", "410"), ("04", "10")}
    assert regex_needs((r"oom|signal 9",)) == ("gnal 9", "oom")
    # a small class of literal characters multiplies the spellings instead of ending the literal run
    assert regex_needs((r" c[dhq]-[-a-z] \d+",)) == (" cd-", " ch-", " cq-")
    assert regex_needs((r"x[ab]y[^c]",)) == ("xay", "xby")
    assert regex_needs((r"[a-z]{3}",)) is None
    # IGNORECASE matches "ı", "ſ" to i, s, and uppercase literals to the lowercased text
    assert regex_needs((r"sis",)) is None
    assert regex_needs((r"ABC",)) is None
    assert regex_needs((r"(?:12)?x?",)) is None
    assert regex_needs(None) is None
    texts = ["status 429", "http/1.1 404 x", "code: 410", "返回状态码 499", "4291", "GET /x 503", "error 401!"]
    for rule in default_pack().rules:
        for patterns in (rule.match.error_message_regex, rule.match.text_regex):
            needs = regex_needs(patterns)
            if needs is None or patterns is None:
                continue
            for text in texts + [ex.error_message.lower() for ex in rule.examples if ex.error_message]:
                if any(re.search(p, text, re.I) for p in patterns):
                    assert any(n in text for n in needs), (rule.name, text, needs)


def test_whole_message_cache_never_changes_a_decision(pack: RulePack) -> None:
    """Messages that mask alike share one cached program; every one must still decide like the reference."""
    clf = Classifier([pack])
    rnd = random.Random(7)
    subs = sorted({s.strip("*") for r in pack.rules for s in (r.match.error_message or ()) + (r.match.text or ())})
    fills = ["1", "9", "28", "32", "111", "137", "429", "499", "503", "0xc0000005", "c0ffee", "7f3a", "a1", "1a"]
    fills += ["deadbeef1", "x509", "utf-8", "http/1.1", "٣", "1.1", "12ab", "ab12", "408"]
    digity = [s for s in subs if any(ch.isdigit() for ch in s) or s.split()[0] in ("bad", "a", "dead", "add")]
    for _ in range(4000):
        words = [rnd.choice(digity if rnd.random() < 0.5 else subs) for _ in range(rnd.randint(1, 3))]
        glue = [rnd.choice([" ", "", "-", ": ", " {x} ", "{x}", "({x})", '" {x} ']) for _ in words]
        template = "".join(w + g for w, g in zip(words, glue, strict=True))
        for _ in range(3):
            message = template.replace("{x}", rnd.choice(fills))
            if rnd.random() < 0.2:
                message = message.upper()
            code = rnd.choice([None, None, "ECONNRESET", "23505", "429"])
            http = rnd.choice([None, None, 404, 429, 499, 503])
            want = _reference(pack, "failure", http, code, message)
            got = clf.classify(status="failure", http_status=http, error_code=code, error_message=message)
            assert got.rule_name == want, (http, code, message)


def test_long_messages_bypass_the_mask_cache_and_agree(pack: RulePack) -> None:
    clf = Classifier([pack])
    rnd = random.Random(3)
    subs = sorted({s.strip("*") for r in pack.rules for s in (r.match.error_message or ()) + (r.match.text or ())})
    filler = " ".join(f"item{n} ok" for n in range(150))  # over 1024 characters
    for _ in range(500):
        words = [rnd.choice(subs) for _ in range(rnd.randint(1, 3))]
        message = filler + " " + " 7 ".join(words) if rnd.random() < 0.5 else " ".join(words) + " " + filler
        http = rnd.choice([None, 429, 503])
        want = _reference(pack, "failure", http, None, message)
        assert clf.classify(status="failure", http_status=http, error_message=message).rule_name == want, message
    assert not clf._programs and not clf._old_programs  # none of them was cached by its mask


def test_mask_cache_is_bounded() -> None:
    clf = Classifier([default_pack()])
    for i in range(40_000):
        name = "".join("ghijklmnop"[int(d)] for d in str(i))  # letters: a new mask every time
        clf.classify(status="failure", error_message=f"worker {name} failed")
    assert clf._old_programs  # the generations did turn over
    assert len(clf._programs) <= 16384 and len(clf._old_programs) <= 16384


# ------------------------------------------------------------------------- token boundaries


def _token_pack(*literals: str, field: str = "error_message") -> RulePack:
    return load_pack_data(
        {
            "id": "tokens@2026-12-06",
            "literal_match": "token",
            "rules": [
                {
                    "name": f"r{i}",
                    "match": {field: lit},
                    "failure_kind": f"k{i}",
                    "failure_class": "service_failure",
                    "category": "system_error",
                }
                for i, lit in enumerate(literals)
            ],
        }
    )


@pytest.mark.parametrize(
    ("literal", "message", "matches"),
    [
        # numbers are whole numbers
        ("error 111", "ERROR 1114 (HY000): The table 'order_events' is full", False),
        ("111", "ERROR 2003 (HY000): Can't connect to MySQL server on 'db' (11111)", False),
        ("111", "[Errno 111] Connection refused", True),
        ("111", "errno111", True),  # a letter-to-digit change is a boundary
        # words are whole words
        ("servererror", "at com.acme.web.InternalServerErrorHandler.handle", False),
        ("servererror", "MongoServerError: E11000 duplicate key", False),
        ("timeout", "read_timeout after 30s", True),  # `_`, `.`, `-`, `:` are boundaries
        ("timeout", "timeouts piling up", False),
        ("ask ", "task exited with return code 1", False),
        # `*` lets the token go on at that end
        ("*timeoutexception", "java.net.SocketTimeoutException: Read timed out", True),
        ("*timeoutexception", "SocketTimeoutExceptionHandler", False),
        ("client disconnect*", "client disconnected", True),
        ("*notfound*", "ResourceNotFoundException: requested resource", True),
        # CJK needs no boundary, neither inside a CJK run nor next to Latin text
        ("超时", "连接超时了", True),
        ("请求超时", "请求超时", True),
        ("timeout", "连接timeout", True),
        ("权限", "无权限访问该资源", True),
        # punctuation edges need nothing: the literal is what it says
        ("(110:", "upstream timed out (110: Connection timed out)", True),
        ('http/1.1" ', 'GET /x HTTP/1.1" 503 UF', True),
        ("x509:", "tls: x509: certificate signed by unknown authority", True),
        ("emfile:", "Error: EMFILE: too many open files", True),
    ],
)
def test_token_boundaries(literal: str, message: str, matches: bool) -> None:
    clf = Classifier([_token_pack(literal)])
    got = clf.classify(status="failure", error_message=message).rule_name
    assert (got == "r0") is matches, (literal, message, got)
    assert _found(literal, decision_text(message), True) is matches
    # the same literal in a substring pack is found anywhere its core is
    plain = Classifier([_token_pack(literal).model_copy(update={"literal_match": "substring"})])
    core_in = literal in decision_text(message)
    assert (plain.classify(status="failure", error_message=message).rule_name == "r0") is core_in


def test_token_literals_read_the_error_code_too() -> None:
    clf = Classifier([_token_pack("econnrefused", "111", field="text")])
    assert clf.classify(status="failure", error_code="ECONNREFUSED").rule_name == "r0"
    assert clf.classify(status="failure", error_code="XECONNREFUSED").rule_name == "unclassified"
    assert clf.classify(status="failure", error_code="111").rule_name == "r1"
    assert clf.classify(status="failure", error_code="1111").rule_name == "unclassified"


def test_token_decisions_survive_the_mask_caches() -> None:
    """Texts that mask alike (digits, hex ids) must not share a verdict a boundary would tell apart."""
    clf = Classifier([_token_pack("111", "error 111", "timeout", "*id", "deadbeef", "v2")])
    ref = _token_pack("111", "error 111", "timeout", "*id", "deadbeef", "v2")
    for template in ("errno {n}", "error {n}", "timeout{n}", "{n}timeout", "x{n}id", "{n} deadbeef", "v{n}"):
        for n in ("1", "11", "111", "1111", "1114", "a1", "0x111", "111a", "2", "9f"):
            message = template.format(n=n)
            want = _reference(ref, "failure", None, None, message)
            assert clf.classify(status="failure", error_message=message).rule_name == want, message


def test_star_must_sit_at_an_end_and_leave_something() -> None:
    with pytest.raises(RulePackError, match="may only open"):
        _token_pack("time*out")
    with pytest.raises(RulePackError, match="nothing to match"):
        _token_pack("**")
    # a substring pack reads `*` literally, as it always did
    plain = load_pack_data({"id": "p@2026-12-06", "rules": [_rule_dict("a", {"error_message": "time*out"})]})
    assert Classifier([plain]).classify(status="failure", error_message="time*out").rule_name == "a"


def _rule_dict(name: str, match: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = {
        "name": name,
        "match": match,
        "failure_kind": name,
        "failure_class": kw.pop("failure_class", "service_failure"),
        "category": kw.pop("category", "system_error"),
    }
    out.update(kw)
    return out


# ----------------------------------------------------------------------- evidence precedence


def test_tiers_order_rules_within_a_pack_but_not_across_packs() -> None:
    pack = load_pack_data(
        {
            "id": "tiers@2026-12-06",
            "rules": [
                _rule_dict("word", {"text": "timeout"}),
                _rule_dict("status", {"http_status": 499}, evidence="transport", failure_class="client_abort"),
                _rule_dict("literal", {"text": "request_body_read_timeout"}, evidence="product"),
            ],
        }
    )
    assert [r.name for r in pack.tried_in_order()] == ["literal", "status", "word"]
    clf = Classifier([pack])
    assert clf.classify(status="failure", http_status=499, error_message="timeout").rule_name == "status"
    assert clf.classify(status="failure", http_status=499, error_message="request_body_read_timeout").rule_name == (
        "literal"
    )
    assert clf.classify(status="failure", http_status=500, error_message="timeout").rule_name == "word"
    # a tenant's pack comes first whatever the tiers of the packs under it
    tenant = load_pack_data({"id": "tenant@2026-12-06", "rules": [_rule_dict("mine", {"text": "timeout"})]})
    layered = Classifier([tenant, pack])
    assert layered.classify(status="failure", http_status=499, error_message="timeout").rule_name == "mine"


def test_transport_rule_must_read_a_transport_fact() -> None:
    from faultlens.classify.lint import check_pack

    bad = load_pack_data(
        {"id": "t@2026-12-06", "rules": [_rule_dict("w", {"text": "x"}, evidence="transport", examples=[{}])]}
    )
    assert "transport_without_fact" in {p.code for p in check_pack(bad)}


@pytest.mark.parametrize(
    ("message", "http_status", "error_code", "kind", "cls"),
    [
        # a transport fact outranks a word of the message
        ("java.lang.IllegalStateException: Stream closed", 413, None, "payload_too_large", CLI),
        ("TypeError: Cannot read properties of undefined", 413, None, "payload_too_large", CLI),
        ("请求超时", 499, None, "client_closed_request", ABT),
        ("upstream timed out (110: Connection timed out)", 499, None, "client_closed_request", ABT),
        ("upstream request timeout", 460, None, "client_closed_request", ABT),
        ("client closed connection", None, "23505", "unique_violation", CLI),
        # the product's literals stay golden whatever the transport says
        ("downstream_closed", 500, None, "downstream_closed", ABT),
        ("failed_contact_upstream", 499, None, "failed_contact_upstream", SVC),
        ("upstream_stream_error", 413, None, "upstream_stream_error", SVC),
        ("request_body_read_timeout", 499, None, "request_body_read_timeout", SVC),
        ("request_body_read_timeout", 408, None, "request_body_read_timeout", SVC),
        ("invalid api key", 499, None, "api_key_invalid", CLI),
        ("API密钥无效", 413, None, "api_key_invalid", CLI),
        (None, 499, "failed_contact_upstream", "failed_contact_upstream", SVC),
    ],
)
def test_transport_facts_outrank_words_but_never_product_literals(
    clf: Classifier, message: str | None, http_status: int | None, error_code: str | None, kind: str, cls: FailureClass
) -> None:
    got = classify(clf, message, http_status=http_status, error_code=error_code)
    assert (got.failure_kind, got.failure_class) == (kind, cls)
    assert got.is_actionable is (cls is SVC)


@pytest.mark.parametrize(
    ("message", "http_status", "category"),
    [
        (
            'Error from server (Forbidden): error when creating "deploy.yaml": admission webhook '
            '"validate.kyverno.svc-fail" denied the request: require-labels: label app is required',
            None,
            "authorization",
        ),
        ('admission webhook "vpod.kb.io" denied the request: spec.containers[0].image: Invalid value', 403, None),
        (
            'failed to set up sandbox container network for pod "web-1": networkPlugin cni failed to set up pod '
            '"web-1_default" network: NoCredentialProviders: no valid providers in chain',
            None,
            "authorization",
        ),
        (
            'Error creating: pods "api-7c9f8d6b5-" is forbidden: exceeded quota: team-quota, requested: '
            "limits.memory=2Gi, used: limits.memory=62Gi, limited: limits.memory=64Gi",
            403,
            "resource_exhausted",
        ),
        (
            "ClusterBlockException[index [orders] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];]",
            403,
            "resource_exhausted",
        ),
        ("blocked by: [FORBIDDEN/8/index write (api)];", 403, "resource_exhausted"),
        ('pods "api-1" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi', 403, None),
        (
            "ipamd: failed to allocate IP: UnauthorizedOperation: You are not authorized to perform this operation.",
            None,
            "authorization",
        ),
    ],
)
def test_the_platforms_own_refusals_are_service_failures(
    clf: Classifier, message: str, http_status: int | None, category: str | None
) -> None:
    got = classify(clf, message, http_status=http_status)
    assert (got.failure_class, got.is_actionable) == (SVC, True), got.rule_name
    if category is not None:
        assert got.category == category


# ----------------------------------------------------------------- benign text on a failure


@pytest.mark.parametrize(
    "message",
    [
        "Success",
        "OK",
        "ok.",
        "操作成功",
        "请求成功",
        "health check passed",
        "Completed successfully",
        "Done!",
        '{"code": 0, "msg": "success"}',
        "HTTP/1.1 200 OK",
        "The operation completed successfully.",
        "Job finished successfully",
        "任务完成",
    ],
)
def test_benign_text_on_a_failed_event_pages_no_one(clf: Classifier, message: str) -> None:
    for status in ("failure", "retry", "dead_letter"):
        got = classify(clf, message, status=status)
        assert (got.failure_kind, got.failure_class, got.is_actionable, got.retryable, got.category) == (
            "benign_text_on_failure",
            CLI,
            False,
            False,
            "unknown",
        )
    # a status code, when there is one, decides; a cancelled event stays cancelled; success stays none
    assert classify(clf, message, http_status=503).failure_kind == "service_unavailable"
    assert classify(clf, message, http_status=499).failure_class is ABT
    assert classify(clf, message, status="cancelled").failure_kind == "cancelled"
    assert classify(clf, message, status="success").failure_class is NONE


@pytest.mark.parametrize("message", ["success rate dropped below 90%", "OK but upstream timed out", "not ok"])
def test_success_words_inside_a_real_message_are_not_benign(clf: Classifier, message: str) -> None:
    assert classify(clf, message).failure_kind != "benign_text_on_failure"
