"""A lost connection is classified by what had arrived, the same way on every vendor.

Each backend streams from its fake server (real wire format, the official SDK); the server
cuts the stream right after the first text delta, or no server answers at all. What the
person reads must follow from what was received: "dropped mid-answer" once part of the
answer arrived, "could not reach" before any byte. Both are retryable ``connection``
errors. Nothing here depends on how an SDK nests its exceptions: only on Cairn's words.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from cairn.domain.agents import ModelSettings
from cairn.errors import ModelError
from cairn.models.anthropic import AnthropicBackend
from cairn.models.base import (
    EnvCredentials,
    Message,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    TextDelta,
)
from cairn.models.google import GoogleBackend
from cairn.models.openai import OpenAIBackend
from tests.fakes import anthropic_server, google_server, openai_server

KEY = "test-key-5d0c1e2f3a4b"
FIRST_DELTA = "Half an ans"


@dataclass(frozen=True)
class Vendor:
    """How to serve one vendor's fake, queue a cut stream, and point its backend at a URL."""

    name: str
    serve: Callable[[], AbstractContextManager[Any]]
    queue_cut_stream: Callable[[Any], None]
    base_url: Callable[[str], str]
    backend: Callable[[ModelSettings, EnvCredentials], ModelBackend]
    model: str


VENDORS = [
    Vendor(
        "anthropic",
        anthropic_server.serve_anthropic,
        lambda fake: fake.queue(
            anthropic_server.message(anthropic_server.text(FIRST_DELTA), drop=True)
        ),
        lambda root: root,
        AnthropicBackend,
        anthropic_server.MODEL,
    ),
    Vendor(
        "openai",
        openai_server.serve_openai,
        lambda fake: fake.queue(
            openai_server.completion(openai_server.text(FIRST_DELTA), drop=True)
        ),
        lambda root: f"{root}/v1",
        OpenAIBackend,
        openai_server.MODEL,
    ),
    Vendor(
        "google",
        google_server.serve_google,
        lambda fake: fake.queue(google_server.answer(FIRST_DELTA, drop=True)),
        lambda root: root,
        GoogleBackend,
        google_server.MODEL,
    ),
]


async def _fail(vendor: Vendor, root: str) -> tuple[list[ModelEvent], ModelError]:
    settings = ModelSettings(
        backend=vendor.name, model=vendor.model, base_url=vendor.base_url(root)
    )
    model = vendor.backend(settings, EnvCredentials({vendor.name: KEY}))
    return await _stream_until_failure(model, settings)


async def _stream_until_failure(
    model: ModelBackend, settings: ModelSettings
) -> tuple[list[ModelEvent], ModelError]:
    received: list[ModelEvent] = []
    request = ModelRequest(
        system="Be brief.",
        messages=[Message("user", "What is the order status?")],
        tools=[],
        settings=settings,
        turn=0,
    )
    with pytest.raises(ModelError) as caught:
        async for event in model.stream(request):
            received.append(event)
    return received, caught.value


@contextmanager
def _closing_listener() -> Iterator[int]:
    """A port that accepts connections and closes each one before sending a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def _free_port() -> int:
    with socket.socket() as probe:  # free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_a_stream_cut_after_the_first_text_delta_says_the_answer_was_cut(
    vendor: Vendor,
) -> None:
    with vendor.serve() as fake:
        vendor.queue_cut_stream(fake)
        received, error = await _fail(vendor, fake.url.removesuffix("/v1"))
    assert [e.text for e in received if isinstance(e, TextDelta)] == [FIRST_DELTA]
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"the connection to {vendor.name} at ")
    assert "dropped mid-answer, after part of the answer had arrived" in str(error)
    assert "could not reach" not in str(error)
    assert KEY not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_a_refused_connection_says_the_server_could_not_be_reached(vendor: Vendor) -> None:
    root = f"http://127.0.0.1:{_free_port()}"
    received, error = await _fail(vendor, root)
    assert received == []
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach {vendor.name} at {vendor.base_url(root)} (")
    assert "mid-answer" not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_a_connection_closed_before_any_byte_says_the_server_could_not_be_reached(
    vendor: Vendor,
) -> None:
    with _closing_listener() as port:
        root = f"http://127.0.0.1:{port}"
        received, error = await _fail(vendor, root)
    assert received == []
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach {vendor.name} at ")
    assert "mid-answer" not in str(error)
