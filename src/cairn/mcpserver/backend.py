"""How the MCP server runs an operation: as a caller, through the operation table.

``TableBackend`` runs it in this process (``cairn.api.table.acall``): the server mounted on
``cairn serve`` (one per request, as the request's key) and ``cairn mcp`` on the local
ledger. ``cairn mcp --url`` gives the server a backend over the SDK's HTTP transport
instead (``cairn.cli.mcp_server``): the same calls, sent to a Cairn server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cairn.api import table
from cairn.api.operations import Caller
from cairn.domain.keys import Principal
from cairn.services.app import App


class Backend(Protocol):
    """Runs operations of the table by name as ``principal``; raises ``cairn.errors``."""

    @property
    def principal(self) -> Principal:
        """Who calls: the sandbox and the role every tool is checked against."""
        ...

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The JSON-ready result of the operation (as the HTTP route would serve it)."""
        ...


class TableBackend:
    """The operations run here, over ``app``, as ``principal``."""

    def __init__(self, app: App, principal: Principal) -> None:
        self._caller = Caller(app, principal)

    @property
    def principal(self) -> Principal:
        """The caller's principal."""
        return self._caller.principal

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """``cairn.api.table.acall``: the role check, then the handler."""
        return await table.acall(operation, self._caller, params, body)
