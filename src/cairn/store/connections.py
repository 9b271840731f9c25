"""OAuth connection rows. Tokens are sealed by ``SecretBox`` before they reach the table,
and a revoke drops the ciphertext: a revoked connection cannot be used again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection as DbConnection
from sqlalchemy import Row, insert, or_, select, update

from cairn.domain.connections import Connection
from cairn.errors import NotFound
from cairn.store.crypto import SecretBox
from cairn.store.rows import record_values, row_record
from cairn.store.schema import connections


def _to_connection(row: Row[Any], box: SecretBox | None) -> Connection:
    token = box.open(row.token_ciphertext) if box else {}
    return row_record(Connection, row, token=token)


def create_connection(conn: DbConnection, connection: Connection, box: SecretBox) -> Connection:
    """Insert ``connection`` with its token sealed."""
    now = datetime.now(UTC)
    sealed = box.seal(connection.token)
    values = record_values(
        connections, connection, token_ciphertext=sealed, created_at=now, updated_at=now
    )
    conn.execute(insert(connections).values(values))
    connection.created_at = connection.updated_at = now
    return connection


def list_connections(conn: DbConnection, sandbox_id: str) -> list[Connection]:
    """Every connection of the sandbox (revoked ones too), oldest first; no tokens."""
    rows = conn.execute(
        select(connections)
        .where(connections.c.sandbox_id == sandbox_id)
        .order_by(connections.c.connection_id)
    )
    return [_to_connection(row, None) for row in rows]


def get_connection(conn: DbConnection, sandbox_id: str, connection_id: str) -> Connection:
    """One connection by id, without its token; ``NotFound`` when there is none."""
    row = conn.execute(
        select(connections).where(
            connections.c.sandbox_id == sandbox_id,
            connections.c.connection_id == connection_id,
        )
    ).first()
    if row is None:
        raise NotFound(
            f"no connection {connection_id!r} in sandbox {sandbox_id!r} "
            "(see 'cairn connection list')"
        )
    return _to_connection(row, None)


def latest_connections(
    conn: DbConnection, sandbox_id: str, app_slugs: Iterable[str], box: SecretBox
) -> dict[str, Connection]:
    """For each app, its newest connection: the active one (with its token opened) when
    there is one, else the newest revoked one, so a caller can say why it cannot be used."""
    slugs = sorted(set(app_slugs))
    if not slugs:
        return {}
    rows = conn.execute(
        select(connections)
        .where(connections.c.sandbox_id == sandbox_id, connections.c.app_slug.in_(slugs))
        .order_by(connections.c.connection_id.desc())
    )
    found: dict[str, Connection] = {}
    for row in rows:
        current = found.get(row.app_slug)
        if current is None or (current.status != "active" and row.status == "active"):
            found[row.app_slug] = _to_connection(row, box if row.status == "active" else None)
    return found


def revoke_connections(
    conn: DbConnection, sandbox_id: str, ref: str, *, app_slug_only: bool = False
) -> list[str]:
    """Revoke the active connections named by ``ref`` (a connection id, or an app slug: its
    active connection) and forget their tokens; the ids revoked, possibly none."""
    match = connections.c.app_slug == ref
    if not app_slug_only:
        match = or_(connections.c.connection_id == ref, match)
    where = (connections.c.sandbox_id == sandbox_id, connections.c.status == "active", match)
    ids = list(conn.execute(select(connections.c.connection_id).where(*where)).scalars())
    if ids:
        conn.execute(
            update(connections)
            .where(connections.c.connection_id.in_(ids))
            .values(status="revoked", token_ciphertext=None, updated_at=datetime.now(UTC))
        )
    return ids
