"""A local stand-in for OpenAI's Chat Completions API (and so for any OpenAI-compatible
server), so the real ``openai`` SDK can be tested by pointing its ``base_url`` at loopback:
no mocks, no network.

It speaks the wire protocol the SDK speaks: ``POST /v1/chat/completions`` with
``"stream": true`` answered by Server-Sent Events that are ``data:`` lines only —
``data: {chat.completion.chunk}`` frames whose ``choices[0].delta`` carries the role, then
``content`` pieces or ``tool_calls`` pieces (``{"index", "id", "type", "function":
{"name", "arguments"}}`` first, then ``{"index", "function": {"arguments": piece}}``), a
chunk with the ``finish_reason``, a final chunk with ``choices: []`` and the ``usage``
(only when the request asked with ``stream_options.include_usage``; ``usage: null`` on
every other chunk then), and ``data: [DONE]``. Errors are a status code with the body
``{"error": {"message", "type", "param", "code"}}`` and headers such as ``retry-after``;
an error during a stream is a ``data: {"error": {...}}`` frame.

A test queues what the next requests get, in order:

* ``completion(text("Hel", "lo"), tool_call("call_1", "clock_now", {}), prompt_tokens=...)``
  — a streamed reply (``stall=True`` keeps the response open after the content;
  ``finish=False`` ends it before the finish chunk; ``usage=False`` sends no usage even if
  asked, as some servers do; ``error={...}`` sends an error frame after the content);
* ``Error(429, "Rate limit reached ...", "tokens", code="rate_limit_exceeded",
  headers={"retry-after": "1"})``;
* ``Raw(200, "{...}", "application/json")`` — any body at all;
* ``Hang()`` — send nothing, not even headers, until the client gives up.

With ``expected_key`` set, the server checks ``Authorization: Bearer <key>`` first, as
OpenAI does, and answers a wrong key with OpenAI's 401 (which quotes the wrong key,
masked) without using up a queued reply. Everything received is kept in ``received``
(headers and JSON body). ``stalled`` / ``disconnected`` are set when a stalled stream is
reached and when a client closes a stream or a hang before it ended; ``wait(event)``
awaits one without blocking the loop. ``serve_openai()`` runs the server on a free
loopback port in a thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.serving import DroppedStream, FakeVendor, serve_fake

MODEL = "gpt-5.5-mini"


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it (header names lower-case)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Part:
    """Content of a streamed reply: text pieces, or one tool call's deltas."""

    deltas: tuple[dict[str, Any], ...]
    is_tool_call: bool = False


def text(*pieces: str) -> Part:
    """Text streamed as these ``delta.content`` pieces."""
    return Part(tuple({"content": piece} for piece in pieces))


def tool_call(call_id: str, name: str, arguments: dict[str, Any], *, pieces: int = 3) -> Part:
    """A tool call: the id and name with empty arguments first, as OpenAI sends them, then
    the arguments JSON in ``pieces`` parts. The ``index`` is filled in by ``completion``."""
    raw = json.dumps(arguments)
    size = max(1, -(-len(raw) // pieces))
    first = {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    rest = ({"function": {"arguments": raw[i : i + size]}} for i in range(0, len(raw), size))
    return Part((first, *rest), is_tool_call=True)


@dataclass(frozen=True, slots=True)
class Completion:
    """A streamed reply: chunks (without ``usage``, added per request), then the usage
    chunk if asked for and ``usage`` is given, then ``[DONE]``; or a stall, or an end."""

    chunks: tuple[dict[str, Any], ...]
    usage: dict[str, Any] | None
    stall: bool = False
    done: bool = True
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Error:
    """An error response in OpenAI's format."""

    status: int
    message: str
    error_type: str
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Raw:
    """Any status and body (a proxy's HTML page, a server that ignores ``stream``)."""

    status: int
    body: str
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Hang:
    """No answer at all until the client disconnects (a client-side timeout)."""


Reply = Completion | Error | Raw | Hang

_completion_ids = count(1)


def completion(
    *parts: Part,
    finish_reason: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    usage: bool = True,
    model: str = MODEL,
    stall: bool = False,
    finish: bool = True,
    drop: bool = False,
    error: dict[str, Any] | None = None,
) -> Completion:
    """A streamed assistant message. ``finish_reason`` defaults to ``tool_calls`` when a
    tool is called, else ``stop``. Tool calls are indexed 0, 1, ... in order. ``error`` is
    sent as an error frame after the content, in place of the ending; ``stall`` keeps the
    response open after the content; ``finish=False`` ends the body after the content, with
    no finish chunk and no ``[DONE]`` (a connection that dropped between frames); ``drop``
    closes the connection after the content without ending the chunked body."""
    completion_id = f"chatcmpl-fake{next(_completion_ids):04d}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    tool_index = 0
    for part in parts:
        for delta in part.deltas:
            if part.is_tool_call:
                delta = {"tool_calls": [{"index": tool_index, **delta}]}
            chunks.append(chunk(delta))
        tool_index += part.is_tool_call
    if error is not None:
        chunks.append({"error": error})
        return Completion(tuple(chunks), None, done=False)
    if stall or drop or not finish:
        return Completion(tuple(chunks), None, stall=stall, done=False, drop=drop)
    if finish_reason is None:
        finish_reason = "tool_calls" if tool_index else "stop"
    chunks.append(chunk({}, finish_reason))
    totals: dict[str, Any] | None = None
    if usage:
        details: dict[str, int] = {"cached_tokens": cached_tokens or 0, "audio_tokens": 0}
        if cache_write_tokens is not None:
            details["cache_write_tokens"] = cache_write_tokens
        totals = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": details,
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        }
    return Completion(tuple(chunks), totals)


def sse(data: Mapping[str, Any] | str) -> str:
    """One frame exactly as the API writes it: a ``data:`` line and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n"


def masked(key: str) -> str:
    """A key as OpenAI quotes it back in a 401: the start and the last four characters."""
    return f"{key[:8]}{'*' * max(4, len(key) - 12)}{key[-4:]}"


class FakeOpenAI(FakeVendor[Reply]):
    """The server's state: queued replies, received requests, the key it wants (none
    checked when ``None``), and what clients did. Its ``url`` ends in ``/v1``: the SDK
    appends ``/chat/completions``."""

    url_path = "/v1"

    def __init__(self) -> None:
        super().__init__()
        self._request_ids = count(1)
        self.expected_key: str | None = None

    def reset(self) -> None:
        """Forget queued replies, received requests, the key and client events."""
        super().reset()
        self.expected_key = None

    def routes(self) -> list[Route]:
        return [Route("/v1/chat/completions", self._completions, methods=["POST"])]

    def _check_key(self, request: Request) -> Error | None:
        """OpenAI's own check of the key, before anything else."""
        if self.expected_key is None:
            return None
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return Error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        given = authorization.removeprefix("Bearer ")
        if given != self.expected_key:
            return Error(
                401,
                f"Incorrect API key provided: {masked(given)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        return None

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        request_id = f"req_fake{next(self._request_ids):04d}"
        received = Received(request.url.path, dict(request.headers), body)
        reply = self.take(received, self._check_key(request))
        if reply is None:
            reply = Error(500, "fake server: no reply was queued for this request", "server_error")
        if isinstance(reply, Error):
            return JSONResponse(
                {
                    "error": {
                        "message": reply.message,
                        "type": reply.error_type,
                        "param": reply.param,
                        "code": reply.code,
                    }
                },
                status_code=reply.status,
                headers={"x-request-id": request_id, **reply.headers},
            )
        if isinstance(reply, Raw):
            return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
        if isinstance(reply, Hang):
            return self.hang()
        if reply.drop:
            return DroppedStream([sse(chunk) for chunk in reply.chunks])
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        return StreamingResponse(
            self.watched(self._stream(reply, include_usage)),
            media_type="text/event-stream",
            headers={"x-request-id": request_id, "cache-control": "no-cache"},
        )

    async def _stream(self, reply: Completion, include_usage: bool) -> AsyncIterator[str]:
        for chunk in reply.chunks:
            if include_usage and "choices" in chunk:
                chunk = {**chunk, "usage": None}
            yield sse(chunk)
        if reply.stall:
            await self.stall()
        if include_usage and reply.usage is not None:
            yield sse(reply.usage)
        if reply.done:
            yield sse("[DONE]")


def serve_openai() -> AbstractContextManager[FakeOpenAI]:
    """Run a ``FakeOpenAI`` with uvicorn on a free loopback port, in a thread."""
    return serve_fake(FakeOpenAI(), "fake-openai")
