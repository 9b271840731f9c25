"""Model-backend API keys per sandbox, sealed by ``SecretBox``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from cairn.errors import NotFound
from cairn.store.crypto import SecretBox
from cairn.store.schema import credentials, update_or_insert


def set_credential(
    conn: Connection, sandbox_id: str, backend: str, api_key: str, box: SecretBox
) -> None:
    """Store (or replace) the sandbox's key for ``backend``."""
    key = {"sandbox_id": sandbox_id, "backend": backend}
    sealed = {"secret_ciphertext": box.seal({"api_key": api_key})}
    update_or_insert(conn, credentials, key, sealed, datetime.now(UTC))


def api_key(conn: Connection, sandbox_id: str, backend: str, box: SecretBox) -> str | None:
    """The stored key, or ``None``."""
    row = conn.execute(
        select(credentials.c.secret_ciphertext).where(
            credentials.c.sandbox_id == sandbox_id, credentials.c.backend == backend
        )
    ).first()
    return box.open(row[0]).get("api_key") if row is not None else None


def list_credentials(conn: Connection, sandbox_id: str) -> list[dict[str, Any]]:
    """Which backends have a stored key (never the keys)."""
    rows = conn.execute(
        select(credentials.c.backend, credentials.c.created_at, credentials.c.updated_at)
        .where(credentials.c.sandbox_id == sandbox_id)
        .order_by(credentials.c.backend)
    )
    return [
        {
            "backend": r.backend,
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]


def delete_credential(conn: Connection, sandbox_id: str, backend: str) -> None:
    """Forget the sandbox's key for ``backend``."""
    result = conn.execute(
        delete(credentials).where(
            credentials.c.sandbox_id == sandbox_id, credentials.c.backend == backend
        )
    )
    if not result.rowcount:
        raise NotFound(f"no stored credential for {backend!r} in sandbox {sandbox_id!r}")
