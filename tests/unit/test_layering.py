"""SQL lives in store/ only and service_state has one accessor (store/state.py), checked on the syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import faultlens

SRC = Path(faultlens.__file__).parent

# What builds or runs a statement: SQLAlchemy's statement and expression constructors, and anything imported from
# sqlalchemy.sql or a dialect (expression types, dialect inserts). Connection, Engine and sqlalchemy.exc are fine.
STATEMENT_NAMES = frozenset(
    {
        "and_",
        "bindparam",
        "case",
        "cast",
        "column",
        "delete",
        "exists",
        "false",
        "func",
        "insert",
        "literal",
        "literal_column",
        "not_",
        "null",
        "or_",
        "select",
        "table",
        "text",
        "true",
        "tuple_",
        "union",
        "union_all",
        "update",
    }
)
EXPRESSION_MODULES = ("sqlalchemy.sql", "sqlalchemy.dialects")
TABLES = "faultlens.store.tables"
RUNS = frozenset({"execute", "exec_driver_sql"})

# Modules outside store/ that still hold SQL, each until its statements move behind store functions. Remove an
# entry when its module is clean (the test below fails on a stale entry, so the list only shrinks).
ALLOWED = {
    # Reads the column lengths of the events table schema (no statement); a store helper should answer them.
    "ingest.py": "imports store.tables for column lengths",
}
# Not faultlens' own data access: the drills play other clients of the database (an operator creating and dropping
# scratch databases, a stray session holding locks), so those statements are theirs, not store/'s.
OTHER_CLIENTS = {
    "drills/harness.py": "creates and drops the drills' scratch PostgreSQL databases",
    "drills/scenarios/contention.py": "a second session holding SQLite's write lock or PostgreSQL's locks",
}


def _runs_statement(node: ast.AST) -> bool:
    # A statement is always an argument; Redis' pipeline.execute() takes none.
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in RUNS
        and bool(node.args or node.keywords)
    )


def _offences(tree: ast.AST) -> list[str]:
    found: list[str] = []
    sqlalchemy_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith(EXPRESSION_MODULES):
                    sqlalchemy_aliases.add(alias.asname or alias.name.split(".")[0])
                if alias.name.startswith(EXPRESSION_MODULES) or alias.name == TABLES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module
            names = [alias.name for alias in node.names]
            if module.startswith(EXPRESSION_MODULES):
                found.append(f"line {node.lineno}: from {module} import {', '.join(names)}")
            elif module == "sqlalchemy" and STATEMENT_NAMES & set(names):
                found.append(
                    f"line {node.lineno}: from sqlalchemy import {', '.join(sorted(STATEMENT_NAMES & set(names)))}"
                )
            elif module == TABLES or (module == "faultlens.store" and "tables" in names):
                found.append(f"line {node.lineno}: imports the table definitions ({TABLES})")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in sqlalchemy_aliases and node.attr in STATEMENT_NAMES:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif _runs_statement(node):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return sorted(set(found), key=lambda s: int(s.split()[1].rstrip(":")))


def _modules() -> dict[str, ast.AST]:
    return {
        path.relative_to(SRC).as_posix(): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def sql_outside_store() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, tree in _modules().items():
        if name.startswith("store/"):
            continue
        offences = _offences(tree)
        if offences:
            out[name] = offences
    return out


def test_no_sql_outside_store() -> None:
    offenders = {
        name: lines for name, lines in sql_outside_store().items() if name not in ALLOWED and name not in OTHER_CLIENTS
    }
    report = "\n".join(f"{name}: {'; '.join(lines)}" for name, lines in sorted(offenders.items()))
    assert not offenders, f"SQL outside store/ (move it behind a store function named for what it answers):\n{report}"


def test_the_allow_list_only_shrinks() -> None:
    stale = sorted((set(ALLOWED) | set(OTHER_CLIENTS)) - set(sql_outside_store()))
    assert not stale, f"these modules hold no SQL any more; remove them from ALLOWED: {stale}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from sqlalchemy import select\n", 1),
        ("from sqlalchemy import Connection, Engine\nfrom sqlalchemy.exc import SQLAlchemyError\n", 0),
        ("import sqlalchemy as sa\nsa.select(1)\n", 1),
        ("from sqlalchemy.dialects.postgresql import insert\n", 1),
        ("from sqlalchemy.sql.elements import ColumnElement\n", 1),
        ("from faultlens.store.tables import events\n", 1),
        ("from faultlens.store import tables\n", 1),
        ("conn.execute(stmt)\n", 1),
        ("conn.exec_driver_sql('BEGIN')\n", 1),
        ("pipe.execute()\n", 0),  # a Redis pipeline, not SQL
        ("with engine.begin() as conn:\n    store_fn(conn)\n", 0),
    ],
)
def test_the_check_sees_statements(source: str, expected: int) -> None:
    assert len(_offences(ast.parse(source))) == expected


def _names_service_state(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "service_state" for a in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "service_state":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "service_state" in node.value:
            # SQL text naming the table; prose in docstrings and comments says "service_state" too, so only
            # strings that look like statements count.
            words = node.value.upper().split()
            if {"SELECT", "UPDATE", "INSERT", "DELETE"} & set(words):
                return True
    return False


def test_service_state_has_one_accessor() -> None:
    """Runtime state is read and written through store/state.py only (the table is defined in store/tables.py and
    created by migrations)."""
    accessors = sorted(
        name
        for name, tree in _modules().items()
        if _names_service_state(tree)
        and name not in ("store/state.py", "store/tables.py")
        and not name.startswith("store/migrations/")
    )
    assert accessors == [], f"modules reading or writing service_state other than store/state.py: {accessors}"
