"""The OpenAI backend: Chat Completions through the official ``openai`` SDK, for OpenAI and
for every server that speaks the same API (Ollama, vLLM, the llama.cpp server, LM Studio).

``OpenAIProvider`` holds the key and where requests go; the wire adapter below it keeps
the guarantees of ``cairn.models._vendor``. Tool calls arrive as deltas keyed by ``index``
(the id and name first, the arguments JSON in pieces) and are assembled, in index order.
Usage is asked for with ``stream_options={"include_usage": true}``; a server that sends
none gives zero tokens, not a failure. No message carries the key, not even the masked
form OpenAI quotes back in a 401.

OpenAI-compatible servers: set ``model_settings.base_url`` (for example
``http://localhost:11434/v1`` for Ollama). When ``base_url`` is set and no OpenAI key is
configured (no ``OPENAI_API_KEY``, no stored credential), the placeholder key
``PLACEHOLDER_KEY`` is sent, because the SDK insists on some key and local servers ignore
it; a server that does want one answers 401, and the error says to set ``OPENAI_API_KEY``.
A configured key is sent to whatever ``base_url`` names, as the SDK itself does. Servers
other than OpenAI get ``max_tokens`` (which all of them accept) where OpenAI gets
``max_completion_tokens`` (the field its reasoning models require); ``token_field``
overrides the choice. Only ``model_settings`` decides where requests go: the SDK's
``OPENAI_BASE_URL`` variable is not consulted.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Usage
from cairn.domain.tools import ToolSpec
from cairn.errors import ModelError
from cairn.models._vendor import (
    Category,
    ErrorFacts,
    VendorBackend,
    VendorProvider,
    import_sdk,
    parse_arguments,
    result_text,
)
from cairn.models.base import (
    Credentials,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)

if TYPE_CHECKING:
    import openai
    from openai.types import CompletionUsage
    from openai.types.chat import (
        ChatCompletionFunctionToolParam,
        ChatCompletionMessageParam,
    )

BACKEND = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "no-key-required"
"""Sent as the key to a ``base_url`` server when none is configured (see above)."""

TokenField = Literal["max_completion_tokens", "max_tokens"]

_FINISH_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}

# What an OpenAI key looks like, whole or masked as the API quotes it back in a 401
# ("Incorrect API key provided: sk-proj-****abcd"): blanked out of every message.
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}")

# The ``type`` / ``code`` of an error that arrives inside a 200 stream, as the status the
# same error has when it is the response itself.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "model_not_found": 404,
    "not_found_error": 404,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "tokens": 429,
    "requests": 429,
    "timeout": 504,
    "server_error": 500,
    "api_error": 500,
    "internal_error": 500,
    "overloaded_error": 503,
    "service_unavailable": 503,
}


def _sdk() -> Any:
    return import_sdk(BACKEND, "openai", "openai")


def is_openai_host(base_url: str | None) -> bool:
    """Whether requests go to OpenAI itself (no ``base_url``, or one on ``openai.com``)."""
    if not base_url:
        return True
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


class OpenAIProvider(VendorProvider):
    """Holds the API key and where to send requests; builds one SDK client per turn.
    ``uses_placeholder`` is true when a ``base_url`` server gets ``PLACEHOLDER_KEY``
    because no key is configured."""

    default_base_url = DEFAULT_BASE_URL

    def __init__(self, api_key: str | None, *, base_url: str | None, timeout_s: float) -> None:
        super().__init__(api_key, base_url=base_url, timeout_s=timeout_s)
        self.is_openai = is_openai_host(self.base_url)
        self.uses_placeholder = self._api_key is None and self.base_url is not None
        if self.uses_placeholder:
            self._api_key = PLACEHOLDER_KEY

    def client(self) -> openai.AsyncOpenAI:
        """A new SDK client with retries off and our timeout (``sdk_timeout``). The key and
        the base URL are always passed, so the SDK's own environment variables do not
        redirect it."""
        sdk = _sdk()
        client: openai.AsyncOpenAI = sdk.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url or DEFAULT_BASE_URL,
            timeout=self.sdk_timeout(sdk),
            max_retries=0,
        )
        return client

    def redact(self, text: str) -> str:
        """``text`` with the key, and anything shaped like an OpenAI key, blanked out."""
        if not self.uses_placeholder:
            text = super().redact(text)
        return _KEY_LIKE.sub("[redacted]", text)


class OpenAIBackend(VendorBackend):
    """Chat Completions, streamed. ``token_field`` names the request field
    that carries ``max_tokens`` (default: ``max_completion_tokens`` for OpenAI itself,
    ``max_tokens`` for other servers), for a server that only takes the other one."""

    name = BACKEND
    provider_class = OpenAIProvider
    key_hint = "set OPENAI_API_KEY or store a credential for 'openai'"
    no_key_hint = " (or set model_settings.base_url to an OpenAI-compatible server that needs none)"
    forbidden_hint = "; check the key's project and permissions"
    bad_request_statuses = (400, 422)
    provider: OpenAIProvider

    def __init__(
        self,
        settings: ModelSettings,
        credentials: Credentials,
        *,
        request_timeout_s: float | None = None,
        token_field: TokenField | None = None,
    ) -> None:
        super().__init__(settings, credentials, request_timeout_s=request_timeout_s)
        self.token_field: TokenField = token_field or (
            "max_completion_tokens" if self.provider.is_openai else "max_tokens"
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """One Chat Completions call, streamed; raises ``ModelError`` on failure."""
        if not self.provider.has_key:
            raise self._no_key()
        openai = _sdk()
        import httpx2  # the SDK's HTTP client; a few of its errors can arrive unwrapped

        settings = request.settings
        tools = [to_tool(spec) for spec in request.tools]
        limit = settings.max_tokens
        completion_limit = limit if self.token_field == "max_completion_tokens" else None
        calls: dict[int, _PartialCall] = {}
        finish_reason: str | None = None
        response_model: str | None = None
        answer_started = False  # any chunk of the answer received: decides how a drop reads
        usage = Usage()
        try:
            async with self.provider.client() as client:
                stream = await client.chat.completions.create(
                    model=settings.model,
                    messages=to_messages(request.system, request.messages),
                    stream=True,
                    stream_options={"include_usage": True},
                    tools=tools if tools else openai.omit,
                    temperature=(
                        settings.temperature if settings.temperature is not None else openai.omit
                    ),
                    max_completion_tokens=completion_limit or openai.omit,
                    max_tokens=openai.omit if completion_limit else limit,
                )
                async with stream:
                    self._check_streaming(stream.response.headers.get("content-type", ""))
                    async for chunk in stream:
                        answer_started = True
                        response_model = getattr(chunk, "model", None) or response_model
                        chunk_usage = getattr(chunk, "usage", None)
                        if chunk_usage is not None:
                            usage = usage_from(chunk_usage)
                        # The usage chunk has no choices; lenient servers may omit the key.
                        for choice in getattr(chunk, "choices", None) or ():
                            delta = getattr(choice, "delta", None)
                            if delta is not None:
                                text = (getattr(delta, "content", None) or "") + (
                                    getattr(delta, "refusal", None) or ""
                                )
                                if text:
                                    yield TextDelta(text)
                                for piece in getattr(delta, "tool_calls", None) or ():
                                    _PartialCall.add(calls, piece)
                            if getattr(choice, "finish_reason", None):
                                finish_reason = str(choice.finish_reason)
        except (openai.APIError, httpx2.TransportError, ValueError) as exc:
            self._raise_sdk_error(openai, exc, answer_started=answer_started)
        if finish_reason is None:
            raise self._cut_short("the stream", "answer", "finish_reason")
        ready = [
            self._finish(calls[index], request.turn, index, finish_reason)
            for index in sorted(calls)
        ]
        for call in ready:
            yield call
        stop = _FINISH_REASONS.get(finish_reason, "other")
        if ready and stop == "end_turn":
            stop = "tool_use"  # some compatible servers say "stop" after tool calls
        yield TurnEnd(stop, usage, model=response_model)

    def _check_streaming(self, content_type: str) -> None:
        """A server that ignores ``stream: true`` answers with one JSON body, which the SSE
        reader would silently find empty: say so instead."""
        if content_type.split(";")[0].strip().lower() == "application/json":
            raise ModelError(
                f"the server at {self.provider.where()} answered with one JSON body instead of "
                "a stream: Cairn needs a server that supports stream=true on "
                "/chat/completions",
                backend=BACKEND,
                reason="other",
            )

    def _finish(
        self, call: _PartialCall, turn: int, index: int, finish_reason: str
    ) -> ToolCallRequest:
        """The complete call, its arguments parsed strictly: a truncated or malformed call
        must not run with half its arguments. A server that sends no id gets one made up."""
        name = call.name or "(unnamed)"
        arguments, problem = parse_arguments(call.arguments)
        if problem is not None:
            if finish_reason == "length":
                raise ModelError(
                    f"openai ran out of max_tokens while writing the arguments for tool "
                    f"{name!r} ({problem}); raise max_tokens",
                    backend=BACKEND,
                    reason="other",
                )
            raise self._bad_arguments(name, problem)
        if not call.name:
            raise ModelError(
                "openai asked for a tool call without a tool name; retry",
                backend=BACKEND,
                reason="other",
                retryable=True,
            )
        return ToolCallRequest(call.call_id or f"call_{turn}_{index}", name, arguments)

    # --- errors ------------------------------------------------------------------------

    def _unreachable_remedy(self) -> str:
        if self.provider.is_openai:
            return "check the network"
        return "check that the server is running there and model_settings.base_url"

    def _sender(self) -> str:
        return f"the server at {self.provider.where()}"

    def _server(self) -> str:
        if self.provider.is_openai:
            return "openai"
        return f"the OpenAI-compatible server at {self.provider.where()}"

    def _facts(self, exc: openai.APIError) -> ErrorFacts:
        """An error response, or an ``{"error": ...}`` object sent inside a stream that
        started with HTTP 200: classified by its ``code`` / ``type`` (or a numeric code, as
        vLLM sends) as the status the same error has as a response."""
        detail = _ErrorDetail.parse(exc.body, exc.message)
        if isinstance(exc, _sdk().APIStatusError):
            return ErrorFacts(
                status=exc.status_code,
                said=f"HTTP {exc.status_code}: {detail.message}",
                message=detail.message,
                headers=exc.response.headers,
                status_code=exc.status_code,
                code=detail.code,
                type=detail.type,
                param=detail.param,
            )
        code = str(exc.code or "")
        status = _STREAM_ERROR_STATUS.get(code) or _STREAM_ERROR_STATUS.get(str(exc.type or ""))
        if status is None and code.isdigit() and 400 <= int(code) < 600:
            status = int(code)
        return ErrorFacts(
            status=status or 500,
            said=f"an error inside the stream: {detail.message}",
            message=detail.message,
            headers=None,
            status_code=None,
            code=code,
            type=detail.type,
            param=detail.param,
        )

    def _too_long(self, facts: ErrorFacts) -> bool:
        return facts.code == "context_length_exceeded" or super()._too_long(facts)

    def _used_up(self, facts: ErrorFacts) -> str | None:
        if "insufficient_quota" not in (facts.code, facts.type):
            return None
        return (
            f"{self._server()} refused the request: the account's quota is used up "
            f"({facts.said}); check the plan and billing details"
        )

    def _not_found_hint(self) -> str:
        if not self.provider.base_url:
            return ""
        return (
            f" and base_url (requests went to {self.provider.where()}/chat/completions; "
            "OpenAI-compatible servers usually serve under /v1)"
        )

    def _bad_request_hint(self, facts: ErrorFacts) -> str:
        if facts.param == "temperature" and self.settings.temperature is not None:
            return (
                f"; this agent sets temperature={self.settings.temperature:g}, which model "
                f"{self.settings.model!r} does not accept: remove temperature from its "
                "model_settings"
            )
        return ""

    def _text(self, category: Category, facts: ErrorFacts, retry_after: float | None) -> str:
        if category == "key" and self.provider.uses_placeholder:
            return (
                f"{self._server()} asked for an API key and none is configured ({facts.said}): "
                f"{self.key_hint}"
            )
        return super()._text(category, facts, retry_after)


# --- wire adapter: request ------------------------------------------------------------


def to_messages(system: str, messages: list[Message]) -> list[ChatCompletionMessageParam]:
    """Cairn's conversation as Chat Completions messages: the system prompt first, assistant
    tool calls as ``tool_calls`` (arguments as a JSON string), and each tool result as a
    ``tool`` message answering its ``tool_call_id``. An empty assistant turn is left out."""
    turns: list[ChatCompletionMessageParam] = []
    if system:
        turns.append({"role": "system", "content": system})
    for message in messages:
        if message.role == "user":
            turns.append({"role": "user", "content": message.text})
        elif message.role == "assistant":
            if message.tool_calls:
                turns.append(
                    {
                        "role": "assistant",
                        "content": message.text or None,
                        "tool_calls": [
                            {
                                "id": call.call_id,
                                "type": "function",
                                "function": {
                                    "name": call.name,
                                    "arguments": json.dumps(call.arguments),
                                },
                            }
                            for call in message.tool_calls
                        ],
                    }
                )
            elif message.text:
                turns.append({"role": "assistant", "content": message.text})
        else:
            turns.extend(
                {
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    "content": tool_result_text(result),
                }
                for result in message.tool_results
            )
    return turns


def tool_result_text(result: ToolResultMessage) -> str:
    """One tool's outcome as the ``tool`` message content: text as is, anything else as
    JSON. Chat Completions has no error flag, so a failure says ``error:`` first."""
    text = result_text(result.content)
    return f"error: {text}" if result.is_error else text


def to_tool(spec: ToolSpec) -> ChatCompletionFunctionToolParam:
    """A tool as advertised: a function whose parameters are an object schema (with
    ``properties``, which some compatible servers insist on)."""
    parameters: dict[str, Any] = {"type": "object", "properties": {}, **spec.input_schema}
    tool: ChatCompletionFunctionToolParam = {
        "type": "function",
        "function": {"name": spec.name, "parameters": parameters},
    }
    if spec.description:
        tool["function"]["description"] = spec.description
    return tool


# --- wire adapter: response -----------------------------------------------------------


def usage_from(usage: CompletionUsage) -> Usage:
    """Cairn's one rule for cached prompt tokens (docs/ledger.md), from OpenAI's counts:
    ``prompt_tokens`` already counts the cached ones, which are repeated apart."""
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        tokens_in=getattr(usage, "prompt_tokens", None) or 0,
        tokens_out=getattr(usage, "completion_tokens", None) or 0,
        cache_read_tokens=getattr(details, "cached_tokens", None) or 0,
        cache_write_tokens=getattr(details, "cache_write_tokens", None) or 0,
    )


@dataclass(slots=True)
class _PartialCall:
    """A tool call being assembled from its deltas."""

    call_id: str = ""
    name: str = ""
    arguments: str = ""

    @staticmethod
    def add(calls: dict[int, _PartialCall], piece: Any) -> None:
        """Fold one ``delta.tool_calls[]`` item in. The id and the name come whole in the
        first delta (some servers repeat them: the first is kept); arguments concatenate."""
        index = int(getattr(piece, "index", None) or 0)
        call = calls.setdefault(index, _PartialCall())
        if not call.call_id and getattr(piece, "id", None):
            call.call_id = str(piece.id)
        function = getattr(piece, "function", None)
        if function is not None:
            if not call.name and getattr(function, "name", None):
                call.name = str(function.name)
            call.arguments += getattr(function, "arguments", None) or ""


@dataclass(frozen=True, slots=True)
class _ErrorDetail:
    """What an error body says: OpenAI's ``{"message", "type", "param", "code"}`` (the SDK
    has already unwrapped ``"error"``), or the looser shapes compatible servers send."""

    message: str
    type: str = ""
    param: str = ""
    code: str = ""

    @classmethod
    def parse(cls, body: object, fallback: str) -> _ErrorDetail:
        if isinstance(body, Mapping):
            message = body.get("message") or body.get("detail") or body.get("error")
            if not isinstance(message, str) or not message:
                message = json.dumps(body, default=str)[:300]
            return cls(
                message,
                str(body.get("type") or ""),
                str(body.get("param") or ""),
                str(body.get("code") or ""),
            )
        if isinstance(body, str) and body.strip():
            return cls(body.strip()[:300])
        return cls(fallback or "no message")


__all__ = [
    "PLACEHOLDER_KEY",
    "OpenAIBackend",
    "OpenAIProvider",
    "is_openai_host",
    "to_messages",
    "to_tool",
    "usage_from",
]
