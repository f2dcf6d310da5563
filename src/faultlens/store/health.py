"""Database liveness: the cheapest statement that proves a connection answers."""

from __future__ import annotations

from sqlalchemy import Engine, text


def ping(engine: Engine) -> None:
    """Run `SELECT 1` on a pooled connection; raises what the driver raises when the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
