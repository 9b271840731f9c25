"""Dashboard sessions: what a browser holds instead of an API key.

Logging in with a key opens a session scoped to the key's sandbox and role; the cookie
carries ``<session_id>.<secret>`` and the ledger keeps only a digest. A session expires
(``SESSION_TTL_S``), ends on logout, and ends with the key it was opened with. The local
automatic login opens a session with no key (the operator opted into it), never hands out
the local owner key. Open streams re-check their principal (``principal_is_live``), so a
revocation closes them within ``cairn.api.revocation.CHECK_S``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cairn.domain.keys import ROLES, Principal, Role
from cairn.errors import Unauthorized
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import sessions as session_store

SESSION_COOKIE = "cairn_session"
CSRF_COOKIE = "cairn_csrf"
CSRF_HEADER = "X-Cairn-CSRF"
"""A cookie-authenticated write echoes the CSRF cookie in this header (see
``cairn.api.app.request_principal``)."""

SESSION_TTL_S = 12 * 3600
"""How long a dashboard login lasts (the cookie's max-age too)."""


def open_session(app: App, principal: Principal) -> str:
    """A new session for ``principal``'s sandbox and role; returns the cookie token."""
    session_id = new_id("ses")
    secret = secrets.token_urlsafe(32)
    with app.store.begin() as conn:
        session_store.create_session(
            conn,
            session_id=session_id,
            secret=secret,
            sandbox_id=principal.sandbox_id,
            role=principal.role,
            key_id=principal.key_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=SESSION_TTL_S),
        )
    return f"{session_id}.{secret}"


def authenticate_session(app: App, token: str | None) -> Principal:
    """The principal behind a session cookie, or ``Unauthorized``."""
    session_id, dot, secret = (token or "").partition(".")
    if not dot or not session_id.startswith("ses_"):
        raise Unauthorized("no dashboard session: log in again")
    with app.store.connect() as conn:
        row = session_store.verify_session(conn, session_id, secret)
    if row is None:
        raise Unauthorized("the dashboard session ended: log in again")
    role: Role = row.role if row.role in ROLES else "viewer"
    return Principal(row.sandbox_id, role, row.key_id, session_id)


def close_session(app: App, token: str | None) -> None:
    """Log a browser out: its session cannot be used again."""
    session_id, dot, _ = (token or "").partition(".")
    if dot and session_id.startswith("ses_"):
        with app.store.begin() as conn:
            session_store.revoke_session(conn, session_id)


def principal_is_live(app: App, principal: Principal) -> bool:
    """Whether the principal's session / key still hold (checked by open streams)."""
    with app.store.connect() as conn:
        if principal.session_id is not None:
            return session_store.session_is_live(conn, principal.session_id)
        if principal.key_id is not None:
            return session_store.key_is_live(conn, principal.key_id)
    return True
