"""A local stand-in for the Anthropic Messages API, so the real ``anthropic`` SDK can be
tested by pointing its ``base_url`` at loopback: no mocks, no network.

It speaks the wire protocol of API version 2026-10-21 (what SDK 2.x sends):
``POST /v1/messages`` with ``"stream": true`` answered by Server-Sent Events —
``message_start``, ``ping``, ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``input_json_delta``) / ``content_block_stop``, ``message_delta`` (stop
reason and cumulative usage), ``message_stop`` — and errors as a status code with the body
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`` and
headers such as ``retry-after``. Like the real API it refuses a request without
credentials (401) and one with sampling parameters (400: ``temperature`` is gone).

A test queues what the next requests get, in order:

* ``message(text("Hel", "lo"), tool_use("toolu_1", "clock_now", {}), input_tokens=...)`` —
  a streamed reply (``stall=True`` keeps the response open after the content blocks;
  ``drop=True`` closes the connection there; ``complete=False`` ends the body cleanly but
  before ``message_stop``; ``error={...}`` sends an ``error`` event mid-stream);
* ``Error(429, "rate_limit_error", "...", headers={"retry-after": "1"})``;
* ``Hang()`` — send nothing, not even headers, until the client gives up.

Everything received is kept in ``received`` (headers and JSON body) for assertions.
``stalled`` / ``disconnected`` are set when a stalled stream is reached and when a client
closes a stream or a hang before it ended; ``wait(event)`` awaits one without blocking the
loop. ``serve_anthropic()`` runs the server on a free loopback port in a thread.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.serving import DroppedStream, FakeVendor, serve_fake

MODEL = "claude-sonnet-5-5"

Frame = tuple[str, dict[str, Any]]
"""One SSE event: its ``event:`` name and its ``data:`` JSON."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it (header names lower-case)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stream:
    """A streamed (SSE) reply: these frames, then the end of the response, a stall, or
    (``drop``) the connection closed without ending the chunked body."""

    frames: tuple[Frame, ...]
    stall: bool = False
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Error:
    """An error response in the API's format."""

    status: int
    error_type: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Hang:
    """No answer at all until the client disconnects (a client-side timeout)."""


Reply = Stream | Error | Hang


@dataclass(frozen=True, slots=True)
class Block:
    """A content block of a streamed message, as the frames that carry it."""

    start: dict[str, Any]
    deltas: tuple[dict[str, Any], ...]
    is_tool_use: bool = False


def text(*deltas: str) -> Block:
    """A text block streamed as these ``text_delta`` pieces."""
    return Block(
        {"type": "text", "text": ""},
        tuple({"type": "text_delta", "text": piece} for piece in deltas),
    )


def tool_use(call_id: str, name: str, arguments: Any, *, pieces: int = 3) -> Block:
    """A tool call whose input JSON arrives in ``pieces`` ``input_json_delta`` parts, after
    the empty first part the API sends. ``arguments`` should be an object; anything else is
    sent as given, as a misbehaving server might."""
    raw = json.dumps(arguments)
    size = max(1, -(-len(raw) // pieces))
    parts = ["", *(raw[i : i + size] for i in range(0, len(raw), size))]
    return Block(
        {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        tuple({"type": "input_json_delta", "partial_json": part} for part in parts),
        is_tool_use=True,
    )


_message_ids = count(1)


def message(
    *blocks: Block,
    stop_reason: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_read: int | None = None,
    cache_write: int | None = None,
    final_input: dict[str, int] | None = None,
    model: str = MODEL,
    stall: bool = False,
    complete: bool = True,
    drop: bool = False,
    error: dict[str, Any] | None = None,
) -> Stream:
    """A streamed assistant message. ``stop_reason`` defaults to ``tool_use`` when a tool is
    called, else ``end_turn``. ``message_start`` carries the input counts (cache fields only
    when given) and ``output_tokens: 1``; ``message_delta`` carries the cumulative
    ``output_tokens`` plus ``final_input`` (cumulative input counts, as the API may resend).
    ``error`` is sent as an ``error`` event after the blocks, in place of the ending;
    ``stall`` keeps the response open after the blocks, before any ending; ``drop`` closes
    the connection there instead."""
    start_usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": 1}
    if cache_write is not None:
        start_usage["cache_creation_input_tokens"] = cache_write
    if cache_read is not None:
        start_usage["cache_read_input_tokens"] = cache_read
    frames: list[Frame] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake{next(_message_ids):04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        frames.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block.start},
            )
        )
        frames.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in block.deltas
        )
        frames.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    if error is not None:
        frames.append(("error", {"type": "error", "error": error}))
        return Stream(tuple(frames))
    if stall or drop:
        return Stream(tuple(frames), stall=stall, drop=drop)
    if stop_reason is None:
        stop_reason = "tool_use" if any(b.is_tool_use for b in blocks) else "end_turn"
    frames.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {**(final_input or {}), "output_tokens": output_tokens},
            },
        )
    )
    if complete:
        frames.append(("message_stop", {"type": "message_stop"}))
    return Stream(tuple(frames))


def sse(frames: tuple[Frame, ...]) -> Iterator[str]:
    """The frames exactly as the API writes them: ``event:`` and ``data:`` lines, a blank line."""
    for name, data in frames:
        yield f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class FakeAnthropic(FakeVendor[Reply]):
    """The server's state: queued replies, received requests, and what clients did. Its
    ``url`` is the root: the SDK appends ``/v1/messages``."""

    def __init__(self) -> None:
        super().__init__()
        self._request_ids = count(1)

    def routes(self) -> list[Route]:
        return [Route("/v1/messages", self._messages, methods=["POST"])]

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        request_id = f"req_fake{next(self._request_ids):04d}"
        # The API's own checks come first and use up no queued reply.
        refusal: Reply | None = None
        sampling = sorted({"temperature", "top_p", "top_k"} & set(body))
        if "authorization" not in request.headers and "x-api-key" not in request.headers:
            refusal = Error(401, "authentication_error", "x-api-key header is required")
        elif sampling:
            refusal = Error(
                400, "invalid_request_error", f"{sampling[0]}: Extra inputs are not permitted"
            )
        reply = self.take(Received(request.url.path, dict(request.headers), body), refusal)
        if reply is None:
            reply = Error(500, "api_error", "fake server: no reply was queued for this request")
        if isinstance(reply, Error):
            error: dict[str, Any] = {"type": reply.error_type, "message": reply.message}
            if reply.error_code is not None:
                error["details"] = {"error_code": reply.error_code}
            return JSONResponse(
                {"type": "error", "error": error, "request_id": request_id},
                status_code=reply.status,
                headers={"request-id": request_id, **reply.headers},
            )
        if isinstance(reply, Hang):
            return self.hang()
        if reply.drop:
            return DroppedStream(list(sse(reply.frames)), b"text/event-stream; charset=utf-8")
        return StreamingResponse(
            self.watched(self._stream(reply)),
            media_type="text/event-stream",
            headers={"request-id": request_id, "cache-control": "no-cache"},
        )

    async def _stream(self, reply: Stream) -> AsyncIterator[str]:
        for frame in sse(reply.frames):
            yield frame
        if reply.stall:
            await self.stall()


def serve_anthropic() -> AbstractContextManager[FakeAnthropic]:
    """Run a ``FakeAnthropic`` with uvicorn on a free loopback port, in a thread."""
    return serve_fake(FakeAnthropic(), "fake-anthropic")
