"""A local stand-in for the Gemini API, so the real ``google-genai`` SDK can be tested by
pointing its ``base_url`` at loopback: no mocks, no network.

It speaks the REST protocol the SDK uses for ``client.aio.models.generate_content_stream``:
``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` with the key in the
``x-goog-api-key`` header, answered by Server-Sent Events whose every frame is
``data: {GenerateContentResponse}`` followed by a blank line (CRLF-terminated, as the API
writes them). As the API does, each chunk carries the *cumulative* ``usageMetadata`` so far,
function calls arrive whole (``functionCall`` parts with ``args`` as an object, possibly a
``thoughtSignature``), and the last chunk carries the ``finishReason`` (``STOP`` also when the
model called functions). Errors are a status code with the Google error body
``{"error": {"code", "message", "status", "details"}}``, or (mid-stream) such a body as an
SSE frame. Like the API, a request without a key is refused (403 ``PERMISSION_DENIED``),
and so is a method other than ``streamGenerateContent``.

A test queues what the next requests get, in order:

* ``answer("Hel", "lo", call("clock_now", {}), prompt_tokens=...)`` — a streamed reply, one
  chunk per piece (``stall=True`` keeps the response open after the chunks; ``drop=True``
  closes the connection there; ``finish_reason=None`` ends the body cleanly without one;
  ``error={...}`` sends an error frame after the chunks);
* ``Error(429, "RESOURCE_EXHAUSTED", "...", details=(retry_info("7s"),))`` (``html=...``
  sends a page instead, as a proxy in front of the API might);
* ``Hang()`` — send nothing, not even headers, until the client gives up.

Everything received is kept in ``received`` (path, query, headers and JSON body).
``stalled`` / ``disconnected`` are set when a stalled stream is reached and when a client
closes a stream or a hang before it ended; ``wait(event)`` awaits one without blocking the
loop. ``serve_google()`` runs the server on a free loopback port in a thread.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.serving import DroppedStream, FakeVendor, serve_fake

MODEL = "gemini-3.5-flash"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it (header names lower-case)."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stream:
    """A streamed (SSE) reply: these chunks, then the end of the response, a stall, or
    (``drop``) the connection closed without ending the chunked body."""

    chunks: tuple[dict[str, Any], ...]
    stall: bool = False
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Error:
    """An error response in Google's format; ``status`` defaults from the HTTP code."""

    code: int
    status: str | None = None
    message: str = "error"
    headers: Mapping[str, str] = field(default_factory=dict)
    details: tuple[dict[str, Any], ...] = ()
    html: str | None = None
    """Sent instead of the JSON body, as a proxy in front of the API would."""

    def body(self) -> dict[str, Any]:
        """The JSON body the API sends."""
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": self.status or STATUS_NAMES.get(self.code, "UNKNOWN"),
        }
        if self.details:
            error["details"] = list(self.details)
        return {"error": error}


@dataclass(frozen=True, slots=True)
class Hang:
    """No answer at all until the client disconnects (a client-side timeout)."""


Reply = Stream | Error | Hang


def retry_info(delay: str) -> dict[str, Any]:
    """The ``RetryInfo`` detail a 429 carries, e.g. ``retry_info("7s")``."""
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def error_info(reason: str) -> dict[str, Any]:
    """The ``ErrorInfo`` detail, e.g. ``error_info("API_KEY_INVALID")`` for a bad key."""
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def call(
    name: str, args: Any = None, *, call_id: str | None = None, signature: bytes | None = None
) -> dict[str, Any]:
    """A ``functionCall`` part. The Gemini API usually sends no ``id``; ``args`` is left out
    when ``None`` (a function without parameters), as the API does."""
    function_call: dict[str, Any] = {"name": name}
    if args is not None:
        function_call["args"] = args
    if call_id is not None:
        function_call["id"] = call_id
    part: dict[str, Any] = {"functionCall": function_call}
    if signature is not None:
        part["thoughtSignature"] = base64.b64encode(signature).decode()
    return part


def thought(text: str) -> dict[str, Any]:
    """A thought-summary part (``thought: true``): reasoning, not the answer."""
    return {"text": text, "thought": True}


_response_ids = count(1)


def answer(
    *pieces: str | dict[str, Any],
    finish_reason: str | None = "STOP",
    prompt_tokens: int = 10,
    output_tokens: int = 5,
    cached_tokens: int | None = None,
    thoughts_tokens: int | None = None,
    model_version: str = MODEL,
    stall: bool = False,
    drop: bool = False,
    error: dict[str, Any] | None = None,
    prompt_feedback: dict[str, Any] | None = None,
) -> Stream:
    """A streamed model answer, one chunk per piece (a string is a text part, a dict a part
    as given). Every chunk carries ``usageMetadata`` as the API does: the prompt counts and
    the output counted so far, growing to ``output_tokens`` on the last chunk, which also
    carries ``finish_reason``. ``error`` is an error body sent as a frame after the chunks,
    in place of the ending; ``stall`` keeps the response open after the chunks, ``drop``
    closes the connection there. ``prompt_feedback`` (a blocked prompt) is sent in a chunk
    of its own with no candidates."""
    response_id = f"fake-response-{next(_response_ids):04d}"
    chunks: list[dict[str, Any]] = []
    total = len(pieces)
    ending = not (stall or drop or error is not None)
    for index, piece in enumerate(pieces, start=1):
        part = {"text": piece} if isinstance(piece, str) else piece
        candidate: dict[str, Any] = {
            "content": {"parts": [part], "role": "model"},
            "index": 0,
        }
        last = index == total
        if last and ending and finish_reason is not None:
            candidate["finishReason"] = finish_reason
        so_far = output_tokens if last and ending else max(1, output_tokens * index // (total + 1))
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": _usage(
                    prompt_tokens,
                    so_far,
                    cached_tokens,
                    thoughts_tokens if last and ending else None,
                ),
                "modelVersion": model_version,
                "responseId": response_id,
            }
        )
    if prompt_feedback is not None:
        chunks.append(
            {
                "promptFeedback": prompt_feedback,
                "usageMetadata": _usage(prompt_tokens, 0, cached_tokens, None),
                "modelVersion": model_version,
                "responseId": response_id,
            }
        )
    elif not pieces and ending and finish_reason is not None:
        chunks.append(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": ""}], "role": "model"},
                        "finishReason": finish_reason,
                        "index": 0,
                    }
                ],
                "usageMetadata": _usage(prompt_tokens, output_tokens, cached_tokens, None),
                "modelVersion": model_version,
                "responseId": response_id,
            }
        )
    if error is not None:
        chunks.append(error)
    return Stream(tuple(chunks), stall=stall, drop=drop)


def _usage(
    prompt: int, candidates: int, cached: int | None, thoughts: int | None
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + (thoughts or 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached is not None:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def sse(chunks: tuple[dict[str, Any], ...]) -> Iterator[str]:
    """The chunks exactly as the API writes them: a ``data:`` line and a blank line, CRLF."""
    for chunk in chunks:
        yield f"data: {json.dumps(chunk, separators=(',', ':'))}\r\n\r\n"


class FakeGemini(FakeVendor[Reply]):
    """The server's state: queued replies, received requests, and what clients did. Its
    ``url`` is the root: the SDK appends ``/v1beta/models/...``."""

    def routes(self) -> list[Route]:
        return [Route("/{version}/models/{target}", self._models, methods=["POST"])]

    async def _models(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        target = request.path_params["target"]
        method = target.rpartition(":")[2] if ":" in target else ""
        # The API's own checks come first and use up no queued reply.
        refusal: Reply | None = None
        if "x-goog-api-key" not in request.headers and "key" not in request.query_params:
            refusal = Error(
                403,
                message="Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        elif method != "streamGenerateContent":
            refusal = Error(404, message=f"Method not found: {method or target}")
        received = Received(
            request.url.path, dict(request.query_params), dict(request.headers), body
        )
        reply = self.take(received, refusal)
        if reply is None:
            reply = Error(500, message="fake server: no reply was queued for this request")
        if isinstance(reply, Error) and reply.html is not None:
            return HTMLResponse(reply.html, status_code=reply.code, headers=dict(reply.headers))
        if isinstance(reply, Error):
            return JSONResponse(reply.body(), status_code=reply.code, headers=dict(reply.headers))
        if isinstance(reply, Hang):
            return self.hang()
        if reply.drop:
            return DroppedStream(list(sse(reply.chunks)), b"text/event-stream")
        return StreamingResponse(
            self.watched(self._stream(reply)),
            media_type="text/event-stream",
            headers={"x-content-type-options": "nosniff"},
        )

    async def _stream(self, reply: Stream) -> AsyncIterator[str]:
        for frame in sse(reply.chunks):
            yield frame
        if reply.stall:
            await self.stall()


def serve_google() -> AbstractContextManager[FakeGemini]:
    """Run a ``FakeGemini`` with uvicorn on a free loopback port, in a thread."""
    return serve_fake(FakeGemini(), "fake-gemini")
