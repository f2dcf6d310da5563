"""store/state.py on SQLite and PostgreSQL: upsert, insert-or-keep, compare-and-set, and the rules generation."""

from __future__ import annotations

import threading

from faultlens.services import Services, load_state, save_state
from faultlens.store import state


def test_save_find_and_delete(quiet: Services) -> None:
    with quiet.engine.begin() as conn:
        assert state.find_state(conn, "t.key") is None
        state.save_state(conn, "t.key", "one")
        state.save_state(conn, "t.key", "two")  # an existing key is overwritten, not duplicated
        state.save_state(conn, "t.other", "x")
    with quiet.engine.begin() as conn:
        assert state.find_state(conn, "t.key") == "two"
        assert state.find_states(conn, "t.key", "t.other", "t.missing") == {"t.key": "two", "t.other": "x"}
        state.delete_state(conn, "t.key")
        assert state.find_state(conn, "t.key") is None


def test_save_once_keeps_the_first_value(quiet: Services) -> None:
    with quiet.engine.begin() as conn:
        state.save_state_once(conn, "t.once", "first")
        state.save_state_once(conn, "t.once", "second")
        assert state.find_state(conn, "t.once") == "first"


def test_swap_changes_only_the_expected_value(quiet: Services) -> None:
    with quiet.engine.begin() as conn:
        state.save_state(conn, "t.swap", "queued")
        assert state.swap_state(conn, "t.swap", expected="needed", value="false") is False
        assert state.find_state(conn, "t.swap") == "queued"
        assert state.swap_state(conn, "t.swap", expected="queued", value="false") is True
        assert state.find_state(conn, "t.swap") == "false"
        assert state.swap_state(conn, "t.absent", expected="queued", value="false") is False
        assert state.find_state(conn, "t.absent") is None


def test_rules_generation_changes_with_every_bump(quiet: Services) -> None:
    with quiet.engine.begin() as conn:
        before = state.find_rules_generation(conn)
        first = state.bump_rules_generation(conn)
        second = state.bump_rules_generation(conn)
        assert len({before, first, second}) == 3
        assert state.find_rules_generation(conn) == second


def test_concurrent_first_saves_of_one_key_both_succeed(quiet: Services) -> None:
    """The fingerprinters' save (its own transaction per call) never fails on a key another process creates."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def write(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            save_state(quiet.engine, "t.race", f"v{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert load_state(quiet.engine, "t.race") in {"v0", "v1", "v2", "v3"}
