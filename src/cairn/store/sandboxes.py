"""Sandbox rows: the tenancy boundary."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from cairn.errors import NotFound
from cairn.store.schema import sandboxes


def list_sandbox_ids(conn: Connection) -> list[str]:
    """Every sandbox id, sorted."""
    return list(conn.execute(select(sandboxes.c.sandbox_id).order_by("sandbox_id")).scalars())


def require_sandbox(conn: Connection, sandbox_id: str) -> None:
    """Raise ``NotFound`` (listing the sandboxes that exist) unless ``sandbox_id`` exists."""
    found = conn.execute(
        select(sandboxes.c.sandbox_id).where(sandboxes.c.sandbox_id == sandbox_id)
    ).first()
    if found is None:
        raise NotFound(f"no sandbox {sandbox_id!r}; sandboxes: {', '.join(list_sandbox_ids(conn))}")


def ensure_sandbox(conn: Connection, sandbox_id: str, name: str | None = None) -> None:
    """Create the sandbox if it does not exist yet."""
    exists = conn.execute(
        select(sandboxes.c.sandbox_id).where(sandboxes.c.sandbox_id == sandbox_id)
    ).first()
    if exists is None:
        conn.execute(
            insert(sandboxes).values(
                sandbox_id=sandbox_id, name=name or sandbox_id, created_at=datetime.now(UTC)
            )
        )


def list_sandboxes(conn: Connection) -> list[tuple[str, str]]:
    """Every sandbox as ``(sandbox_id, name)``."""
    rows = conn.execute(select(sandboxes.c.sandbox_id, sandboxes.c.name).order_by("sandbox_id"))
    return [(row.sandbox_id, row.name) for row in rows]
