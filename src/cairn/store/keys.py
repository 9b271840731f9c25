"""API-key rows. Secrets are compared by SHA-256 digest in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from cairn.domain.keys import ApiKey
from cairn.errors import NotFound
from cairn.store.rows import row_record
from cairn.store.schema import api_keys


def digest(secret: str) -> str:
    """The stored form of a key's secret part."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(conn: Connection, key: ApiKey, secret: str) -> None:
    """Store a key (its fields are columns) with the digest of its secret."""
    conn.execute(insert(api_keys).values(asdict(key) | {"secret_sha256": digest(secret)}))


def verify_key(conn: Connection, key_id: str, secret: str) -> ApiKey | None:
    """The key if ``secret`` matches and it is not revoked, else ``None``."""
    row = conn.execute(
        select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, digest(secret)):
        return None
    return row_record(ApiKey, row)


def list_keys(conn: Connection, sandbox_id: str) -> list[ApiKey]:
    """Every key of the sandbox, revoked ones included, oldest first."""
    rows = conn.execute(
        select(api_keys).where(api_keys.c.sandbox_id == sandbox_id).order_by(api_keys.c.key_id)
    )
    return [row_record(ApiKey, row) for row in rows]


def revoke_key(conn: Connection, sandbox_id: str, key_id: str) -> ApiKey:
    """Revoke a key of the sandbox (idempotent); ``NotFound`` if it is not the sandbox's."""
    row = conn.execute(
        select(api_keys).where(api_keys.c.sandbox_id == sandbox_id, api_keys.c.key_id == key_id)
    ).first()
    if row is None:
        raise NotFound(f"no API key {key_id!r} in sandbox {sandbox_id!r}")
    if row.revoked_at is None:
        conn.execute(
            update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=datetime.now(UTC))
        )
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one()
    return row_record(ApiKey, row)
