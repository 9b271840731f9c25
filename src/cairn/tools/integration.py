"""The ``integration`` tool source: an OAuth'd app (Slack, GitHub, Linear, …) reached
through a connection provider that serves each app's tools over MCP.

A source's ``config`` names the app and the provider; the service that lists the sources
of a run (``cairn.services.sources.available_sources``) puts the app's connection into
the record's ``secret``, which is never shown::

    config                                   secret (attached per run)
    app_slug: "slack"                        access_token       the OAuth access token
    provider_url: "http://…/mcp"             expires_at         ISO time, or ""
    namespace: "pd_slack"                    connection_status  active | revoked | missing
                                             connection_id

The app's tools are served at ``<provider_url>/<app_slug>`` over streamable HTTP with
``Authorization: Bearer <access_token>``; ``IntegrationSource`` delegates the MCP work to
``McpSource`` and the ``namespace`` wrapper names the tools ``pd_<app_slug>_<tool>``.

A connection that cannot be used makes the source skip (``SourceUnavailable``), never the
run fail:

=====================================  ================  ===============================
situation                              reason            remedy in the message
=====================================  ================  ===============================
no connection for the app              ``oauth_missing``  ``cairn connection add <app>``
the connection was revoked in Cairn    ``oauth_missing``  ``cairn connection add <app>``
the token's expiry has passed          ``oauth_expired``  ``cairn connection add <app>``
the provider answers 401/403           ``oauth_expired``  ``cairn connection add <app>``
=====================================  ================  ===============================

A connection revoked in Cairn has forgotten its token, so the app has no connection at all:
``oauth_missing``, with "revoked" in the message. ``oauth_expired`` is kept for a token
that exists but no longer works: expired by its clock, or refused upstream (revoked or
expired at the app). Other failures (provider unreachable, timeout) keep ``McpSource``'s
reasons. No message ever carries the token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.tools.base import SourceUnavailable, ToolContext
from cairn.tools.mcp import McpSource


class IntegrationSource(McpSource):
    """An ``integration`` data source as a ``ToolSource``: ``IntegrationSource(source, context)``.

    An ``McpSource`` whose server is the app's endpoint at the provider: ``async with``
    checks the connection first, and the provider refusing the token becomes
    ``oauth_expired`` (see the module docstring for reasons).
    """

    kind = "integration"
    noun = "integration source"

    def __init__(self, source: DataSource, context: ToolContext) -> None:
        super().__init__(source, context)
        self._sandbox_id = source.sandbox_id
        self._app_config = dict(source.config)
        self._connection_secret = dict(source.secret)
        self.app_slug = str(self._app_config.get("app_slug") or "")

    async def __aenter__(self) -> IntegrationSource:
        provider = self._provider_record(self._usable_token())
        self._config = dict(provider.config)  # McpSource's, for the app's endpoint
        self._secret = dict(provider.secret)
        try:
            await super().__aenter__()
        except SourceUnavailable as exc:
            raise self._translate(exc) from None
        return self

    async def list_tools(self) -> list[ToolSpec]:
        """The app's tools under the provider's names (the namespace wrapper prefixes them)."""
        try:
            return await super().list_tools()
        except SourceUnavailable as exc:
            raise self._translate(exc) from None

    # -- the connection -----------------------------------------------------------------

    def _who(self) -> str:
        """How messages name the source: its label, and the app when the label differs."""
        if self.label == self.app_slug or not self.app_slug:
            return self.label
        return f"{self.label} ({self.app_slug})"

    def _remedy(self, verb: str = "reconnect") -> str:
        return f"{verb} with 'cairn connection add {self.app_slug}'"

    def _usable_token(self) -> str:
        """The access token, or ``SourceUnavailable`` saying why there is none to use."""
        if not self.app_slug:
            raise SourceUnavailable("error", f"{self.label}: the source's config has no app_slug")
        status = self._connection_secret.get("connection_status", "missing")
        token = self._connection_secret.get("access_token", "")
        if status == "revoked":
            raise SourceUnavailable(
                "oauth_missing",
                f"{self._who()}: the OAuth connection was revoked; {self._remedy('connect it')}",
            )
        if status != "active" or not token:
            raise SourceUnavailable(
                "oauth_missing",
                f"{self._who()}: no OAuth connection; {self._remedy('connect it')}",
            )
        expires_at = self._expiry()
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise SourceUnavailable(
                "oauth_expired",
                f"{self._who()}: the OAuth token expired at "
                f"{expires_at.isoformat(timespec='seconds')}; {self._remedy()}",
            )
        return token

    def _expiry(self) -> datetime | None:
        raw = self._connection_secret.get("expires_at") or ""
        if not raw:
            return None
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise SourceUnavailable(
                "error", f"{self._who()}: the connection's expiry {raw!r} is not a time"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _provider_record(self, token: str) -> DataSource:
        """A ``user_mcp`` record for the app's endpoint at the provider, with bearer auth."""
        provider = str(self._app_config.get("provider_url") or "").rstrip("/")
        if not provider:
            raise SourceUnavailable(
                "error",
                f"{self._who()}: no provider URL; add the source again with --provider-url "
                "or set CAIRN_CONNECT_URL",
            )
        return DataSource(
            source_id=self.source_id,
            sandbox_id=self._sandbox_id,
            kind="user_mcp",
            label=self.label,
            config={"transport": "http", "url": f"{provider}/{self.app_slug}", "auth": "bearer"},
            secret={"token": token},
        )

    def _translate(self, exc: SourceUnavailable) -> SourceUnavailable:
        """The provider refusing the token means the connection no longer works upstream."""
        if exc.reason != "auth_refused":
            return exc
        return SourceUnavailable(
            "oauth_expired",
            f"{self._who()}: the provider refused the OAuth token (revoked or expired at the "
            f"app); {self._remedy()}",
        )


__all__ = ["IntegrationSource"]
