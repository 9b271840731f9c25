"""The connection and integration-source operations, declared in
``cairn.api.table``.

Roles: viewers list connections; editors add connections and integration sources (as they
add other sources); owners revoke, since a revoke destroys the stored token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.api.operations import JSON, Caller

if TYPE_CHECKING:
    from cairn.wire import connections as wire_connections


def list_connections(caller: Caller) -> JSON:
    """Every connection of the sandbox, revoked ones too; never a token."""
    from cairn.services.connections import list_connections as list_all

    return [connection.to_dict() for connection in list_all(caller.app, caller.sandbox)]


def add_connection(caller: Caller, body: wire_connections.ConnectionCreate) -> JSON:
    """Store an app's OAuth token, encrypted (editor); the response omits the token."""
    from cairn.services.connections import add_connection as add

    return add(caller.app, caller.sandbox, **body.model_dump()).to_dict()


def revoke_connection(caller: Caller, ref: str) -> JSON:
    """Revoke a connection (by id, or an app's by slug) and forget its token (owner)."""
    from cairn.services.connections import revoke_connection as revoke

    return revoke(caller.app, caller.sandbox, ref).to_dict()


def add_integration_source(caller: Caller, body: wire_connections.IntegrationSourceCreate) -> JSON:
    """Register an OAuth'd app as a tool source (editor)."""
    from cairn.services.connections import add_integration_source as add

    return add(caller.app, caller.sandbox, **body.model_dump()).to_dict()
