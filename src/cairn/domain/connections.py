"""OAuth connections: the tokens an integration source reaches its app with.

A connection belongs to one sandbox and one app (``slack``, ``github``, …). Its token
mapping (``access_token``, optionally ``refresh_token``) is sealed by the store and opened
only when a run builds the app's integration source; ``to_dict`` never carries it. At most
one connection per app is ``active``: adding a new one revokes the one it replaces, and a
revoked connection has forgotten its token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cairn.errors import UsageError
from cairn.text import record

ConnectionStatus = Literal["active", "revoked"]

APP_SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""What an app slug may look like: it becomes part of tool names (``pd_<slug>_<tool>``)."""

MAX_EXPIRES_IN_S: Final = 10 * 365 * 24 * 3600
"""The longest token lifetime accepted (ten years); longer is "no expiry": omit it."""

TOOL_PREFIX: Final = "pd"
"""Integration tools are named ``pd_<app_slug>_<remote tool>``."""


def check_app_slug(app_slug: str) -> str:
    """``app_slug`` if it is usable in tool names; else ``UsageError`` quoting it."""
    if not APP_SLUG.match(app_slug):
        raise UsageError(
            f"app slug {app_slug!r} must be lower-case letters, digits, '_' or '-' "
            "(e.g. slack, github, google_sheets)"
        )
    return app_slug


def integration_namespace(app_slug: str) -> str:
    """The namespace that prefixes an app's tools: ``pd_<app_slug>``."""
    return f"{TOOL_PREFIX}_{app_slug}"


@dataclass(slots=True)
class Connection:
    """A stored OAuth connection. ``token`` is filled only where the source is built."""

    connection_id: str
    sandbox_id: str
    app_slug: str
    account_label: str = ""
    status: ConnectionStatus = "active"
    expires_at: datetime | None = None
    token: dict[str, str] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether the access token's expiry has passed (never, without an expiry)."""
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """Shown form: everything but the token."""
        return record(self, "token") | {"expired": self.is_expired()}
