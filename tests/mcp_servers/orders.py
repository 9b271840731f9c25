"""A small MCP server for tests: an order lookup and a few tools that misbehave on purpose.

Run by file path in a fresh interpreter (it imports nothing from the test tree)::

    python tests/mcp_servers/orders.py                          # stdio
    python tests/mcp_servers/orders.py --http                   # streamable HTTP, bearer auth
    python tests/mcp_servers/orders.py --http --auth-header X-Api-Key

Over HTTP it listens on a free loopback port and, once it accepts connections, prints
``port=<n>`` as the only line on stdout. It wants the credential from the environment
variable ``ORDERS_MCP_TOKEN`` (``Authorization: Bearer <token>``, or ``<header>: <token>``
with ``--auth-header``) and answers 401 without it. ``tests.mcp_servers.serve_http`` drives this.
"""

from __future__ import annotations

import argparse
import hmac
import os
import socket
import sys
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "ORDERS_MCP_TOKEN"


def build_server() -> MCPServer:
    """The server with its tools registered; each call builds a fresh one."""
    server: MCPServer = MCPServer("cairn-test-orders", version="1.0", log_level="WARNING")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Say where an order is."""
        return f"order {order_id}: shipped"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def order_summary(order_id: str) -> dict[str, Any]:
        """An order as a JSON object (structured content)."""
        return {"order_id": order_id, "status": "shipped", "items": 2}

    @server.tool()
    def fail(message: str) -> str:
        """Always raise, so the client sees an isError result."""
        raise ValueError(message)

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer: for timeouts and cancellation."""
        await anyio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool()
    def crash() -> str:
        """Exit the server process at once, in the middle of the call."""
        os._exit(1)

    @server.tool()
    def read_env(name: str) -> str:
        """The value of an environment variable of the server process ('' when unset)."""
        return os.environ.get(name, "")

    return server


class RequireHeader:
    """ASGI middleware: 401 unless header ``name`` carries exactly ``expected``."""

    def __init__(self, app: ASGIApp, name: str, expected: str) -> None:
        self.app = app
        self.name = name.lower().encode("latin-1")
        self.expected = expected.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(self.name, b"")
            if not hmac.compare_digest(given, self.expected):
                refusal = JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _AnnouncingServer(uvicorn.Server):
    """Prints the bound port once the app's lifespan has started and the socket listens."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        port = self.servers[0].sockets[0].getsockname()[1]
        print(f"port={port}", flush=True)


def serve_http(auth_header: str | None) -> None:
    """Serve the tools over streamable HTTP on 127.0.0.1 until SIGTERM/SIGINT."""
    token = os.environ[TOKEN_ENV]
    if auth_header is None:
        app = RequireHeader(
            build_server().streamable_http_app(), "authorization", f"Bearer {token}"
        )
    else:
        app = RequireHeader(build_server().streamable_http_app(), auth_header, token)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    _AnnouncingServer(config).run()


def main(argv: list[str]) -> None:
    """Command-line entry: stdio by default, ``--http`` for streamable HTTP."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument("--auth-header", help="custom header that carries the token")
    args = parser.parse_args(argv)
    if args.http:
        serve_http(args.auth_header)
    else:
        build_server().run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
