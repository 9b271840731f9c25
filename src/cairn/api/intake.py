"""Every API request body is checked before a route sees it: size, nesting, NaN.

An ASGI middleware, so that no route can forget it: a body over ``MAX_REQUEST_BYTES``
answers 413 (from ``Content-Length`` before reading, or as soon as the stream passes it);
JSON nested deeper than ``MAX_DEPTH`` or holding ``NaN``/``Infinity`` answers 400, each
naming the limit. A call to ``/api/`` without any credentials answers 401 first, whatever
its body: authentication is checked before the input is judged. The MCP endpoint
(``/mcp``, JSON-RPC) is held to the same JSON limits as ``/api/``. Webhook deliveries
(``/hooks/``) are left to their route, which records every refusal (``cairn.api.hooks``).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.domain.limits import MAX_REQUEST_BYTES, loads
from cairn.errors import InvalidJSON

MCP_PATH = "/mcp"
"""Where ``cairn serve`` mounts the MCP server (``cairn.mcpserver.http.PATH``)."""
FORM_LIMIT_BYTES = 64 * 1024
"""The dashboard's forms (login, test fire) are small."""


async def _answer(send: Send, status: int, title: str, detail: str, error: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "error": error}
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", b"%d" % len(body)),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="cairn"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class IntakeLimits:
    """Wraps the API application (see the module docstring)."""

    def __init__(self, app: ASGIApp, cookie_name: str) -> None:
        self.app = app
        self.cookie = cookie_name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/hooks/"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope.get("headers") or [])
        api = path.startswith("/api/")
        if (
            api
            and b"authorization" not in headers
            and self.cookie + b"=" not in headers.get(b"cookie", b"")
        ):
            await _answer(
                send,
                401,
                "Unauthorized",
                "missing API key: send 'Authorization: Bearer <key>'",
                "Unauthorized",
            )
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        json_body = api or path == MCP_PATH or path.startswith(MCP_PATH + "/")
        limit = MAX_REQUEST_BYTES if json_body else FORM_LIMIT_BYTES
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, int(declared), limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, size, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_body and body.strip():
            try:
                loads(body, "the request body")
            except InvalidJSON as refused:
                if "malformed JSON" not in str(refused):  # plain syntax errors: the route's
                    await _answer(send, 400, "Bad request", str(refused), "InvalidJSON")
                    return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, size: int, limit: int) -> None:
    await _answer(
        send,
        413,
        "Payload too large",
        f"the request body is over the {limit} byte limit ({size} bytes or more)",
        "PayloadTooLarge",
    )
