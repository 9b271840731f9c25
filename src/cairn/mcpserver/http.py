"""The MCP server as streamable HTTP at ``/mcp`` on ``cairn serve``, behind the API's keys.

Every request must carry ``Authorization: Bearer <key>``: no key, a malformed, unknown or
revoked one answers 401 (problem+json, ``WWW-Authenticate: Bearer``) before the MCP SDK
sees the request. The key's principal rides on the request's ASGI scope, and each tool runs
as it (``TableBackend``), so a key reaches its own sandbox only and its role decides what
it may do. The transport is stateless (a fresh protocol exchange per request, JSON
answers): no session outlives its request, so a key revoked mid-conversation stops
working at once and shutdown waits for nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from cairn.api.dependencies import bearer_token
from cairn.api.intake import MCP_PATH
from cairn.api.problems import problem
from cairn.domain.keys import Principal
from cairn.errors import CairnError
from cairn.mcpserver.backend import TableBackend
from cairn.mcpserver.server import Context, build_server
from cairn.services.access import authenticate
from cairn.services.app import App

PATH = MCP_PATH
PRINCIPAL = "cairn.principal"
"""The ASGI scope key the authenticated principal travels under."""

Scope = MutableMapping[str, Any]


class McpEndpoint:
    """The ASGI application of ``/mcp``; run ``lifespan()`` around serving it."""

    def __init__(self, app: App) -> None:
        self.app = app
        server = build_server(self._backend)
        self.manager = StreamableHTTPSessionManager(server, stateless=True, json_response=True)

    def _backend(self, ctx: Context) -> TableBackend:
        principal = ctx.request.scope[PRINCIPAL] if ctx.request is not None else None
        if not isinstance(principal, Principal):  # never: every request passed __call__
            raise RuntimeError("an MCP request reached a tool without a principal")
        return TableBackend(self.app, principal)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The SDK's task group, for as long as the server serves."""
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        try:
            principal = await anyio.to_thread.run_sync(authenticate, self.app, token)
        except CairnError as error:
            title = "Unauthorized" if error.http_status == 401 else "Error"
            refusal = problem(error.http_status, title, str(error), type(error).__name__)
            refusal.headers["www-authenticate"] = 'Bearer realm="cairn"'
            await refusal(scope, receive, send)
            return
        scope[PRINCIPAL] = principal
        await self.manager.handle_request(scope, receive, send)
