"""A local connection provider: each OAuth'd app's tools served over MCP, as a real
provider (Pipedream Connect and the like) serves them, so integration sources are tested
against the real ``mcp`` client with no network.

Each app is a real MCP server (``MCPServer`` of the ``mcp`` SDK) at ``/mcp/<app_slug>``
over streamable HTTP:

* ``slack``: ``post_message(channel, text)``, ``list_channels()``
* ``github``: ``create_issue(repo, title)``

Every request must carry ``Authorization: Bearer <token>`` with a token the provider
issued for that app (``issue(app_slug)``); anything else gets 401, as an app answers a
revoked or expired token. ``revoke(token)`` withdraws one upstream. Tool calls are kept in
``calls`` and the ``Authorization`` values seen in ``authorizations``.

``serve_provider()`` runs it with uvicorn on a free loopback port in a thread; the socket
listens before the thread starts and the lifespan (which starts every app's MCP session
manager) says when it serves, so readiness is an event with a bound, never a sleep.
"""

from __future__ import annotations

import hmac
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

APP_TOOLS: dict[str, tuple[str, ...]] = {
    "github": ("create_issue",),
    "slack": ("list_channels", "post_message"),
}
"""The apps the provider serves and their tools' names, sorted."""


@dataclass
class FakeProvider:
    """The provider's state: issued tokens, and what it was asked."""

    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The provider's MCP base URL: apps are at ``<url>/<app_slug>``."""
        return f"http://127.0.0.1:{self.port}/mcp"

    def issue(self, app_slug: str) -> str:
        """A new access token for ``app_slug``, as an OAuth flow would hand out."""
        token = f"xoxb-{app_slug}-{secrets.token_hex(12)}"
        self.tokens[token] = app_slug
        return token

    def revoke(self, token: str) -> None:
        """Withdraw ``token`` upstream: requests with it get 401 from now on."""
        self.tokens.pop(token, None)

    def _servers(self) -> dict[str, MCPServer]:
        slack: MCPServer = MCPServer("fake-slack", version="1.0", log_level="WARNING")

        @slack.tool()
        def post_message(channel: str, text: str) -> dict[str, Any]:
            """Post a message to a Slack channel."""
            self.calls.append(("slack", "post_message", {"channel": channel, "text": text}))
            return {"ok": True, "channel": channel, "ts": "1700000000.000100"}

        @slack.tool()
        def list_channels() -> list[str]:
            """The workspace's public channels."""
            self.calls.append(("slack", "list_channels", {}))
            return ["#general", "#support"]

        github: MCPServer = MCPServer("fake-github", version="1.0", log_level="WARNING")

        @github.tool()
        def create_issue(repo: str, title: str) -> dict[str, Any]:
            """Open an issue in a repository."""
            self.calls.append(("github", "create_issue", {"repo": repo, "title": title}))
            return {"number": 1, "repo": repo, "title": title}

        return {"slack": slack, "github": github}

    def app(self, ready: threading.Event) -> ASGIApp:
        """The ASGI app: every app's MCP endpoint behind the provider's token check."""
        servers = self._servers()
        routes: list[BaseRoute] = []
        for slug, server in servers.items():
            routes.extend(server.streamable_http_app(streamable_http_path=f"/mcp/{slug}").routes)

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with AsyncExitStack() as stack:
                for server in servers.values():
                    await stack.enter_async_context(server.session_manager.run())
                ready.set()
                yield

        return _RequireIssuedToken(Starlette(routes=routes, lifespan=lifespan), self)


class _RequireIssuedToken:
    """401 unless the bearer token was issued for the app the path names."""

    def __init__(self, app: ASGIApp, provider: FakeProvider) -> None:
        self.app = app
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            self.provider.authorizations.append(given)
            app_slug = str(scope["path"]).removeprefix("/mcp/").strip("/")
            if not self._allowed(given, app_slug):
                refusal = JSONResponse(
                    {"error": "invalid_token"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, authorization: str, app_slug: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        issued_for = next(
            (app for known, app in list(self.provider.tokens.items()) if _same(known, token)),
            None,
        )
        return issued_for == app_slug


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@contextmanager
def serve_provider(startup_timeout_s: float = 10.0) -> Iterator[FakeProvider]:
    """Run a ``FakeProvider`` on a free loopback port for the ``with`` body."""
    provider = FakeProvider()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    provider.port = sock.getsockname()[1]
    ready = threading.Event()
    config = uvicorn.Config(
        provider.app(ready),
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
    )
    thread.start()
    try:
        if not ready.wait(startup_timeout_s):
            raise RuntimeError(f"the fake provider did not start within {startup_timeout_s:g} s")
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


__all__ = ["APP_TOOLS", "FakeProvider", "serve_provider"]
