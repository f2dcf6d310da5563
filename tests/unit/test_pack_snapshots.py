"""Shipped pack versions: each id pinned to its content, and the corpus' decisions per version as a golden file."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from faultlens.classify import snapshot
from faultlens.classify.rules import RulePack, default_pack, load_pack, load_pack_data
from faultlens.classify.snapshot import (
    REGENERATE,
    check_versions,
    decision_lines,
    diff_lines,
    read_corpus,
    snapshot_path,
    write_versions,
)
from faultlens.classify.versions import (
    MANIFEST_SUFFIX,
    canonical_json,
    find_shipped_pack,
    list_shipped_versions,
    load_shipped_pack,
    manifest_text,
    pack_digest,
)
from faultlens.errors import RulePackError

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
SNAPSHOTS = HERE / "snapshots"
VERSIONS = list_shipped_versions()


def _pack(rules: list[dict[str, Any]], pack_id: str = "tiny@2026-12-01") -> dict[str, Any]:
    return {"id": pack_id, "rules": rules}


def _rule(name: str, words: list[str], kind: str = "timeout", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "match": {"error_message": words},
        "failure_kind": kind,
        "failure_class": "service_failure",
        "category": "service_timeout",
        **extra,
    }


TINY = _pack([_rule("read_timeout", ["read timed out"]), _rule("refused", ["connection refused"], kind="refused")])


# ------------------------------------------------------------------------ the shipped versions


def test_the_shipped_default_is_a_pinned_version() -> None:
    """A new dated id for default.yaml needs its own manifest (the --write command adds it)."""
    by_id = {v.id: v for v in VERSIONS}
    assert default_pack().id in by_id, f"no manifest for {default_pack().id}: run {REGENERATE}"
    assert by_id[default_pack().id].file == "default.yaml"
    # older versions stay loadable, each from a file of its own
    assert by_id["default@2026-11-22"].file == "default@2026-11-22.yaml"
    assert all(v.file != "default.yaml" for v in VERSIONS if v.id != default_pack().id)


@pytest.mark.parametrize("version", VERSIONS, ids=[v.id for v in VERSIONS])
def test_each_shipped_version_is_pinned_to_its_content(version: Any) -> None:
    pack = load_shipped_pack(version)
    assert version.manifest == f"{version.id}{MANIFEST_SUFFIX}"
    assert pack.id == version.id, f"{version.file} now holds {pack.id}: keep {version.id} in a file of its own"
    assert pack_digest(pack) == version.sha256, (
        f"{version.file} changed but kept the id {version.id}: a shipped version is immutable, "
        "give the changed pack a new dated id (docs/rules.md)"
    )


@pytest.mark.parametrize("version", VERSIONS, ids=[v.id for v in VERSIONS])
def test_the_corpus_decides_as_each_version_snapshot_says(version: Any) -> None:
    path = snapshot_path(SNAPSHOTS, version.id)
    assert path.exists(), f"no decision snapshot for {version.id}: run {REGENERATE}"
    expected = path.read_text(encoding="utf-8").splitlines()
    now = decision_lines(load_shipped_pack(version), read_corpus(CORPUS))
    changed = diff_lines(expected, now, name=path.name)
    assert not changed, (
        "decisions changed; if intended, run " + REGENERATE + " and review the diff:\n" + "\n".join(changed)
    )


def test_the_snapshot_covers_every_corpus_row_once_per_distinct_event() -> None:
    rows = read_corpus(CORPUS)
    lines = snapshot_path(SNAPSHOTS, default_pack().id).read_text(encoding="utf-8").splitlines()
    assert lines == sorted(lines) and len(lines) == len(set(lines))
    decoded = [json.loads(line) for line in lines]
    assert {(d["corpus"], d["message"], d["status"]) for d in decoded} == {
        (r["corpus"], r["message"], r["status"]) for r in rows
    }
    assert len(lines) >= 1000
    assert all(list(d)[-6:] == list(snapshot.DECISION_FIELDS) for d in decoded)
    # the golden MUST cases of the product are in it, decided as specified
    by_message = {d["message"]: d for d in decoded}
    assert by_message["downstream_closed"]["failure_class"] == "client_abort"
    assert by_message["failed_contact_upstream"]["failure_class"] == "service_failure"


def test_find_shipped_pack_by_id() -> None:
    pack = find_shipped_pack(default_pack().id)
    assert pack is not None and pack_digest(pack) == pack_digest(default_pack())
    first = find_shipped_pack("default@2026-11-22")
    assert first is not None and first.id == "default@2026-11-22" and first.literal_match == "substring"
    assert find_shipped_pack("default@1999-01-01") is None


# ---------------------------------------------------------------------------------- the digest


def test_digest_ignores_layout_and_spelled_out_defaults_but_not_content(tmp_path: Path) -> None:
    base = load_pack_data(TINY)
    # the same pack as YAML with comments, another key order and a default spelled out
    spelled = {"rules": [dict(reversed(list(r.items()))) for r in TINY["rules"]], "id": TINY["id"]}
    spelled["rules"][0]["examples"] = []
    path = tmp_path / "p.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(spelled, sort_keys=False), encoding="utf-8")
    assert pack_digest(load_pack(path)) == pack_digest(base)
    assert json.loads(canonical_json(base))["rules"][0]["name"] == "read_timeout"

    changed = [
        _pack([_rule("read_timeout", ["read timed out", "timeout"]), TINY["rules"][1]]),  # a new word
        _pack(list(reversed(TINY["rules"]))),  # order is policy
        _pack([_rule("read_timeout", ["read timed out"], is_actionable=False), TINY["rules"][1]]),
        {**TINY, "description": "now with a description"},
    ]
    digests = {pack_digest(load_pack_data(p)) for p in changed}
    assert pack_digest(base) not in digests and len(digests) == len(changed)


def test_the_shipped_digest_is_sha256_of_the_canonical_json() -> None:
    pack = default_pack()
    assert re.fullmatch(r"[0-9a-f]{64}", pack_digest(pack))
    assert pack_digest(pack) == hashlib.sha256(canonical_json(pack).encode()).hexdigest()


# ---------------------------------------------------------------------- check and write, end to end


def _tree(tmp_path: Path, pack: dict[str, Any]) -> tuple[Path, Path, Path]:
    packs, corpus, snaps = tmp_path / "packs", tmp_path / "corpus", tmp_path / "snapshots"
    packs.mkdir()
    corpus.mkdir()
    (packs / "default.yaml").write_text(yaml.safe_dump(pack), encoding="utf-8")
    rows = [
        {"message": "Read timed out (read timeout=5)", "status": "failure"},
        {"message": "connect: Connection refused", "status": "retry", "http_status": 503},
        {"message": "connect: Connection refused", "status": "retry", "http_status": 503},  # a duplicate
        {"message": "something else", "status": "failure", "error_code": "E1"},
        {"message": "all good", "status": "success"},
    ]
    (corpus / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return packs, corpus, snaps


def test_write_pins_a_new_version_then_check_passes(tmp_path: Path) -> None:
    packs, corpus, snaps = _tree(tmp_path, TINY)
    current = load_pack(packs / "default.yaml")
    written = write_versions(corpus, snaps, packs, current=current)
    manifest = packs / f"tiny@2026-12-01{MANIFEST_SUFFIX}"
    assert written == [str(manifest), str(snapshot_path(snaps, "tiny@2026-12-01"))]
    assert manifest.read_text(encoding="utf-8") == manifest_text(current, "default.yaml")
    lines = snapshot_path(snaps, "tiny@2026-12-01").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["rule_name"] for line in lines] == ["unclassified", "read_timeout", "refused", "success"]
    assert json.loads(lines[2]) == {
        "corpus": "a.jsonl",
        "status": "retry",
        "http_status": 503,
        "message": "connect: Connection refused",
        "failure_kind": "refused",
        "failure_class": "service_failure",
        "is_actionable": True,
        "category": "service_timeout",
        "retryable": True,
        "rule_name": "refused",
    }
    assert check_versions(corpus, snaps, packs) == ([], [])
    # writing again changes nothing: the manifest is not rewritten
    before = manifest.stat().st_mtime_ns
    write_versions(corpus, snaps, packs, current=current)
    assert manifest.stat().st_mtime_ns == before
    assert check_versions(corpus, snaps, packs) == ([], [])


def test_a_changed_decision_fails_the_check_showing_only_the_changed_line(tmp_path: Path) -> None:
    packs, corpus, snaps = _tree(tmp_path, TINY)
    write_versions(corpus, snaps, packs, current=load_pack(packs / "default.yaml"))
    path = snapshot_path(snaps, "tiny@2026-12-01")
    old = path.read_text(encoding="utf-8").splitlines()
    # the snapshot says a message was unclassified; the pack now decides it
    edited = [line.replace('"rule_name": "read_timeout"', '"rule_name": "unclassified"') for line in old]
    path.write_text("".join(f"{line}\n" for line in edited), encoding="utf-8")
    problems, changed = check_versions(corpus, snaps, packs)
    assert problems == []
    assert changed[:2] == ["--- tiny@2026-12-01.jsonl (snapshot)", "+++ tiny@2026-12-01.jsonl (now)"]
    body = [line for line in changed if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert len(body) == 2
    assert body[0].startswith("-") and '"rule_name": "unclassified"' in body[0]
    assert body[1].startswith("+") and '"rule_name": "read_timeout"' in body[1]


def test_an_edited_pack_that_keeps_its_id_is_refused(tmp_path: Path) -> None:
    packs, corpus, snaps = _tree(tmp_path, TINY)
    write_versions(corpus, snaps, packs, current=load_pack(packs / "default.yaml"))
    edited = _pack([_rule("read_timeout", ["read timed out", "timed out"]), TINY["rules"][1]])
    (packs / "default.yaml").write_text(yaml.safe_dump(edited), encoding="utf-8")
    problems, _ = check_versions(corpus, snaps, packs)
    assert len(problems) == 1 and "changed but kept the id tiny@2026-12-01" in problems[0]
    # and --write will not paper over it by rewriting the snapshot
    snap = snapshot_path(snaps, "tiny@2026-12-01").read_text(encoding="utf-8")
    with pytest.raises(SystemExit, match="immutable"):
        write_versions(corpus, snaps, packs, current=load_pack(packs / "default.yaml"))
    assert snapshot_path(snaps, "tiny@2026-12-01").read_text(encoding="utf-8") == snap


def test_a_new_version_keeps_the_old_one_in_a_file_of_its_own(tmp_path: Path) -> None:
    packs, corpus, snaps = _tree(tmp_path, TINY)
    old = load_pack(packs / "default.yaml")
    write_versions(corpus, snaps, packs, current=old)
    new_data = _pack([_rule("read_timeout", ["read timed out"]), _rule("other", ["something"])], "tiny@2026-12-09")
    (packs / "default.yaml").write_text(yaml.safe_dump(new_data), encoding="utf-8")
    new = load_pack(packs / "default.yaml")
    # Moving default.yaml on without keeping the old version is refused...
    with pytest.raises(SystemExit, match=r"now holds tiny@2026-12-09; keep tiny@2026-12-01"):
        write_versions(corpus, snaps, packs, current=new)
    # ...and accepted once the old content lives on under its id, its manifest pointing there.
    (packs / "tiny@2026-12-01.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    manifest = packs / f"tiny@2026-12-01{MANIFEST_SUFFIX}"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace('file: "default.yaml"', 'file: "tiny@2026-12-01.yaml"'),
        encoding="utf-8",
    )
    write_versions(corpus, snaps, packs, current=new)
    assert [v.id for v in list_shipped_versions(packs)] == ["tiny@2026-12-01", "tiny@2026-12-09"]
    assert check_versions(corpus, snaps, packs) == ([], [])
    old_lines = snapshot_path(snaps, "tiny@2026-12-01").read_text(encoding="utf-8").splitlines()
    new_lines = snapshot_path(snaps, "tiny@2026-12-09").read_text(encoding="utf-8").splitlines()
    moved = [line for line in diff_lines(old_lines, new_lines, name="x") if line[:1] in "+-"][2:]
    # the review shows exactly what the new version decides differently: "something else" and
    # "connection refused" (the new pack dropped "refused")
    assert len(moved) == 4
    assert sum('"rule_name": "other"' in line for line in moved) == 1


def test_a_version_without_a_snapshot_is_a_problem(tmp_path: Path) -> None:
    packs, corpus, snaps = _tree(tmp_path, TINY)
    write_versions(corpus, snaps, packs, current=load_pack(packs / "default.yaml"))
    snapshot_path(snaps, "tiny@2026-12-01").unlink()
    problems, changed = check_versions(corpus, snaps, packs)
    assert changed == [] and len(problems) == 1 and "no decision snapshot" in problems[0]


def test_a_broken_manifest_is_a_rule_pack_error(tmp_path: Path) -> None:
    packs, _, _ = _tree(tmp_path, TINY)
    (packs / f"x@2026-12-01{MANIFEST_SUFFIX}").write_text("id: x@2026-12-01\nfile: default.yaml\n", encoding="utf-8")
    with pytest.raises(RulePackError, match="string id, file and sha256"):
        list_shipped_versions(packs)


def test_the_command_checks_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the repository's own tree: the command a reviewer runs
    monkeypatch.chdir(HERE.parents[1])
    assert snapshot.main([]) == 0
    assert "matches its pin" in capsys.readouterr().out
    assert snapshot.main(["--corpus", str(tmp_path / "nowhere")]) == 2
    assert "no corpus" in capsys.readouterr().err
    # a changed decision: exit 1, the changed lines on stdout, the way out on stderr
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    real = snapshot_path(SNAPSHOTS, "default@2026-11-22").read_text(encoding="utf-8").splitlines()
    first = json.loads(real[0])
    first["rule_name"] = "something_else"
    edited = [json.dumps(first, ensure_ascii=False), *real[1:]]
    snapshot_path(snaps, "default@2026-11-22").write_text("".join(f"{x}\n" for x in edited), encoding="utf-8")
    assert snapshot.main(["--snapshots", str(snaps)]) == 1
    out = capsys.readouterr()
    assert f"-{edited[0]}" in out.out.splitlines() and f"+{real[0]}" in out.out.splitlines()
    assert REGENERATE in out.err


def test_decision_lines_are_independent_of_row_order() -> None:
    rows = read_corpus(CORPUS)[:200]
    pack: RulePack = default_pack()
    assert decision_lines(pack, rows) == decision_lines(pack, list(reversed(rows)))


def test_flip_summary_groups_the_moves_between_two_versions(tmp_path: Path) -> None:
    rows = [
        {"corpus": "c.jsonl", "status": "failure", "message": "read timed out"},
        {"corpus": "c.jsonl", "status": "failure", "message": "connection refused"},
        {"corpus": "c.jsonl", "status": "failure", "message": "errno 11111"},
    ]
    old = load_pack_data(_pack([_rule("t", ["timed out"]), _rule("r", ["111"], kind="refused")]))
    new_rules = [
        _rule("t", ["timed out"], failure_class="client_failure"),
        _rule("r", ["111"], kind="refused"),
    ]
    new = load_pack_data({**_pack(new_rules, "tiny@2026-12-06"), "literal_match": "token"})
    before = decision_lines(old, rows)
    after = decision_lines(new, [*rows, {"corpus": "c.jsonl", "status": "failure", "message": "new row"}])
    lines = snapshot.flip_summary(before, after)
    assert lines[0].startswith("3 corpus events in both snapshots: 2 decided differently, 1 of them in")
    assert "1 events are new to the corpus" in lines[0]
    table = "\n".join(lines[2:])
    assert "| service_failure/timeout | client_failure/timeout | 1 |" in table
    assert "| service_failure/refused | service_failure/unclassified | 1 | 'errno 11111' |" in table
    # from the command line, by version id
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    snapshot_path(snaps, old.id).write_text("".join(f"{x}\n" for x in before), encoding="utf-8")
    snapshot_path(snaps, new.id).write_text("".join(f"{x}\n" for x in after), encoding="utf-8")
    assert snapshot.main(["--snapshots", str(snaps), "--flips", old.id, new.id]) == 0
    assert snapshot.main(["--snapshots", str(snaps), "--flips", old.id, "nope@2026-01-01"]) == 2
