"""Serving a fake vendor app with uvicorn on a free loopback port, in a thread, and the
state every fake vendor server keeps (``FakeVendor``).

The socket is bound and listening before the thread starts, so the port is known and
connections queue from the start; the app's lifespan sets ``ready`` when it is serving."""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

ReplyT = TypeVar("ReplyT")
FakeT = TypeVar("FakeT", bound="FakeVendor[Any]")


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


class Hang(Response):
    """Sends nothing; returns when the client disconnects, and says so."""

    def __init__(self, disconnected: threading.Event) -> None:
        super().__init__()
        self._disconnected = disconnected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._disconnected.set()


class FakeVendor(Generic[ReplyT]):
    """The state of a fake vendor server: queued replies, received requests, and what
    clients did (a stream they stalled on, a response they hung up on). Subclasses give
    the routes and turn a reply into the vendor's wire format."""

    url_path = ""
    """Appended to the server's root to give the SDK its base URL."""

    def __init__(self) -> None:
        self._replies: deque[ReplyT] = deque()
        self._lock = threading.Lock()
        self.received: list[Any] = []
        self.stalled = threading.Event()
        self.disconnected = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to give the SDK."""
        return f"http://127.0.0.1:{self.port}{self.url_path}"

    def queue(self, *replies: ReplyT) -> None:
        """Answer the next requests with these, in order."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Forget queued replies, received requests and client events (between tests)."""
        with self._lock:
            self._replies.clear()
            self.received.clear()
        self.stalled.clear()
        self.disconnected.clear()

    @property
    def pending(self) -> int:
        """Replies queued and not yet used."""
        with self._lock:
            return len(self._replies)

    async def wait(self, event: threading.Event, timeout_s: float = 5.0) -> bool:
        """Wait for a server-side event from async test code without blocking the loop."""
        return await anyio.to_thread.run_sync(event.wait, timeout_s)

    def take(self, received: Any, refusal: ReplyT | None) -> ReplyT | None:
        """Record a request; the API's own ``refusal`` (a missing key...) if any, which uses
        up no queued reply, else the next queued reply (``None`` when there is none)."""
        with self._lock:
            self.received.append(received)
            if refusal is None and self._replies:
                return self._replies.popleft()
        return refusal

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def app(self, ready: threading.Event) -> Starlette:
        """The ASGI app; ``ready`` is set once it is serving."""

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            ready.set()
            yield

        return Starlette(routes=self.routes(), lifespan=lifespan)

    def hang(self) -> Hang:
        return Hang(self.disconnected)

    async def stall(self) -> None:
        """Keep a stream open, saying so, until the client goes."""
        self.stalled.set()
        await anyio.sleep_forever()

    async def watched(self, body: AsyncIterator[str]) -> AsyncIterator[str]:
        """A streamed body that notes when the client disconnects (Starlette cancels it)."""
        try:
            async for frame in body:
                yield frame
        except anyio.get_cancelled_exc_class():
            self.disconnected.set()
            raise


@contextmanager
def serve_fake(fake: FakeT, name: str) -> Iterator[FakeT]:
    """Run ``fake`` with uvicorn on a free loopback port, in a thread."""
    with serve_in_thread(fake.app, name) as port:
        fake.port = port
        yield fake
