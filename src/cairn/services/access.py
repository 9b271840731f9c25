"""Sandboxes and API keys: the tenancy boundary and who may cross into it."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime

from cairn.config import local_key_path, private_dir
from cairn.domain.agents import validate_slug
from cairn.domain.keys import ROLES, ApiKey, Principal, Role
from cairn.errors import AlreadyExists, Conflict, Unauthorized, UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.services.local_identity import read_identity
from cairn.store import keys as key_store
from cairn.store import sandboxes as sandbox_store


def create_sandbox(app: App, sandbox_id: str, name: str | None = None) -> str:
    """A new, empty sandbox (same naming rules as agent slugs)."""
    validate_slug(sandbox_id)
    with app.store.begin() as conn:
        if sandbox_id in sandbox_store.list_sandbox_ids(conn):
            raise AlreadyExists(f"sandbox {sandbox_id!r} already exists")
        sandbox_store.ensure_sandbox(conn, sandbox_id, name)
    if read_identity(app.settings.home) is not None:  # a home that serves: a local key each
        local_key(app, sandbox_id)
    return sandbox_id


def list_sandboxes(app: App) -> list[tuple[str, str]]:
    """Every sandbox as ``(sandbox_id, name)`` (an operator command, not scoped)."""
    with app.store.connect() as conn:
        return sandbox_store.list_sandboxes(conn)


def create_key(app: App, sandbox_id: str, name: str, role: Role) -> tuple[ApiKey, str]:
    """A new key; returns it and the token ``<key_id>.<secret>``, shown this once only."""
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    key = ApiKey(new_id("key"), sandbox_id, name or role, role, datetime.now(UTC))
    secret = secrets.token_urlsafe(32)
    with app.store.begin() as conn:
        sandbox_store.require_sandbox(conn, sandbox_id)
        key_store.create_key(conn, key, secret)
    return key, f"{key.key_id}.{secret}"


def list_keys(app: App, sandbox_id: str) -> list[ApiKey]:
    """The sandbox's keys (never their secrets)."""
    with app.store.connect() as conn:
        return key_store.list_keys(conn, sandbox_id)


def revoke_key(app: App, sandbox_id: str, key_id: str) -> ApiKey:
    """Revoke a key now; calls with it get 401 from then on (through another process's
    key cache, within ``KEY_TTL_S``). Revoking it again is a ``Conflict`` (the one rule
    for removal verbs, docs/cli.md)."""
    with app.store.begin() as conn:
        for key in key_store.list_keys(conn, sandbox_id):
            if key.key_id == key_id and key.revoked_at is not None:
                raise Conflict(f"API key {key_id} is already revoked")
        revoked = key_store.revoke_key(conn, sandbox_id, key_id)
    app.caches.keys.forget(key_id)
    return revoked


def authenticate(app: App, token: str | None) -> Principal:
    """The caller behind a bearer token, or ``Unauthorized`` with the reason."""
    if not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    cached = app.caches.keys.get(token)
    if cached is not None:
        return cached
    key_id, dot, secret = token.partition(".")
    if not dot or not key_id.startswith("key_"):
        raise Unauthorized("malformed API key: expected '<key_id>.<secret>'")
    with app.store.connect() as conn:
        key = key_store.verify_key(conn, key_id, secret)
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    principal = Principal(key.sandbox_id, key.role, key.key_id)
    app.caches.keys.put(token, principal)
    return principal


def local_key(app: App, sandbox_id: str = "default") -> str:
    """An owner key for the sandbox, made on first use and kept in
    ``local_key_path`` (mode 0600, folders 0700), so that on the embedded default the CLI
    talks to ``cairn serve`` with no setup. Whoever can read that file can read the ledger
    file beside it anyway."""
    path = local_key_path(app.settings, sandbox_id)
    if path.exists():
        token = path.read_text().strip()
        key_id, _, secret = token.partition(".")
        with app.store.connect() as conn:
            if key_store.verify_key(conn, key_id, secret) is not None:
                return token
    _, token = create_key(app, sandbox_id, "local CLI", "owner")
    private_dir(path.parent)
    private_dir(path.parent.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)
    os.chmod(path, 0o600)  # an older file made with a looser mode
    return token
