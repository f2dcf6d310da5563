"""Unit tests for message fingerprinting: masking, online grouping, id stability, Loghub accuracy floors."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from faultlens.classify.fingerprint import Fingerprinter, Template
from faultlens.classify.fingerprint_mask import mask, normalize

REPO = Path(__file__).resolve().parents[2]
LOGHUB = Path(os.environ.get("FAULTLENS_LOGHUB_DIR", REPO.parent / "shared" / "loghub-dev"))

# --------------------------------------------------------------------------------------
# Masking, one real-world example (or more) per variable kind
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # numbers: integers, decimals, signed, inside identifiers after "_" or "-", lists
        ("Got assigned task 1354", "Got assigned task <NUM>"),
        (
            "PacketResponder 1 for block blk_-6952295868487656571 terminating",
            "PacketResponder <NUM> for block blk_<NUM> terminating",
        ),
        ("Times: total = 1072, boot = 856", "Times: total = <NUM>, boot = <NUM>"),
        ("Partition rdd_42_39 not found, computing it", "Partition rdd_<NUM>_<NUM> not found, computing it"),
        ("onExtend:1514038530000 14 0 4", "onExtend:<NUM> <NUM> <NUM> <NUM>"),
        # quantities with a unit fold into one number
        ("MemoryStore started with capacity 17.7 GB", "MemoryStore started with capacity <NUM>"),
        ("Reading broadcast variable 9 took 160 ms", "Reading broadcast variable <NUM> took <NUM>"),
        ("request took 160ms, retrying", "request took <NUM>, retrying"),
        ("403 bytes (1.2 KB) sent, lifetime <1 sec", "<NUM> bytes (<NUM>) sent, lifetime <NUM>"),
        # digits glued to letters are identifiers, not numbers
        ("allocating divert_blk for eth1", "allocating divert_blk for eth1"),
        # hex
        ("acquire lock=233570404, flags=0x1", "acquire lock=<NUM>, flags=<HEX>"),
        ("AppWindowToken{9f4ef63 token=Token{a64f992", "AppWindowToken{<HEX> token=Token{<HEX>"),
        # UUIDs
        ("job 550e8400-e29b-41d4-a716-446655440000 failed", "job <UUID> failed"),
        # IPs and ports
        (
            "Receiving block blk_1 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
            "Receiving block blk_<NUM> src: /<IP>:<NUM> dest: /<IP>:<NUM>",
        ),
        ("connection from 222.33.90.199 ()", "connection from <IP> ()"),
        ("bind to [fe80::1ff:fe23:4567:890a]:8080 failed", "bind to [<IP>]:<NUM> failed"),
        ("proxy.cse.cuhk.edu.hk:5070 open through proxy", "<HOST>:<NUM> open through proxy"),
        # a source location is not a host
        ("at com.foo.Bar.run(Bar.java:12)", "at com.foo.Bar.run(Bar.java:<NUM>)"),
        # paths
        ("Cannot open file /dev/logsurfer for writing", "Cannot open file <PATH> for writing"),
        ("loaded C:\\Windows\\System32\\kernel32.dll", "loaded <PATH>"),
        ("exec ./run.sh and ~/bin/tool", "exec <PATH> and <PATH>"),
        ("read/write and and/or stay text", "read/write and and/or stay text"),
        # URLs
        ("Input split: hdfs://10.10.34.11:9000/pjhe/logs/2kSOSP.log:21876+7292", "Input split: <URL>"),
        ("GET https://api.example.com/v1/items?id=3 returned 502", "GET <URL> returned <NUM>"),
        # e-mails
        ("no mailbox for john.doe@example.com, bouncing", "no mailbox for <EMAIL>, bouncing"),
        # timestamps
        ("deadline 2017-01-02T12:00:00Z exceeded", "deadline <TS> exceeded"),
        ("at Fri Jun 17 07:07:00 2005", "at <TS>"),
        ("rotated on 17/06/09 at 20:10:40.123", "rotated on <TS> at <TS>"),
        # quoted values keep their quotes; apostrophes are not quotes
        ('tag="View Lock", name=systemui', 'tag="<STR>", name=systemui'),
        ("KeyError: 'user_id'", "KeyError: '<STR>'"),
        ("don't retry, it's final", "don't retry, it's final"),
        # a quoted text standing on its own is part of the sentence: masked token by token
        (
            '10.11.10.1 "GET /v2/54fadb412c4e/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
            '<IP> "GET <PATH> HTTP/<NUM>" status: <NUM> len: <NUM> time: <NUM>',
        ),
        ("Checking 'hlt' instruction... OK.", "Checking 'hlt' instruction... OK."),
        # durations
        ("request took 250ms", "request took <NUM>"),
        ("retry in 1.5s, then 3.5 sec", "retry in <NUM>, then <NUM>"),
        ("lease expires in 1h30m", "lease expires in <NUM>"),
        ("slow query (2m3.5s)", "slow query (<NUM>)"),
        # sizes
        ("wrote 12KB to disk", "wrote <NUM> to disk"),
        ("heap grew by 3.4 MiB", "heap grew by <NUM>"),
        ("usage 99.5% of 2 TB", "usage <NUM> of <NUM>"),
        # scientific notation
        ("loss -1.25e-3 at step 7", "loss <NUM> at step <NUM>"),
        # hex without digits, from 8 letters on; shorter or non-hex words stay
        ("setSystemUiVisibility mask=ffffffff flags=DEADBEEF", "setSystemUiVisibility mask=<HEX> flags=<HEX>"),
        ("defaced facade", "defaced facade"),
        # ids
        ("span 123E4567-E89B-12D3-A456-426614174000 ended", "span <UUID> ended"),
        ("object 9f4ef63a freed", "object <HEX> freed"),
        ("jA9J1UvC004306: from=root, size=9", "<ID>: from=root, size=<NUM>"),
        ("installing KB2928562 on x86 host eth0", "installing <ID> on x86 host eth0"),
        ("System.ComponentModel.Win32Exception: denied", "System.ComponentModel.Win32Exception: denied"),
        # paths, IPs, e-mails, URLs
        ("cannot stat /var/lib/app/data.db: ENOENT", "cannot stat <PATH>: ENOENT"),
        ("peer 2001:db8::1 and 192.168.1.10 unreachable", "peer <IP> and <IP> unreachable"),
        ("bounce for ops+alerts@mail.example.org", "bounce for <EMAIL>"),
        ("fetch s3://bucket/key/part-0001.gz failed", "fetch <URL> failed"),
        # dates with day and month names
        ("connection from 1.2.3.4 () at Sun Jul 10 03:55:15 2005", "connection from <IP> () at <TS>"),
        ("Jul 10 03:55:15 restart", "<TS> restart"),
        ("Date: Sun, 10 Jul 2005 03:55:15 +0000", "Date: <TS>"),
        ("in May 3 users left at 12:00", "in May <NUM> users left at <TS>"),
    ],
)
def test_mask_kinds(message: str, expected: str) -> None:
    assert mask(message) == expected


def test_mask_collapses_whitespace_and_is_idempotent() -> None:
    once = mask("  task\t17   failed \n")
    assert once == "task <NUM> failed"
    assert mask(once) == once


def test_normalize_python_traceback_keeps_the_exception_line() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/jobs.py", line 88, in run\n'
        "    total = int(raw)\n"
        "ValueError: invalid literal for int() with base 10: 'abc'\n"
    )
    assert normalize(tb) == "ValueError: invalid literal for int() with base 10: 'abc'"
    assert mask(tb) == "ValueError: invalid literal for int() with base <NUM>: '<STR>'"


def test_normalize_other_multiline_keeps_first_and_last_line() -> None:
    trace = (
        "java.lang.IllegalStateException: pool exhausted\n"
        "\tat com.acme.Pool.take(Pool.java:41)\n"
        "\tat java.lang.Thread.run(Thread.java:748)\n"
    )
    assert normalize(trace) == (
        "java.lang.IllegalStateException: pool exhausted at java.lang.Thread.run(Thread.java:748)"
    )


def test_non_ascii_and_undecodable_text() -> None:
    assert mask("Gerät-7 größe=12 MB Zeit 12:00") == "Gerät-<NUM> größe=<NUM> Zeit <TS>"
    raw = b"read failed: \xff\xfe at offset 12".decode("utf-8", "surrogateescape")
    fp = Fingerprinter()
    tpl = fp.add(raw)
    assert tpl.text == "read failed: ?? at offset <NUM>"
    state = orjson.loads(orjson.dumps(fp.export_state()))
    assert Fingerprinter.from_state(state).templates() == [tpl]


def test_huge_messages_cost_bounded_time() -> None:
    huge = "x" * 5_000_000
    many_lines = "\n".join(f"frame {i} at 0x{i:08x}" for i in range(200_000))
    fp = Fingerprinter()
    start = time.perf_counter()
    for text in (huge, many_lines, "word " * 1_000_000):
        assert len(normalize(text)) <= 1000
        fp.add(text)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------


def test_same_event_different_values_share_a_template() -> None:
    fp = Fingerprinter()
    a = fp.add("Connection to 10.0.0.5:5432 timed out after 30 s")
    b = fp.add("Connection to 10.0.0.9:6543 timed out after 12 s")
    assert a.id == b.id
    assert b.text == "Connection to <IP>:<NUM> timed out after <NUM>"
    assert re.fullmatch(r"[0-9a-f]{16}", a.id)


def test_word_variable_generalises_to_wildcard() -> None:
    """A differing word in a short message is a variable once three values were seen in its slot."""
    fp = Fingerprinter()
    a = fp.add("User alice not found")
    b = fp.add("User bob not found")
    assert b.id != a.id  # two words may be two events ("cupsd startup/shutdown succeeded")
    c = fp.add("User carol not found")
    assert c.id == a.id and fp.resolve(b.id) == a.id
    assert c.text == "User <*> not found"
    assert fp.templates() == [Template(a.id, "User <*> not found")]
    assert fp.add("User dave not found").id == a.id


def test_different_events_stay_apart() -> None:
    fp = Fingerprinter()
    ids = {
        fp.add("KeyError: 'user_id'").id,
        fp.add("ValueError: 'user_id'").id,
        fp.add("requests.exceptions.ConnectTimeout: connect to host timed out").id,
        fp.add("requests.exceptions.ReadTimeout: connect to host timed out").id,
        fp.add("cupsd startup succeeded").id,
        fp.add("cupsd shutdown succeeded").id,
        fp.add("Disk quota exceeded on volume 3").id,
    }
    assert len(ids) == 7


def test_variables_of_varying_length_and_kind_share_a_template() -> None:
    fp = Fingerprinter()
    a = fp.add("db.internal:443 close, 0 bytes sent, 0 bytes received, lifetime 00:01")
    b = fp.add("10.1.2.3:80 close, 403 bytes (1.2 KB) sent, 0 bytes received, lifetime <1 sec")
    assert a.id == b.id
    c = fp.add("synchronized to 10.100.20.250, stratum 3")
    d = fp.add("synchronized to LOCAL(0), stratum 10")
    assert c.id == d.id


def test_lists_of_like_values_are_one_variable() -> None:
    fp = Fingerprinter()
    one = fp.add("BLOCK* ask 10.250.18.114:50010 to delete  blk_-5140072410813878235")
    many = fp.add("BLOCK* ask 10.250.17.177:50010 to delete  blk_-85707803 blk_-91225574 blk_43905")
    assert one.id == many.id
    a = fp.add("failed to resolve data source name an14 an15 an16 an17")
    b = fp.add("failed to resolve data source name dadmin2 dadmin3")
    assert a.id == b.id


def test_differently_typed_values_of_one_field_share_a_template() -> None:
    fp = Fingerprinter()
    a = fp.add("setSystemUiVisibility vis=40 mask=0x7 oldVal=508 newVal=40 diff=0x7f8 fullscreenStackVis=0")
    b = fp.add("setSystemUiVisibility vis=0x4 mask=ffffffff oldVal=0x8 newVal=0x4 diff=12 fullscreenStackVis=0")
    assert a.id == b.id


def test_one_value_and_a_list_of_them_share_a_template() -> None:
    fp = Fingerprinter()
    one = fp.add("BLOCK* ask 10.250.18.114:50010 to delete blk_-5140072410813878235")
    many = fp.add("BLOCK* ask 10.250.17.177:50010 to delete blk_-85707803 blk_-91225574 blk_43905")
    assert one.id == many.id and many.text == "BLOCK* ask <IP>:<NUM> to delete <*>"


def test_an_empty_value_is_a_variable_slot() -> None:
    fp = Fingerprinter()
    a = fp.add("connection from 10.0.0.1 () at Sun Jul 10 03:55:15 2005")
    b = fp.add("connection from 10.0.0.2 (host8.example.net) at Mon Jun 11 13:05:59 2005")
    assert a.id == b.id


def test_a_slot_becomes_a_variable_when_three_values_were_seen_in_it() -> None:
    fp = Fingerprinter()
    cups = {fp.add("cupsd startup succeeded").id, fp.add("cupsd shutdown succeeded").id}
    assert len(cups) == 2  # two words in one slot: two events
    first = fp.add("session closed for user cyrus")
    second = fp.add("session closed for user news")
    assert second.id != first.id
    third = fp.add("session closed for user test")
    assert third.id == first.id and third.text == "session closed for user <*>"
    assert fp.resolve(second.id) == first.id
    assert second.id not in {t.id for t in fp.templates()}
    # the other templates of the key are not touched
    assert fp.add("session opened for user cyrus by (uid=0)").id != first.id


def test_http_methods_are_different_events() -> None:
    fp = Fingerprinter()
    line = '10.11.10.1 "{} /v2/{}/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829'
    gets = {fp.add(line.format("GET", tenant)).id for tenant in ("54fadb412c4e", "e9746973ac57", "f7b8d1f1d4d4")}
    posts = {fp.add(line.format("POST", tenant)).id for tenant in ("54fadb412c4e", "e9746973ac57")}
    assert len(gets) == 1 and len(posts) == 1 and gets != posts


def test_digits_masking_keeps_are_never_answered_from_another_message() -> None:
    """Messages differing only in digits share a cached masked text only when masking replaced those digits."""
    fp = Fingerprinter()
    assert fp.add("link eth0 down after 5 retries").text == "link eth0 down after <NUM> retries"
    other = fp.add("link eth1 down after 7 retries")
    assert "eth0" not in other.text
    again = fp.add("link eth0 down after 9 retries")
    assert again.id == fp.resolve(fp.add("link eth0 down after 5 retries").id)
    # and the cached path answers exactly what a fresh instance computes
    stream = [f"worker w{i % 3} took {i * 7} ms on 10.0.{i}.1 (eth{i % 2})" for i in range(60)]
    warm = Fingerprinter()
    answers = [warm.add(m) for m in stream]
    cold = [Fingerprinter.from_state(warm.export_state()).add(m) for m in stream]
    assert [warm.resolve(a.id) for a in answers] == [warm.resolve(c.id) for c in cold]


def test_cut_messages_do_not_end_in_half_tokens() -> None:
    ids = [f"blk_{i:019d}" for i in range(300)]
    fp = Fingerprinter()
    first = fp.add("ask 10.0.0.1:50010 to delete " + " ".join(ids))
    second = fp.add("ask 10.0.0.2:50010 to delete " + " ".join(ids[3:]))
    assert first.id == second.id
    assert len(normalize("x " + "y" * 3000)) <= 1000


def test_tracebacks_group_by_final_exception() -> None:
    def tb(frame_line: int, exc: str) -> str:
        return (
            "Traceback (most recent call last):\n"
            f'  File "/srv/app/jobs.py", line {frame_line}, in run\n'
            "    do()\n"
            f"{exc}\n"
        )

    fp = Fingerprinter()
    a = fp.add(tb(10, "TimeoutError: upstream 10.0.0.7 did not answer in 30 s"))
    b = fp.add(tb(99, "TimeoutError: upstream 10.0.0.8 did not answer in 5 s"))
    c = fp.add(tb(10, "PermissionError: upstream 10.0.0.7 did not answer in 30 s"))
    assert a.id == b.id
    assert c.id != a.id


def test_id_is_kept_when_the_template_generalises() -> None:
    fp = Fingerprinter()
    first = fp.add("worker w-alpha lost heartbeat from scheduler at 10.0.0.1")
    fp.add("worker w-beta lost heartbeat from scheduler at 10.0.0.2")
    later = fp.add("worker w-gamma lost heartbeat from scheduler at 10.0.0.3")
    assert later.id == first.id
    assert later.text != first.text
    assert fp.add("worker w-alpha lost heartbeat from scheduler at 10.0.0.1") == later


def test_match_does_not_learn() -> None:
    fp = Fingerprinter()
    known = fp.add("Task 17 failed with exit code 2")
    before = fp.export_state()
    hit = fp.match("Task 18 failed with exit code 137")
    assert hit is not None and hit.id == known.id
    assert fp.match("completely unrelated message text here") is None
    assert fp.export_state() == before
    assert len(fp) == 1


def test_empty_and_placeholder_only_messages() -> None:
    fp = Fingerprinter()
    assert fp.add("").id == fp.add("   \n ").id
    assert fp.add("12345").id == fp.add("678").id


def test_concurrent_adds_agree_on_ids() -> None:
    fp = Fingerprinter()
    messages = [f"request {i} to 10.0.{i % 7}.{i % 5}:80 failed, status {500 + i % 4}" for i in range(400)]
    messages += [f"cache miss for key user:{i}" for i in range(400)]
    results: dict[int, list[str]] = defaultdict(list)

    def work(offset: int) -> None:
        for i in range(len(messages)):
            j = (i + offset) % len(messages)
            results[j].append(fp.add(messages[j]).id)

    threads = [threading.Thread(target=work, args=(k * 97,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = {j: {fp.resolve(i) for i in ids} for j, ids in results.items()}
    assert all(len(ids) == 1 for ids in final.values())
    assert len({next(iter(ids)) for ids in final.values()}) == 2


# --------------------------------------------------------------------------------------
# Id stability: export/reload and fresh processes
# --------------------------------------------------------------------------------------

STREAM = [
    "Connection to 10.0.0.5:5432 timed out after 30 s",
    "User alice not found",
    "User bob not found",
    "KeyError: 'user_id'",
    "db.internal:443 close, 0 bytes sent, 0 bytes received, lifetime 00:01",
    "10.1.2.3:80 close, 403 bytes (1.2 KB) sent, 0 bytes received, lifetime <1 sec",
    "Traceback (most recent call last):\n  File \"a.py\", line 3, in f\nValueError: bad value 'x'",
    "Connection to 10.0.0.6:5432 timed out after 31 s",
]


def test_export_reload_keeps_ids_and_templates() -> None:
    fp = Fingerprinter()
    ids = [fp.add(m).id for m in STREAM]
    state = json.loads(json.dumps(fp.export_state()))
    again = Fingerprinter.from_state(state)
    assert again.templates() == fp.templates()
    assert again.export_state() == fp.export_state()
    # Seen messages land where they were; learning goes on identically in both.
    assert [again.add(m).id for m in STREAM] == [fp.resolve(i) for i in ids]
    more = ["User carol not found", "Connection to 10.9.9.9:1 timed out after 1 s", "brand new failure kind"]
    assert [again.add(m) for m in more] == [fp.add(m) for m in more]


def test_from_state_rejects_unknown_versions() -> None:
    with pytest.raises(ValueError):
        Fingerprinter.from_state({"version": 999, "groups": []})


def test_aliases_survive_reload() -> None:
    fp = Fingerprinter()
    keep = fp.add("alpha job failed on node one").id
    state = fp.export_state()
    state["aliases"] = {"0123456789abcdef": keep}
    again = Fingerprinter.from_state(state)
    assert again.resolve("0123456789abcdef") == keep
    assert again.resolve(keep) == keep


_CHILD = """
import json, sys
from faultlens.classify.fingerprint import Fingerprinter
fp = Fingerprinter()
print(json.dumps([fp.add(m).id for m in json.loads(sys.stdin.read())]))
"""


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_ids_are_identical_in_fresh_processes(hash_seed: str) -> None:
    fp = Fingerprinter()
    expected = [fp.add(m).id for m in STREAM]
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(STREAM),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == expected


def test_same_first_message_gives_same_id_regardless_of_history() -> None:
    a = Fingerprinter()
    b = Fingerprinter()
    for m in ("unrelated noise 1", "other noise here 2"):
        b.add(m)
    assert a.add("Disk /dev/sda1 is 97% full").id == b.add("Disk /dev/sda1 is 97% full").id


# --------------------------------------------------------------------------------------
# Grouping accuracy on the Loghub development samples
# --------------------------------------------------------------------------------------

# Floors sit slightly below the measured GA (bench/fingerprint.py: in-sample = leave-one-out there, the
# shipped setting is what LOO picks on every fold); drain3 with its default configuration averages
# 0.717 on the same eight samples.
GA_FLOORS = {
    "Android": 0.93,
    "BGL": 0.98,
    "HDFS": 0.99,
    "HealthApp": 0.99,
    "Linux": 0.86,
    "Proxifier": 0.99,
    "Spark": 0.99,
    "Thunderbird": 0.98,
}
GA_AVERAGE_FLOOR = 0.965
# The same events with every number's digits drawn anew: a method tuned to the samples' exact values
# (instead of their kinds) loses accuracy here. Measured 0.960.
GA_VARIED_AVERAGE_FLOOR = 0.95


def grouping_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    members: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(predicted):
        members[p].append(i)
    sizes = Counter(truth)
    correct = 0
    for lines in members.values():
        events = {truth[i] for i in lines}
        if len(events) == 1 and sizes[next(iter(events))] == len(lines):
            correct += len(lines)
    return correct / len(truth)


def _datasets() -> list[Path]:
    if not LOGHUB.is_dir():
        return []
    return sorted(p for p in LOGHUB.iterdir() if (p / f"{p.name}_2k.log_structured.csv").is_file())


_NUMBERS = re.compile(r"0[xX][0-9a-fA-F]+|\d+")


def _varied(folder: Path, lines: list[str]) -> list[str]:
    rng = random.Random(folder.name)

    def vary(match: re.Match[str]) -> str:
        text = match.group(0)
        head = 2 if text[1:2] in ("x", "X") else 0
        return text[:head] + "".join(rng.choice("0123456789") if c.isdigit() else c for c in text[head:])

    return [_NUMBERS.sub(vary, line) for line in lines]


def _ga(folder: Path, *, varied: bool = False) -> float:
    with (folder / f"{folder.name}_2k.log_structured.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lines = [r["Content"] for r in rows]
    fp = Fingerprinter()
    ids = [fp.add(line).id for line in (_varied(folder, lines) if varied else lines)]
    return grouping_accuracy([fp.resolve(i) for i in ids], [r["EventId"] for r in rows])


@pytest.mark.skipif(not _datasets(), reason=f"Loghub samples not found in {LOGHUB}")
def test_grouping_accuracy_floors_on_loghub_dev() -> None:
    scores = {folder.name: _ga(folder) for folder in _datasets()}
    low = {name: ga for name, ga in scores.items() if ga < GA_FLOORS.get(name, 0.6)}
    assert not low, f"GA below floor: {low} (all: {scores})"
    if set(GA_FLOORS) <= set(scores):
        assert sum(scores.values()) / len(scores) >= GA_AVERAGE_FLOOR, scores


@pytest.mark.skipif(not _datasets(), reason=f"Loghub samples not found in {LOGHUB}")
def test_grouping_accuracy_holds_with_unseen_values() -> None:
    scores = {folder.name: _ga(folder, varied=True) for folder in _datasets()}
    if set(GA_FLOORS) <= set(scores):
        assert sum(scores.values()) / len(scores) >= GA_VARIED_AVERAGE_FLOOR, scores
    else:
        assert all(ga >= 0.6 for ga in scores.values()), scores
