"""API keys and roles: who may do what in a sandbox.

A key is shown once as ``<key_id>.<secret>``; only a SHA-256 of the secret is stored.
Roles are ordered: a viewer reads and test-fires; an editor also changes agents, sources
and triggers; an owner also destroys things and manages keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cairn.errors import Forbidden
from cairn.text import record

Role = Literal["viewer", "editor", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "owner")


def role_allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` includes everything ``needed`` may do."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never its secret)."""

    key_id: str
    sandbox_id: str
    name: str
    role: Role
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Shown form."""
        return record(self)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the sandbox their key is scoped to and their role. ``key_id`` is
    the API key used (``None`` for the operator in-process: the CLI on the ledger's
    machine); ``session_id`` the dashboard session, when the call came from a browser."""

    sandbox_id: str
    role: Role
    key_id: str | None = None
    session_id: str | None = None

    @property
    def operator(self) -> bool:
        """The local operator (no key, no session): the only caller who may make Cairn
        run programs on this machine without a server setting allowing it."""
        return self.key_id is None and self.session_id is None


def require(principal: Principal, needed: Role, action: str) -> None:
    """Raise ``Forbidden`` unless the principal's role allows ``action``."""
    if not role_allows(principal.role, needed):
        raise Forbidden(f"a {principal.role} key cannot {action}; it needs the {needed} role")
