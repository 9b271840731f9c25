"""OAuth connections and the integration sources that use them.

``add_connection`` stores an app's token (sealed) and replaces the app's previous
connection: at most one connection per app is active, so "reconnect" is just adding it
again. ``add_integration_source`` registers the app as a tool source; the two are
independent, and a source whose app has no usable connection is skipped by runs with the
reason (``cairn.tools.integration``). ``attach_connections`` is how a run's sources get
their tokens: only in memory, only while the run builds them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cairn.domain.connections import (
    MAX_EXPIRES_IN_S,
    Connection,
    check_app_slug,
    integration_namespace,
)
from cairn.domain.sources import DataSource
from cairn.errors import NotFound, UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import connections as connection_store
from cairn.store import sources as source_store
from cairn.store.sandboxes import require_sandbox

INTEGRATION_KIND = "integration"
_MAX_LABEL = 200  # the width of the label columns


def add_connection(
    app: App,
    sandbox_id: str,
    app_slug: str,
    access_token: str,
    *,
    expires_in_s: int | None = None,
    account_label: str = "",
    refresh_token: str | None = None,
) -> Connection:
    """Store a connection for ``app_slug`` (its token encrypted) and revoke the one it
    replaces. ``expires_in_s`` is the token's lifetime from now (``None``: no expiry known).
    The returned connection carries no token."""
    check_app_slug(app_slug)
    if len(account_label) > _MAX_LABEL:
        raise UsageError(f"--account may be at most {_MAX_LABEL} characters")
    if not access_token.strip():
        raise UsageError(
            f"a connection for {app_slug!r} needs an access token (--token or CAIRN_CONNECT_TOKEN)"
        )
    if expires_in_s is not None and not 0 < expires_in_s <= MAX_EXPIRES_IN_S:
        raise UsageError(
            f"--expires-in must be between 1 and {MAX_EXPIRES_IN_S} seconds (omit it when the "
            f"token does not expire), got {expires_in_s}"
        )
    token = {"access_token": access_token}
    if refresh_token:
        token["refresh_token"] = refresh_token
    expires_at = None
    if expires_in_s is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    connection = Connection(
        connection_id=new_id("conn"),
        sandbox_id=sandbox_id,
        app_slug=app_slug,
        account_label=account_label,
        expires_at=expires_at,
        token=token,
    )
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        connection_store.revoke_connections(conn, sandbox_id, app_slug, app_slug_only=True)
        connection_store.create_connection(conn, connection, app.secrets)
    return replace(connection, token={})


def list_connections(app: App, sandbox_id: str) -> list[Connection]:
    """Every connection of the sandbox, revoked ones included, oldest first; no tokens."""
    with app.store.connect() as conn:
        return connection_store.list_connections(conn, sandbox_id)


def revoke_connection(app: App, sandbox_id: str, ref: str) -> Connection:
    """Revoke a connection by id, or an app's active connection by app slug, and forget
    its token. Revoking an already revoked connection (by id) returns it unchanged."""
    with app.store.begin() as conn:
        revoked = connection_store.revoke_connections(conn, sandbox_id, ref)
        if revoked:
            return connection_store.get_connection(conn, sandbox_id, revoked[0])
        try:
            return connection_store.get_connection(conn, sandbox_id, ref)
        except NotFound:
            raise NotFound(
                f"no active connection {ref!r} (an id or an app slug) in sandbox "
                f"{sandbox_id!r} (see 'cairn connection list')"
            ) from None


def add_integration_source(
    app: App,
    sandbox_id: str,
    app_slug: str,
    *,
    label: str | None = None,
    provider_url: str | None = None,
) -> DataSource:
    """Register ``app_slug`` as a tool source whose tools are named ``pd_<app_slug>_<tool>``.

    The provider is ``provider_url`` or ``CAIRN_CONNECT_URL``. The source is saved
    ``active`` whether or not the app has a connection yet: runs skip it until it does."""
    check_app_slug(app_slug)
    url = (provider_url or app.settings.connect_url or "").strip().rstrip("/")
    if not url:
        raise UsageError(
            "no connection provider: pass --provider-url or set CAIRN_CONNECT_URL on the server"
        )
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        usable = False
    if not usable:
        raise UsageError(f"the provider URL must be http(s)://host/…, got {url!r}")
    chosen = (label if label is not None else app_slug).strip()
    if not chosen or len(chosen) > _MAX_LABEL:
        raise UsageError(f"a source label must be 1 to {_MAX_LABEL} characters, got {chosen!r}")
    config: dict[str, Any] = {
        "app_slug": app_slug,
        "provider_url": url,
        "namespace": integration_namespace(app_slug),
    }
    source = DataSource(new_id("src"), sandbox_id, INTEGRATION_KIND, chosen, config)
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        return source_store.create_source(conn, source, app.secrets)


def attach_connections(app: App, sandbox_id: str, sources: list[DataSource]) -> None:
    """Put each integration source's connection into its in-memory ``secret`` (see
    ``cairn.tools.integration``). One query for all of them; nothing is written."""
    wanted = [s for s in sources if s.kind == INTEGRATION_KIND]
    slugs = {str(s.config.get("app_slug") or "") for s in wanted}
    with app.store.connect() as conn:
        found = connection_store.latest_connections(conn, sandbox_id, slugs - {""}, app.secrets)
    for source in wanted:
        connection = found.get(str(source.config.get("app_slug") or ""))
        if connection is None:
            source.secret = {"connection_status": "missing"}
            continue
        source.secret = {
            "connection_status": connection.status,
            "connection_id": connection.connection_id,
            "expires_at": connection.expires_at.isoformat() if connection.expires_at else "",
        }
        access_token = connection.token.get("access_token")
        if connection.status == "active" and access_token:
            source.secret["access_token"] = access_token
