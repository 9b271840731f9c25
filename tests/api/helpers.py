"""Shared pieces of the API tests: a real uvicorn server on a loopback port, scripts that keep
runs live for a while, an independent SSE reader and bounded waits.

``LiveServer`` runs ``serve_app`` under ``uvicorn.Server`` in a background thread (its own
event loop), on a socket the test binds itself, so a restart can take the very same port.
Readiness is ``GET /healthz`` answering, polled under a deadline.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import uvicorn

from cairn.cli.serve import serve_app
from cairn.services.app import App

T = TypeVar("T")

READY_WITHIN_S = 10.0
STOP_WITHIN_S = 20.0
FINAL = ("succeeded", "failed", "cancelled")


def bind_loopback(port: int = 0) -> socket.socket:
    """A TCP socket bound on 127.0.0.1 (``port`` 0: any free one), reusable after a restart."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says so, and without it every response waits ~40 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class LiveServer:
    """``serve_app(app, **options)`` (the API and the dashboard, as ``cairn serve`` runs
    them) served by uvicorn on 127.0.0.1 in a thread.

    ``graceful_timeout_s`` is how long a stop waits for open requests (live streams) before
    cutting them, as ``cairn serve`` does; the runs then get ``shutdown_grace_s``."""

    def __init__(
        self,
        app: App,
        *,
        port: int = 0,
        graceful_timeout_s: int | None = 2,
        **options: Any,
    ) -> None:
        self.app = app
        self.api = serve_app(app, **options)
        self._sock = bind_loopback(port)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.api,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=graceful_timeout_s,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        """Start serving and return once ``/healthz`` answers (bounded)."""
        self._thread.start()
        deadline = time.monotonic() + READY_WITHIN_S
        with httpx.Client(base_url=self.url, timeout=1.0) as probe:
            while True:
                if not self._thread.is_alive():
                    raise RuntimeError(f"the server on {self.url} died while starting")
                try:
                    if probe.get("/healthz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server on {self.url} did not come up")
                time.sleep(0.02)  # polling interval of a bounded readiness check

    def stop(self) -> None:
        """Graceful shutdown (what SIGTERM does to ``cairn serve``), bounded."""
        self.server.should_exit = True
        self._thread.join(STOP_WITHIN_S)
        if self._thread.is_alive():
            raise TimeoutError(f"the server on {self.url} did not stop in {STOP_WITHIN_S} s")
        self._sock.close()

    @property
    def running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread.is_alive()


class Bounded(Iterator[T]):
    """Iterates ``items`` (a blocking SDK stream) on a feeder thread, so that waiting for the
    next item fails the test after ``within_s`` instead of hanging it."""

    _END = object()

    def __init__(self, items: Iterable[T], within_s: float = 10.0) -> None:
        self.within_s = within_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._items = items
        threading.Thread(target=self._feed, daemon=True).start()

    def _feed(self) -> None:
        try:
            for item in self._items:
                self._queue.put(item)
        except BaseException as exc:  # handed to the test's thread
            self._queue.put(_Raised(exc))
        else:
            self._queue.put(self._END)

    def __next__(self) -> T:
        try:
            item = self._queue.get(timeout=self.within_s)
        except queue.Empty:
            raise TimeoutError(f"nothing came within {self.within_s} s") from None
        if item is self._END:
            self._queue.put(item)
            raise StopIteration
        if isinstance(item, _Raised):
            raise item.error
        return cast(T, item)


@dataclass
class _Raised:
    error: BaseException


def eventually(check: Callable[[], T | None], *, within_s: float = 10.0, what: str = "") -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``, bounded."""
    deadline = time.monotonic() + within_s
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {within_s} s: {what or check}")
        time.sleep(0.02)


# --- scripts ------------------------------------------------------------------------------


def quick_settings(text: str = "Done: {{event}}") -> dict[str, Any]:
    """A scripted agent that answers at once."""
    return {"backend": "scripted", "script": {"turns": [{"text": text}]}, "timeout_s": 30}


def slow_settings(turns: int = 4, delay_s: float = 0.25, timeout_s: float = 30) -> dict[str, Any]:
    """A scripted agent whose run lasts about ``turns * delay_s``: each turn waits, says a few
    words and calls ``clock_now``, so events keep coming while the run is live."""
    script = [
        {
            "delay_s": delay_s,
            "text": f"Step {index} of the long job, looking at the clock. ",
            "tool_calls": [{"name": "clock_now", "arguments": {}}],
        }
        for index in range(1, turns + 1)
    ]
    script.append({"text": "All steps done for {{event.title}}."})
    return {
        "backend": "scripted",
        "script": {"turns": script},
        "max_turns": turns + 2,
        "timeout_s": timeout_s,
    }


def hanging_settings(seconds: float = 30.0) -> dict[str, Any]:
    """A scripted agent that says something, then waits ``seconds`` (for cancel/shutdown)."""
    return {
        "backend": "scripted",
        "script": {
            "turns": [
                {
                    "text": "Starting. ",
                    "tool_calls": [{"name": "clock_now", "arguments": {}}],
                },
                {"delay_s": seconds, "text": "Finally done."},
            ]
        },
        "timeout_s": seconds + 30,
    }


# --- SSE, read independently of the SDK's parser --------------------------------------------


@dataclass
class Frame:
    """One server-sent event as it came over the wire."""

    event: str
    data: Any
    id: str | None = None


def sse_frames(lines: Iterator[str]) -> Iterator[Frame]:
    """Frames of a ``text/event-stream`` (comments skipped)."""
    event, frame_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Frame(event, json.loads("\n".join(data)), frame_id)
            event, data, frame_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            frame_id = value


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body of an error response, checked for shape."""
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.status_code,
        response.headers.get("content-type"),
        response.text[:300],
    )
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["error"], str) and body["error"]
    return body
