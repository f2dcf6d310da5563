"""Rule packs: schema, loading, validation errors, layering, and the shipped pack's own checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from faultlens.classify.engine import Classifier
from faultlens.classify.examples import test_pack
from faultlens.classify.lint import check_pack
from faultlens.classify.rules import Match, default_pack, load_pack, load_pack_data
from faultlens.errors import RulePackError
from faultlens.model import Category, FailureClass, Status

SPEC_PACK: dict[str, Any] = {
    "id": "custom@2026-11-22",
    "description": "widgets",
    "changelog": ["first"],
    "rules": [
        {
            "name": "widget_exploded",
            "match": {"error_message": "widget_exploded"},
            "failure_kind": "widget_exploded",
            "failure_class": "client_failure",
            "is_actionable": False,
            "category": "data_error",
            "examples": [{"error_message": "widget_exploded at 3"}],
        }
    ],
}


def rule(name: str, match: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "match": match,
        "failure_kind": kw.pop("kind", name),
        "failure_class": kw.pop("failure_class", "service_failure"),
        "category": kw.pop("category", "system_error"),
    }
    out.update(kw)
    return out


def pack(*rules: dict[str, Any], pack_id: str = "custom@2026-11-22") -> dict[str, Any]:
    return {"id": pack_id, "rules": list(rules)}


# ------------------------------------------------------------------------------- shipped pack


def test_default_pack_loads_once_with_examples_everywhere() -> None:
    p = default_pack()
    assert p is default_pack()
    assert p.id == "default@2026-12-09"
    assert p.literal_match == "token"
    assert len(p.rules) > 100
    assert p.changelog
    assert all(r.examples for r in p.rules), [r.name for r in p.rules if not r.examples]


def test_default_pack_examples_all_pass() -> None:
    failures = test_pack(default_pack())
    assert not failures, "\n".join(f.message for f in failures)


def test_default_pack_has_no_structural_problems() -> None:
    problems = check_pack(default_pack())
    assert not problems, "\n".join(f"{p.code}: {p.message}" for p in problems)


def test_default_pack_uses_only_model_enums() -> None:
    for r in default_pack().rules:
        assert isinstance(r.failure_class, FailureClass)
        assert isinstance(r.category, Category)
        assert r.failure_kind == r.failure_kind.lower()


# ----------------------------------------------------------------------------------- loading


def test_spec_pack_loads_and_classifies() -> None:
    p = load_pack_data(SPEC_PACK)
    r = p.rules[0]
    assert (r.failure_class, r.category, r.is_actionable, r.retryable) == (
        FailureClass.CLIENT_FAILURE,
        Category.DATA_ERROR,
        False,
        False,
    )
    assert p.name == "custom" and str(p.date) == "2026-11-22"
    assert test_pack(p) == []
    got = Classifier([p, default_pack()]).classify(status="failure", error_message="WIDGET_EXPLODED at 9")
    assert (got.rule_name, got.rule_version) == ("widget_exploded", "custom@2026-11-22")


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_load_pack_by_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"custom{suffix}"
    text = json.dumps(SPEC_PACK) if suffix == ".json" else yaml.safe_dump(SPEC_PACK, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    assert load_pack(path).id == "custom@2026-11-22"


def test_load_pack_rejects_unknown_extension_missing_file_and_bad_syntax(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("{}", encoding="utf-8")
    with pytest.raises(RulePackError, match=r"\.yaml, \.yml or \.json"):
        load_pack(txt)
    with pytest.raises(RulePackError, match="cannot read"):
        load_pack(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(RulePackError, match="not valid yaml"):
        load_pack(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope", encoding="utf-8")
    with pytest.raises(RulePackError, match="not valid json"):
        load_pack(bad_json)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="mapping"):
        load_pack(listy)


def test_dump_round_trips() -> None:
    p = default_pack()
    again = load_pack_data(p.model_dump(mode="json", exclude_none=True))
    assert again == p


# ---------------------------------------------------------------------------- validation errors


def _error(data: dict[str, Any]) -> RulePackError:
    with pytest.raises(RulePackError) as info:
        load_pack_data(data)
    return info.value


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r.update(colour="red"), "colour"),
        (lambda r: r["match"].update(message="x"), "match.message"),
        (lambda r: r["match"].update(error_message_regex="(unclosed"), "match.error_message_regex"),
        (lambda r: r["match"].update(text_regex=["ok", "[z-a]"]), "match.text_regex"),
        (lambda r: r.update(failure_class="their_fault"), "failure_class"),
        (lambda r: r.update(category="weather"), "category"),
        (lambda r: r.update(failure_kind="Not Snake"), "failure_kind"),
        (lambda r: r["match"].update(http_status="5xx-ish"), "match.http_status"),
        (lambda r: r["match"].update(http_status={"min": 500, "max": 499}), "match.http_status"),
        (lambda r: r["match"].update(http_status=[200, 1200]), "match.http_status"),
        (lambda r: r["match"].update(status=["failure", "exploded"]), "match.status"),
        (lambda r: r["match"].update(error_message=[]), "match.error_message"),
        (lambda r: r["match"].update(error_message=["ok", ""]), "match.error_message"),
        (lambda r: r.update(examples=[{"error_message": "x", "colour": 1}]), "examples.0.colour"),
        (lambda r: r.update(examples=[{"status": "exploded"}]), "examples.0.status"),
    ],
)
def test_bad_rules_name_the_rule_and_field(mutate: Any, needle: str) -> None:
    r = rule("widget_rule", {"error_message": "widget"})
    mutate(r)
    err = _error(pack(rule("fine", {"error_code": "e1"}), r))
    assert "rule 'widget_rule' (rules[1])" in err.message
    assert needle in err.message
    assert err.code == "invalid_rule_pack" and err.http_status == 400
    assert err.details["pack"] == "custom@2026-11-22"
    assert any(d["rule"] == "rule 'widget_rule' (rules[1])" for d in err.details["errors"])


@pytest.mark.parametrize("pack_id", ["custom", "custom@2026-13-01", "custom@26-11-22", "@2026-11-22", "a b@2026-11-22"])
def test_pack_id_must_be_name_at_date(pack_id: str) -> None:
    err = _error(pack(rule("r", {"error_code": "x"}), pack_id=pack_id))
    assert "id" in err.message


def test_unknown_top_level_key_is_rejected() -> None:
    data = pack(rule("r", {"error_code": "x"}))
    data["rulez"] = []
    assert "rulez" in _error(data).message


def test_not_a_mapping() -> None:
    with pytest.raises(RulePackError):
        load_pack_data([])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ defaults


@pytest.mark.parametrize(
    ("failure_class", "category", "actionable", "retryable"),
    [
        ("service_failure", "service_timeout", True, True),
        ("service_failure", "dependency_error", True, True),
        ("service_failure", "system_error", True, False),
        ("client_failure", "rate_limited", False, True),
        ("client_failure", "authorization", False, False),
        ("client_failure", "data_error", False, False),
        ("client_failure", "conflict", False, False),
        ("service_failure", "conflict", True, True),
        ("client_abort", "client_abort", False, False),
    ],
)
def test_actionable_and_retryable_defaults(
    failure_class: str, category: str, actionable: bool, retryable: bool
) -> None:
    p = load_pack_data(pack(rule("r", {"error_code": "x"}, failure_class=failure_class, category=category)))
    assert (p.rules[0].is_actionable, p.rules[0].retryable) == (actionable, retryable)


def test_explicit_flags_win_over_defaults() -> None:
    p = load_pack_data(pack(rule("r", {"error_code": "x"}, is_actionable=False, retryable=True)))
    assert (p.rules[0].is_actionable, p.rules[0].retryable) == (False, True)


# ------------------------------------------------------------------------------ match semantics


@pytest.mark.parametrize(
    ("value", "inside", "outside"),
    [
        (503, [503], [502, 504]),
        ([502, 504], [502, 504], [503]),
        ("500-599", [500, 550, 599], [499, 600]),
        ("5xx", [500, 599], [499]),
        ({"min": 400, "max": 403}, [400, 403], [404]),
        ({"min": 520}, [520, 999], [519]),
        (["401", "500-502"], [401, 500, 502], [402, 503]),
    ],
)
def test_http_status_forms(value: Any, inside: list[int], outside: list[int]) -> None:
    clf = Classifier([load_pack_data(pack(rule("r", {"http_status": value})))])
    for code in inside:
        assert clf.classify(status="failure", http_status=code).rule_name == "r"
    for code in outside:
        assert clf.classify(status="failure", http_status=code).rule_name == "unclassified"


def test_without_http_status_holds_only_when_the_event_carries_none() -> None:
    """The condition for "our own call": the same words decide only when no caller status came with them."""
    ours = rule("ours", {"text": "status 429", "without_http_status": True})
    theirs = rule("theirs", {"text": "status 429"}, failure_class="client_failure")
    clf = Classifier([load_pack_data(pack(ours, theirs))])
    assert clf.classify(status="failure", error_message="the server responded with status 429").rule_name == "ours"
    relayed = clf.classify(status="failure", http_status=429, error_message="the server responded with status 429")
    assert relayed.rule_name == "theirs"
    assert clf.classify(status="failure", http_status=500, error_message="status 429").rule_name == "theirs"


@pytest.mark.parametrize("bad", [{"without_http_status": False}, {"without_http_status": True, "http_status": 429}])
def test_without_http_status_is_true_or_absent_and_never_beside_http_status(bad: dict[str, Any]) -> None:
    with pytest.raises(RulePackError, match="without_http_status"):
        load_pack_data(pack(rule("r", {"text": "x", **bad})))


def test_without_http_status_is_pinned_content_only_when_set() -> None:
    from faultlens.classify.versions import pack_digest

    plain = load_pack_data(pack(rule("r", {"text": "x"})))
    scoped = load_pack_data(pack(rule("r", {"text": "x", "without_http_status": True})))
    assert pack_digest(plain) != pack_digest(scoped)
    assert "without_http_status" not in json.dumps(plain.model_dump(mode="json", exclude_defaults=True))


_TOMCAT_WRITE = (
    "java.io.IOException: Connection reset by peer\n"
    "\tat sun.nio.ch.SocketDispatcher.write0(Native Method)\n"
    "\tat org.apache.catalina.connector.OutputBuffer.realWriteBytes(OutputBuffer.java:392)"
)


def test_frame_evidence_keeps_only_the_frames_a_pack_names() -> None:
    """Frames are dropped from the decision text unless the pack names them: a rule can read where it was raised."""
    frame_rule = rule("server_write", {"text": "connection reset", "text_regex": r"\bat org\.apache\.catalina\."})
    later = rule("reset", {"text": "connection reset"})
    without = Classifier([load_pack_data(pack(frame_rule, later))])
    data = pack(frame_rule, later)
    data["frame_evidence"] = ["org.apache.catalina.connector.OutputBuffer"]  # lowercased on load
    with_frames = Classifier([load_pack_data(data)])
    assert without.classify(status="failure", error_message=_TOMCAT_WRITE).rule_name == "reset"
    assert with_frames.classify(status="failure", error_message=_TOMCAT_WRITE).rule_name == "server_write"
    # the unnamed frame (SocketDispatcher) stays out of the text either way
    other = _TOMCAT_WRITE.replace("org.apache.catalina.connector.OutputBuffer", "org.postgresql.core.PGStream")
    assert with_frames.classify(status="failure", error_message=other).rule_name == "reset"


def test_frame_evidence_reads_a_python_tracebacks_innermost_frame_only() -> None:
    from faultlens.classify.text import decision_text

    frames = ("gunicorn/http/wsgi.py", "gunicorn/workers/sync.py")
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/app/gunicorn/workers/sync.py", line 135, in handle\n'
        "    self.handle_request(listener, req, client, addr)\n"
        '  File "/app/api/db.py", line 12, in get\n'
        "    cur.execute(sql)\n"
        "ConnectionResetError: [Errno 104] Connection reset by peer"
    )
    # the outer frame is on every request's path: only the innermost one may say who failed
    assert decision_text(tb, frames) == "connectionreseterror: [errno 104] connection reset by peer"
    inner = tb.replace("/app/api/db.py", "/app/gunicorn/http/wsgi.py")
    assert decision_text(inner, frames).startswith('file "/app/gunicorn/http/wsgi.py", line 12, in get\n')
    assert decision_text(inner) == "connectionreseterror: [errno 104] connection reset by peer"
    # the logger's line before a traceback is read with frame_evidence only
    logged = "[ERROR] Error handling request /export\n" + tb
    assert decision_text(logged, frames).startswith("[error] error handling request /export\n")
    assert decision_text(logged) == "connectionreseterror: [errno 104] connection reset by peer"


def test_frame_evidence_is_pinned_content_only_when_set() -> None:
    from faultlens.classify.versions import pack_digest

    plain = load_pack_data(pack(rule("r", {"text": "x"})))
    data = pack(rule("r", {"text": "x"}))
    data["frame_evidence"] = ["serverresponse."]
    framed = load_pack_data(data)
    assert framed.frame_evidence == ("serverresponse.",)
    assert pack_digest(plain) != pack_digest(framed)
    assert "frame_evidence" not in json.dumps(plain.model_dump(mode="json", exclude_defaults=True))


def test_lint_knows_a_status_free_rule_cannot_hide_a_general_one() -> None:
    """A rule that needs no caller status leaves the events with one to a later rule of the same words."""
    p = load_pack_data(
        pack(
            rule("ours", {"text": "x", "without_http_status": True}, examples=[{"error_message": "x"}]),
            rule("any", {"text": "x"}, examples=[{"http_status": 403, "error_message": "x"}]),
            rule("later", {"text": "x", "without_http_status": True}, examples=[{"error_message": "x"}]),
        )
    )
    problems = {(pr.code, pr.rule) for pr in check_pack(p)}
    assert ("unreachable", "any") not in problems
    assert ("unreachable", "later") in problems


def test_match_is_and_across_fields_or_within_lists() -> None:
    r = rule(
        "r",
        {
            "error_message": ["disk", "volume"],
            "error_code": ["EIO", "enospc"],
            "status": ["failure", "retry"],
            "source": "Worker",
            "operation": ["export", "import"],
        },
    )
    clf = Classifier([load_pack_data(pack(r))])

    def decide(**kw: Any) -> str:
        event: dict[str, Any] = {
            "status": "retry",
            "error_message": "Volume gone",
            "error_code": "ENOSPC",
            "source": "worker",
            "operation": "EXPORT",
        }
        event.update(kw)
        return clf.classify(**event).rule_name

    assert decide() == "r"
    assert decide(error_message="DISK failure", error_code="eio") == "r"
    assert decide(error_message="network") == "unclassified"
    assert decide(error_code="EPERM") == "unclassified"
    assert decide(status="dead_letter") == "unclassified"
    assert decide(source="api") == "unclassified"
    assert decide(operation=None) == "unclassified"


def test_regex_is_case_insensitive_and_text_covers_the_code() -> None:
    p = load_pack_data(
        pack(
            rule("rx", {"error_message_regex": r"order \d+ stuck"}),
            rule("tx", {"text": ["E_WIDGET"]}),
            rule("trx", {"text_regex": [r"^gadget-\d+$"]}),
        )
    )
    clf = Classifier([p])
    assert clf.classify(status="failure", error_message="ORDER 42 STUCK again").rule_name == "rx"
    assert clf.classify(status="failure", error_code="e_widget_7").rule_name == "tx"
    assert clf.classify(status="failure", error_message="saw E_Widget here").rule_name == "tx"
    assert clf.classify(status="failure", error_code="GADGET-9").rule_name == "trx"
    # error_message conditions never look at the code.
    assert clf.classify(status="failure", error_code="order 1 stuck").rule_name == "unclassified"


def test_match_is_empty() -> None:
    assert Match().is_empty()
    assert not Match(error_code=("x",)).is_empty()


# ------------------------------------------------------------------------------------ layering


def test_user_pack_is_tried_before_default_and_version_names_both() -> None:
    custom = load_pack_data(
        pack(rule("our_timeouts_are_fine", {"error_message": "timed out"}, failure_class="client_failure"))
    )
    clf = Classifier([custom, default_pack()])
    assert clf.version == f"custom@2026-11-22+{default_pack().id}"
    got = clf.classify(status="failure", error_message="Read timed out")
    assert (got.rule_name, got.rule_version, got.failure_class) == (
        "our_timeouts_are_fine",
        "custom@2026-11-22",
        FailureClass.CLIENT_FAILURE,
    )
    other = clf.classify(status="failure", error_message="deadlock detected")
    assert other.rule_version == default_pack().id
    assert Classifier([default_pack()]).version == default_pack().id


def test_duplicate_pack_ids_are_rejected() -> None:
    with pytest.raises(RulePackError, match="unique"):
        Classifier([default_pack(), default_pack()])


def test_builtin_decisions_carry_the_stack_version() -> None:
    clf = Classifier([load_pack_data(pack(rule("r", {"error_code": "x"}))), default_pack()])
    assert clf.classify(status="success").rule_version == clf.version
    assert clf.classify(status="failure", error_message="zzz").rule_version == clf.version


# ---------------------------------------------------------------------------------- check_pack


def test_check_pack_reports_duplicates_empty_unreachable_and_shadowed() -> None:
    p = load_pack_data(
        pack(
            rule("timeouts", {"error_message": ["timeout", "timed out"]}, examples=[{"error_message": "timeout"}]),
            rule("read_timeouts", {"error_message": "read timeout"}, examples=[{"error_message": "read timeout"}]),
            rule(
                "slow_db",
                {"error_message": "slow", "error_code": "db"},
                examples=[{"error_message": "slow query timed out", "error_code": "db"}],
            ),
            rule("timeouts", {"error_code": "t1"}, examples=[{"error_code": "t1"}]),
            rule("catch_all", {}, examples=[{"error_message": "x"}]),
            rule("after_all", {"error_code": "late"}, examples=[{"error_code": "late"}]),
            rule("undocumented", {"error_code": "nodoc"}),
        )
    )
    problems = check_pack(p)
    by_code = {(pr.code, pr.rule) for pr in problems}
    assert ("unreachable", "read_timeouts") in by_code
    assert ("shadowed", "slow_db") in by_code
    assert ("duplicate_name", "timeouts") in by_code
    assert ("empty_match", "catch_all") in by_code
    assert ("no_examples", "undocumented") in by_code
    assert ("shadowed", "after_all") in by_code
    warning = next(pr for pr in problems if pr.code == "no_examples")
    assert warning.severity == "warning"
    assert all(pr.message for pr in problems)


def test_check_pack_flags_redundant_substrings_and_base_id_clash() -> None:
    p = load_pack_data(
        pack(
            rule("a", {"text": ["refused"]}, examples=[{"error_message": "refused"}]),
            rule(
                "b",
                {"text": ["connection refused", "econnreset"]},
                examples=[{"error_message": "econnreset"}],
            ),
        )
    )
    problems = check_pack(p, base=[load_pack_data(pack(rule("z", {"error_code": "z"})))])
    codes = {pr.code for pr in problems}
    assert {"redundant_pattern", "duplicate_pack_id"} <= codes


def test_check_pack_clean_pack() -> None:
    assert check_pack(load_pack_data(SPEC_PACK)) == []


# ----------------------------------------------------------------------------------- test_pack


def test_test_pack_reports_examples_that_do_not_classify_as_declared() -> None:
    p = load_pack_data(
        pack(
            rule("net", {"error_message": "refused"}, examples=[{"error_message": "connection refused"}]),
            rule(
                "net_slow",
                {"error_message": "slow"},
                examples=[
                    {"error_message": "slow and refused"},  # decided by "net": a failure
                    {"error_message": "slow and refused", "expect": {"rule": "net"}},
                    {"error_message": "slow", "expect": {"failure_class": "client_failure"}},
                ],
            ),
        )
    )
    failures = test_pack(p)
    assert [(f.rule, f.index) for f in failures] == [("net_slow", 0), ("net_slow", 2)]
    assert "expected 'net_slow', got 'net'" in failures[0].message
    assert failures[1].expected["failure_class"] == "client_failure"
    assert failures[0].actual.rule_name == "net"


def test_test_pack_layers_on_base() -> None:
    p = load_pack_data(
        pack(
            rule(
                "mine",
                {"error_code": "mine"},
                examples=[
                    {"error_code": "mine"},
                    {"error_message": "deadlock detected", "expect": {"rule": "db_deadlock"}},
                ],
            )
        )
    )
    assert test_pack(p, base=[default_pack()]) == []
    assert [f.index for f in test_pack(p)] == [1]


def test_status_values_are_the_model_enum() -> None:
    p = load_pack_data(pack(rule("r", {"status": ["CANCELLED", "dead_letter"]})))
    assert p.rules[0].match.status == (Status.CANCELLED, Status.DEAD_LETTER)


# ----------------------------------------------------------------- provenance, tiers, tokens


def test_every_shipped_rule_names_its_origin() -> None:
    rules = default_pack().rules
    assert all(r.origin for r in rules), [r.name for r in rules if not r.origin]
    # a rule naming one stack's exception types has that stack's origin, not "general"
    by_name = {r.name: r for r in rules}
    assert by_name["envoy_flags_client_abort"].origin == ("proxy_lb",)
    assert by_name["http_499"].origin == ("general",)
    assert "java" in (by_name["db_lock_timeout"].origin or ())


@pytest.mark.parametrize(
    ("origin", "needle"),
    [
        (["Java"], "lowercase name"),
        (["java", "java"], "must not repeat"),
        (["general", "go"], "stands alone"),
        ([], "must not be an empty list"),
        (["java go"], "lowercase name"),
    ],
)
def test_bad_origins_are_refused(origin: list[str], needle: str) -> None:
    with pytest.raises(RulePackError, match=needle):
        load_pack_data(pack(rule("r", {"error_code": "x"}, origin=origin)))


def test_origin_may_be_a_single_name_and_is_optional() -> None:
    p = load_pack_data(pack(rule("r", {"error_code": "x"}, origin="go"), rule("s", {"error_code": "y"})))
    assert p.rules[0].origin == ("go",) and p.rules[1].origin is None


def test_lint_wants_every_rule_tagged_once_any_is() -> None:
    tagged = rule("r", {"error_code": "x"}, origin=["go"], examples=[{"error_code": "x"}])
    untagged = rule("s", {"error_code": "y"}, examples=[{"error_code": "y"}])
    problems = check_pack(load_pack_data(pack(tagged, untagged)))
    assert [(p.code, p.rule) for p in problems] == [("missing_origin", "s")]
    assert check_pack(load_pack_data(pack(untagged))) == []


def test_evidence_must_be_a_known_tier() -> None:
    with pytest.raises(RulePackError, match="evidence"):
        load_pack_data(pack(rule("r", {"error_code": "x"}, evidence="gut_feeling")))


def test_lint_reads_token_literals_as_tokens() -> None:
    """In a token pack "timeout" does not hide "timeouts piling up"; in a substring pack it does."""
    rules = [
        rule("t", {"text": ["timeout"]}, examples=[{"error_message": "timeout"}]),
        rule("ts", {"text": ["timeouts piling up"]}, examples=[{"error_message": "timeouts piling up"}]),
        rule("read", {"text": ["*timeout"]}, examples=[{"error_message": "readtimeout"}]),
    ]
    substring = {(p.code, p.rule) for p in check_pack(load_pack_data(pack(*rules)))}
    token = {(p.code, p.rule) for p in check_pack(load_pack_data({**pack(*rules), "literal_match": "token"}))}
    assert ("unreachable", "ts") in substring
    assert ("unreachable", "ts") not in token and ("unreachable", "read") not in token


def test_lint_follows_the_tier_order() -> None:
    """A transport rule later in the file is tried first, so it can hide an earlier message rule."""
    p = load_pack_data(
        pack(
            rule("word", {"http_status": 499, "text": "x"}, examples=[{"http_status": 499, "error_message": "x"}]),
            rule("status", {"http_status": 499}, evidence="transport", examples=[{"http_status": 499}]),
        )
    )
    assert ("unreachable", "word") in {(pr.code, pr.rule) for pr in check_pack(p)}


def test_literal_match_is_part_of_the_pinned_content() -> None:
    from faultlens.classify.versions import pack_digest

    plain = load_pack_data(pack(rule("r", {"text": "x"})))
    explicit = load_pack_data({**pack(rule("r", {"text": "x"})), "literal_match": "substring"})
    token = load_pack_data({**pack(rule("r", {"text": "x"})), "literal_match": "token"})
    assert pack_digest(plain) == pack_digest(explicit) != pack_digest(token)
