"""Browser-session rows: the dashboard's logins, checked by SHA-256 digest in constant time.

A session is live while it is neither revoked nor expired and the API key it was opened
with (if any) is not revoked: revoking a key logs its browsers out at once.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update

from cairn.store.keys import digest
from cairn.store.schema import api_keys, browser_sessions


def create_session(
    conn: Connection,
    *,
    session_id: str,
    secret: str,
    sandbox_id: str,
    role: str,
    key_id: str | None,
    expires_at: datetime,
) -> None:
    """Store a new session with the digest of its secret."""
    conn.execute(
        insert(browser_sessions).values(
            session_id=session_id,
            sandbox_id=sandbox_id,
            key_id=key_id,
            role=role,
            secret_sha256=digest(secret),
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
    )


def _live(now: datetime) -> Any:
    """Rows that are neither revoked nor expired, opened with no key or a live key."""
    key_alive = (
        select(api_keys.c.key_id)
        .where(api_keys.c.key_id == browser_sessions.c.key_id, api_keys.c.revoked_at.is_(None))
        .exists()
    )
    return and_(
        browser_sessions.c.revoked_at.is_(None),
        browser_sessions.c.expires_at > now,
        or_(browser_sessions.c.key_id.is_(None), key_alive),
    )


def verify_session(conn: Connection, session_id: str, secret: str) -> Row[Any] | None:
    """The live session if ``secret`` matches, else ``None``."""
    row = conn.execute(
        select(browser_sessions).where(
            browser_sessions.c.session_id == session_id, _live(datetime.now(UTC))
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, digest(secret)):
        return None
    return row


def session_is_live(conn: Connection, session_id: str) -> bool:
    """Whether the session may still be used (for open streams re-checking it)."""
    found = conn.execute(
        select(browser_sessions.c.session_id).where(
            browser_sessions.c.session_id == session_id, _live(datetime.now(UTC))
        )
    ).first()
    return found is not None


def key_is_live(conn: Connection, key_id: str) -> bool:
    """Whether the API key exists and is not revoked."""
    found = conn.execute(
        select(api_keys.c.key_id).where(
            api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return found is not None


def revoke_session(conn: Connection, session_id: str) -> None:
    """End a session now (idempotent)."""
    conn.execute(
        update(browser_sessions)
        .where(browser_sessions.c.session_id == session_id, browser_sessions.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
