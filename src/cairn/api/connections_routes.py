"""HTTP routes for OAuth connections and integration sources: thin wrappers over
``cairn.api.connection_ops``, mounted by ``cairn.api.app`` next to the main router."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from cairn import wire
from cairn.api import connection_ops as ops
from cairn.api.app import CallerDep
from cairn.api.app import problem_responses as _problems
from cairn.wire import connections as wire_connections

PREFIX = "/api/v1/sandboxes/{sandbox}"

connections = APIRouter(prefix=PREFIX, tags=["connections"])


@connections.get(
    "/connections", response_model=list[wire_connections.Connection], responses=_problems()
)
def list_connections(caller: CallerDep) -> Any:
    """Every OAuth connection of the sandbox, revoked ones too. Tokens are never included."""
    return ops.list_connections(caller)


@connections.post(
    "/connections",
    response_model=wire_connections.Connection,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403),
)
def add_connection(caller: CallerDep, body: wire_connections.ConnectionCreate) -> Any:
    """Store an app's OAuth token, encrypted at rest; it replaces the app's previous
    connection. The token is write-only."""
    return ops.add_connection(caller, body)


@connections.post(
    "/connections/{ref}/revoke",
    response_model=wire_connections.Connection,
    responses=_problems(403),
)
def revoke_connection(caller: CallerDep, ref: str) -> Any:
    """Revoke a connection (by id, or the app's active one by app slug) and forget its
    token; the app's integration sources are skipped by runs until it is connected again."""
    return ops.revoke_connection(caller, ref)


@connections.post(
    "/sources/integrations",
    response_model=wire.Source,
    status_code=status.HTTP_201_CREATED,
    responses=_problems(400, 403, 409),
)
def add_integration_source(
    caller: CallerDep, body: wire_connections.IntegrationSourceCreate
) -> Any:
    """Register an OAuth'd app as a tool source; its tools are named
    ``pd_<app_slug>_<tool>``. Runs skip it, with the reason, while it has no usable
    connection."""
    return ops.add_integration_source(caller, body)
