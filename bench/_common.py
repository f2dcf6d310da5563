"""Shared bits of the benchmarks: machine description, a free port, made-up words."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import psycopg

PG_ADMIN_URL = os.environ.get("FAULTLENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus ({cpu}), Python {platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    port: int, env: dict[str, str], *, app: str = "faultlens.api.asgi:app", cwd: str | None = None
) -> subprocess.Popen[bytes]:
    """`uvicorn --factory <app>` on 127.0.0.1:port with FAULTLENS_* from `env`; returns once /healthz answers."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
        cwd=cwd,
    )
    return wait_healthy(proc, port, failure=lambda: "the server did not start")


def wait_healthy(
    proc: subprocess.Popen[bytes], port: int, *, failure: Callable[[], str], timeout_s: float = 120
) -> subprocess.Popen[bytes]:
    """Return `proc` once 127.0.0.1:port/healthz answers 200; stop it and exit with failure() when it dies first or
    does not answer within timeout_s."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                proc.wait(10)
                raise SystemExit(failure())
            time.sleep(0.1)


def pg_database(name: str, *, fresh: bool = False, template: str | None = None) -> str:
    """The URL of database `name` on the PG_ADMIN_URL server, created when missing.

    `fresh` drops it first; `template` makes it a copy of that database.
    """
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        if fresh:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            copy = f' TEMPLATE "{template}"' if template else ""
            admin.execute(f'CREATE DATABASE "{name}"{copy}')
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


# Made-up words: one per code, letters only (masking keeps them), so lines made of them never share a template.
_SYLLABLES = ["ka", "ri", "mo", "te", "lu", "sa", "vo", "ne", "pi", "da", "gu", "ze", "fo", "ha", "ji"]


def made_up_word(code: int, syllables: int = 5) -> str:
    """The word spelling `code` in base 15, one syllable per digit (distinct for codes below 15**syllables)."""
    return "".join(_SYLLABLES[code // 15**j % 15] for j in range(syllables))


def distinct_words(k: int) -> str:
    """4 to 6 made-up words that no other k's words share."""
    return " ".join(made_up_word(k * 8 + i) for i in range(4 + k % 3))
