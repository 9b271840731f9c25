"""Open streams end when the key or session behind them is revoked.

A request is authenticated once, when it starts; a live stream may then stay open for
hours. ``Revocable`` wraps a streaming response and re-checks its principal every
``CHECK_S`` seconds (one indexed lookup), in this process or any other that revoked it:
the stream then ends with a ``revoked`` event, within a second of the revocation.

It also stops writing as soon as the client has gone: a stream that keeps sending into a
closed socket is what made asyncio log ``socket.send() raised exception.`` by the thousand.
"""

from __future__ import annotations

import anyio
from sse_starlette import ServerSentEvent
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.domain.keys import Principal
from cairn.services.app import App

CHECK_S = 0.4
"""How often an open stream re-checks its key or session (well under a second)."""
REVOKED_FRAME = ServerSentEvent(
    '{"detail": "the key or session was revoked"}', event="revoked", sep="\n"
).encode()


class Revocable(Response):
    """``inner`` (an ASGI response) for as long as ``principal`` holds."""

    def __init__(self, inner: ASGIApp, app: App, principal: Principal) -> None:
        super().__init__()
        self.inner = inner
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from cairn.services.sessions import principal_is_live

        state = {"started": False, "ended": False, "gone": False, "revoked": False}

        async def guarded_send(message: Message) -> None:
            if state["gone"] or state["ended"]:
                return  # the client left, or the stream was closed: never write to a dead socket
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["ended"] = True
            try:
                await send(message)
            except OSError:
                state["gone"] = True
                raise

        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while True:
                    await anyio.sleep(CHECK_S)
                    live = await anyio.to_thread.run_sync(
                        principal_is_live, self.app, self.principal
                    )
                    if not live:
                        state["revoked"] = True
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch)
            await self.inner(scope, receive, guarded_send)
            group.cancel_scope.cancel()
        if state["revoked"] and state["started"] and not state["ended"] and not state["gone"]:
            state["ended"] = True
            await send({"type": "http.response.body", "body": REVOKED_FRAME, "more_body": False})
