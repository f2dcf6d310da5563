"""The one config-file loader: YAML or JSON by suffix, the caller's error type, one cache keyed by mtime and size."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultlens import config_files
from faultlens.classify.rules import load_pack
from faultlens.connectors.retry_policy import load_retry_policies
from faultlens.errors import FaultlensError, RetryPolicyError, RulePackError, SloConfigError
from faultlens.triage import slo


class NotesError(FaultlensError):
    code = "invalid_notes"


parsed: list[Any] = []


def _parse(doc: Any, origin: str) -> dict[str, Any]:
    parsed.append(doc)
    if not isinstance(doc, dict):
        raise NotesError(f"{origin}: must be a mapping", details={"path": origin})
    return doc


NOTES = config_files.FileKind("notes file", NotesError, _parse)
STRICT = config_files.FileKind(
    "notes file", NotesError, _parse, suffixes={".yaml": "yaml", ".json": "json"}, other=None
)


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    config_files.clear_cache()
    parsed.clear()
    yield
    config_files.clear_cache()


def settle(path: Path, *, at: float | None = None) -> None:
    """Date the file back, as a file nobody touched for a while."""
    stamp = time.time() - 60 if at is None else at
    os.utime(path, (stamp, stamp))


def test_yaml_or_json_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x: 1\ny: [a, b]\n")
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "a.conf").write_text("x: 2\n")  # any other suffix is YAML unless the kind refuses it
    assert config_files.load(tmp_path / "a.yaml", NOTES) == {"x": 1, "y": ["a", "b"]}
    assert config_files.load(tmp_path / "a.json", NOTES) == {"x": 1}
    assert config_files.load(tmp_path / "a.conf", NOTES) == {"x": 2}
    with pytest.raises(NotesError, match=r"must end in \.yaml or \.json") as info:
        config_files.load(tmp_path / "a.conf", STRICT)
    assert info.value.details == {"path": str(tmp_path / "a.conf"), "suffix": ".conf"}


def test_every_problem_is_the_callers_error_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(NotesError, match="cannot read notes file") as info:
        config_files.load(missing, NOTES)
    assert str(missing) in info.value.message and info.value.details == {"path": str(missing)}
    bad_yaml, bad_json = tmp_path / "bad.yaml", tmp_path / "bad.json"
    bad_yaml.write_text("x: [1, 2\n")
    bad_json.write_text("{nope")
    with pytest.raises(NotesError, match="is not valid YAML"):
        config_files.load(bad_yaml, NOTES)
    with pytest.raises(NotesError, match="is not valid JSON"):
        config_files.load(bad_json, NOTES)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00x")
    with pytest.raises(NotesError, match="cannot read notes file"):
        config_files.load(binary, NOTES)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n")
    with pytest.raises(NotesError, match="must be a mapping"):
        config_files.load(listy, NOTES)


def test_an_unchanged_file_is_parsed_once(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("x: 1\n")
    settle(path)
    first = config_files.load(path, NOTES)
    assert config_files.load(path, NOTES) is first and len(parsed) == 1


def test_a_change_of_size_or_mtime_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("x: 1\n")
    settle(path, at=1_000_000)
    assert config_files.load(path, NOTES) == {"x": 1}
    # Same mtime, other size (a tool that keeps timestamps): the old key of mtime alone missed this.
    path.write_text("x: 22\n")
    settle(path, at=1_000_000)
    assert config_files.load(path, NOTES) == {"x": 22}
    # Same size, other mtime.
    path.write_text("x: 33\n")
    settle(path, at=1_000_100)
    assert config_files.load(path, NOTES) == {"x": 33}


def test_a_file_written_just_now_is_not_trusted_to_its_stamp(tmp_path: Path) -> None:
    """Two same-size writes within one tick of the file system clock keep mtime and size."""
    path = tmp_path / "n.yaml"
    path.write_text("x: 1\n")
    stat = path.stat()
    assert config_files.load(path, NOTES) == {"x": 1}
    path.write_text("x: 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same stamp as the first write
    assert config_files.load(path, NOTES) == {"x": 2}


def test_failures_are_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("- 1\n")
    settle(path, at=1_000_000)
    with pytest.raises(NotesError):
        config_files.load(path, NOTES)
    path.write_text("x: 1\n")
    settle(path, at=1_000_000)
    assert config_files.load(path, NOTES) == {"x": 1}


def test_the_slo_retry_policy_and_rule_pack_files_share_the_loader(tmp_path: Path) -> None:
    slo_file, policy_file, pack_file = tmp_path / "slo.yaml", tmp_path / "p.json", tmp_path / "pack.yml"
    slo_file.write_text("default:\n  min_events: 7\n")
    policy_file.write_text('{"default": {"max_retries": 9}}')
    pack_file.write_text("id: mine@2026-12-01\nrules: []\n")
    for path in (slo_file, policy_file, pack_file):
        settle(path)
    config = slo.load_config(slo_file)
    policies = load_retry_policies(policy_file)
    pack = load_pack(pack_file)
    assert (config.default.min_events, policies.default.max_retries, pack.id) == (7, 9, "mine@2026-12-01")
    # One cache style for all three: unchanged files hand back the same parsed object.
    assert slo.load_config(slo_file) is config
    assert load_retry_policies(policy_file) is policies
    assert load_pack(pack_file) is pack
    # Each caller keeps its own error type.
    for path in (slo_file, policy_file, pack_file):
        path.write_text("{broken: [\n" if path.suffix != ".json" else "{broken")
    with pytest.raises(SloConfigError, match="not valid YAML"):
        slo.load_config(slo_file)
    with pytest.raises(RetryPolicyError, match="not valid JSON"):
        load_retry_policies(policy_file)
    with pytest.raises(RulePackError, match="not valid yml"):
        load_pack(pack_file)
    with pytest.raises(RetryPolicyError, match="cannot read retry policy file"):
        load_retry_policies(tmp_path / "nowhere.yaml")


def test_the_cache_keeps_a_bounded_number_of_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_files, "MAX_CACHED", 3)
    paths = [tmp_path / f"n{i}.yaml" for i in range(5)]
    for i, path in enumerate(paths):
        path.write_text(f"x: {i}\n")
        settle(path)
        assert config_files.load(path, NOTES) == {"x": i}
    assert len(config_files._cache) == 3
    parsed.clear()
    assert config_files.load(paths[-1], NOTES) == {"x": 4} and parsed == []  # the newest stayed
    assert config_files.load(paths[0], NOTES) == {"x": 0} and parsed == [{"x": 0}]  # the oldest went
