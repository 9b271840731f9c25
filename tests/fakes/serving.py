"""Serving a fake vendor app with uvicorn on a free loopback port, in a thread.

The socket is bound and listening before the thread starts, so the port is known and
connections queue from the start; the app's lifespan sets ``ready`` when it is serving."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


@contextmanager
def serve_in_thread(make_app: Callable[[threading.Event], Any], name: str) -> Iterator[int]:
    """Run ``make_app(ready)`` until the ``with`` body ends; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = int(sock.getsockname()[1])
    ready = threading.Event()
    config = uvicorn.Config(
        make_app(ready),
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError(f"the {name} server did not start within 10 s")
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class DroppedStream(Response):
    """Starts a streamed answer, sends ``frames`` and returns without finishing the body:
    uvicorn then closes the connection mid-answer, as a proxy or a crashed server would."""

    def __init__(self, frames: list[str], content_type: bytes = b"text/event-stream") -> None:
        super().__init__()
        self._frames = frames
        self._content_type = content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No content-length: the body is chunked, so stopping short is a protocol error.
        headers = [(b"content-type", self._content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for frame in self._frames:
            await send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
