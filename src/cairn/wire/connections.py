"""Wire models for OAuth connections and integration sources (the API, SDK and ``--json``).

A module of ``cairn.wire`` (not its ``__init__``) so the connection routes own their shapes;
they follow the same rules: unknown request fields are refused, tokens are write-only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from cairn.domain.connections import MAX_EXPIRES_IN_S, ConnectionStatus
from cairn.wire import Wire


class ConnectionCreate(Wire):
    """An app's OAuth token, as the connection provider issued it. Adding a connection
    revokes the app's previous one."""

    app_slug: str = Field(description="The app: slack, github, linear, …")
    access_token: str = Field(description="OAuth access token; write-only", repr=False)
    refresh_token: str | None = Field(default=None, description="write-only", repr=False)
    expires_in_s: int | None = Field(
        default=None,
        gt=0,
        le=MAX_EXPIRES_IN_S,
        description="Token lifetime from now, in seconds; null: no expiry known",
    )
    account_label: str = Field(default="", description="Whose account, for people")


class Connection(BaseModel):
    """A stored connection; its token is never included."""

    connection_id: str
    sandbox_id: str
    app_slug: str
    account_label: str
    status: ConnectionStatus
    expires_at: str | None
    expired: bool
    created_at: str | None
    updated_at: str | None


class IntegrationSourceCreate(Wire):
    """An OAuth'd app as a tool source; its tools are named ``pd_<app_slug>_<tool>``."""

    app_slug: str
    label: str | None = Field(default=None, description="Default: the app slug")
    provider_url: str | None = Field(
        default=None,
        description="The connection provider's MCP base URL; default: the "
        "server's CAIRN_CONNECT_URL",
    )
