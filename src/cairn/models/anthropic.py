"""The Anthropic backend: Claude through the official ``anthropic`` SDK's Messages API.

``AnthropicProvider`` holds the key; the wire adapter below it keeps the guarantees of
``cairn.models._vendor``. Tool calls are yielded once ``message_stop`` arrives;
``message_delta`` usage is cumulative (the SDK's own accumulator keeps the last value).

Anthropic SDK 2.x speaks API version 2026-10-21, which has no ``temperature``: it is sent
(as an extra body field) only when an agent sets it, and the API's refusal is explained
with the fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

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
    quote_body,
    result_text,
    retry_after_s,
)
from cairn.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam, ToolParam, ToolResultBlockParam

BACKEND = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"

_STOP_REASONS = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    # The model ran out of context while writing: for the agent, the same truncation.
    "model_context_window_exceeded": "max_tokens",
}

# The error ``type`` of a body that arrives as an SSE ``error`` event (HTTP status 200),
# mapped to the status the same error has when it is the response itself.
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# 429s that waiting does not fix: the organisation's spend limit, not its request rate.
_SPEND_LIMIT_CODES = {
    "contract_spend_limit_reached",
    "enforced_spend_limit_reached",
    "linked_organization_spend_limit_reached",
}


class AnthropicProvider(VendorProvider):
    """Holds the API key and where to send requests; builds one SDK client per turn."""

    default_base_url = DEFAULT_BASE_URL
    base_url_env = "ANTHROPIC_BASE_URL"

    def client(self) -> anthropic.AsyncAnthropic:
        """A new SDK client with retries off and our timeout (``sdk_timeout``)."""
        sdk = import_sdk(BACKEND, "anthropic", "anthropic")
        client: anthropic.AsyncAnthropic = sdk.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.sdk_timeout(sdk),
            max_retries=0,
        )
        return client


class AnthropicBackend(VendorBackend):
    """Claude over the Messages API, streamed."""

    name = BACKEND
    provider_class = AnthropicProvider
    key_hint = "set ANTHROPIC_API_KEY or store a credential for 'anthropic'"
    forbidden_hint = "; check the key's workspace and permissions"
    provider: AnthropicProvider
    overloaded_statuses: ClassVar[Mapping[int, str]] = {529: "is overloaded"}

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """One Messages API call, streamed; raises ``ModelError`` on failure."""
        if not self.provider.has_key:
            raise self._no_key()
        sdk = import_sdk(BACKEND, "anthropic", "anthropic")
        import httpx2  # the SDK's HTTP client: errors while reading the body arrive raw

        params = build_params(request)
        calls: list[ToolCallRequest] = []
        unreadable: list[tuple[str, str]] = []  # (tool name, why its input is not an object)
        json_buffers: dict[int, str] = {}
        complete = False
        answer_started = False  # any event of the answer received: decides how a drop reads
        usage = Usage()
        stop_reason: str | None = None
        response_model: str | None = None
        try:
            async with (
                self.provider.client() as client,
                client.messages.stream(**params) as stream,
            ):
                async for event in stream:
                    answer_started = True
                    if event.type == "text":
                        if event.text:
                            yield TextDelta(event.text)
                    elif event.type == "content_block_start":
                        if event.content_block.type == "tool_use":
                            json_buffers[event.index] = ""
                    elif event.type == "content_block_delta":
                        if event.delta.type == "input_json_delta" and event.index in json_buffers:
                            json_buffers[event.index] += event.delta.partial_json
                    elif event.type == "content_block_stop":
                        block = event.content_block
                        if block.type == "tool_use":
                            arguments, problem = parse_arguments(json_buffers[event.index])
                            if problem is None:
                                calls.append(ToolCallRequest(block.id, block.name, arguments))
                            else:
                                unreadable.append((block.name, problem))
                    elif event.type == "message_stop":
                        complete = True
                        message = event.message
                        stop_reason = message.stop_reason
                        usage = usage_from(message.usage)
                        response_model = getattr(message, "model", None) or None
        except (sdk.APIError, httpx2.TransportError, ValueError) as exc:
            self._raise_sdk_error(sdk, exc, answer_started=answer_started)
        if not complete:
            raise self._cut_short("anthropic's stream", "message", "message_stop")
        if unreadable:
            raise self._unreadable_call(*unreadable[0], stop_reason)
        for call in calls:
            yield call
        yield TurnEnd(_STOP_REASONS.get(stop_reason or "", "other"), usage, model=response_model)

    # --- errors ------------------------------------------------------------------------

    def _stream_error(self, exc: anthropic.APIError) -> ModelError:
        return ModelError(
            self.provider.redact(f"anthropic failed: {exc.message}"),
            backend=BACKEND,
            reason="other",
        )

    def _unreadable_call(self, tool: str, problem: str, stop_reason: str | None) -> ModelError:
        if stop_reason == "max_tokens":
            return ModelError(
                f"anthropic's answer reached max_tokens={self.settings.max_tokens} in the middle "
                f"of a call to tool {tool!r}, so the call was not run: raise max_tokens",
                backend=BACKEND,
                reason="other",
            )
        return self._bad_arguments(tool, problem)

    def _facts(self, exc: anthropic.APIStatusError) -> ErrorFacts:
        """An error response, or an SSE ``error`` event (which arrives under the stream's
        HTTP 200, and is given the status its ``type`` has as a response)."""
        error_type = str(exc.type or "")
        api_message = exc.api_message or quote_body(exc.body) or "no message"
        in_stream = exc.status_code < 400
        status = _TYPE_STATUS.get(error_type, 500) if in_stream else exc.status_code
        said = f"{'an error event mid-stream' if in_stream else f'HTTP {status}'}: {api_message}"
        return ErrorFacts(
            status=status,
            said=said,
            message=api_message,
            headers=None if in_stream else exc.response.headers,
            status_code=None if in_stream else status,
            code=str(exc.error_code or ""),
            type=error_type,
        )

    def _category(self, facts: ErrorFacts) -> Category:
        """Anthropic's error ``type`` counts as much as the status."""
        kind = facts.type
        if facts.status == 401 or kind == "authentication_error":
            return "key"
        if facts.status == 403 or kind == "permission_error":
            return "forbidden"
        if facts.status == 402 or kind == "billing_error":
            return "billing"
        category = super()._category(facts)
        if kind == "timeout_error" and category in ("overloaded", "server_error", "other"):
            return "timeout"
        if kind == "overloaded_error" and category in ("server_error", "other"):
            return "overloaded"
        return category

    def _used_up(self, facts: ErrorFacts) -> str | None:
        if facts.code not in _SPEND_LIMIT_CODES:
            return None
        return (
            f"anthropic refused the request: the spend limit is reached ({facts.said}); raise "
            "the limit in the Anthropic console"
        )

    def _not_found_hint(self) -> str:
        hint = super()._not_found_hint()
        if self.provider.base_url and self.provider.base_url.rstrip("/").endswith("/v1"):
            hint += "; leave /v1 off base_url, the SDK adds it"
        return hint

    def _bad_request_hint(self, facts: ErrorFacts) -> str:
        if "temperature" in facts.message and self.settings.temperature is not None:
            return (
                f"; this agent sets temperature={self.settings.temperature:g}, which the "
                "Anthropic API (version 2026-10-21) no longer accepts: remove temperature "
                "from its model_settings"
            )
        return ""

    def _text(self, category: Category, facts: ErrorFacts, retry_after: float | None) -> str:
        if category == "billing":
            return (
                f"anthropic refused the request for billing ({facts.said}): check the account's "
                "plan and credit balance"
            )
        if category == "other":
            return f"anthropic answered HTTP {facts.status} ({facts.message})"
        return super()._text(category, facts, retry_after)


# --- wire adapter: request ------------------------------------------------------------


def build_params(request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.stream`` from one turn's request."""
    settings = request.settings
    params: dict[str, Any] = {
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "messages": to_messages(request.messages),
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [to_tool(spec) for spec in request.tools]
    if settings.temperature is not None:
        # Not a parameter of SDK 2.x (API 2026-10-21 dropped it); sent as asked, so a
        # server that still takes it honours it and one that does not says so.
        params["extra_body"] = {"temperature": settings.temperature}
    return params


def to_messages(messages: list[Message]) -> list[MessageParam]:
    """Cairn's conversation as Messages API turns: assistant tool calls become ``tool_use``
    blocks, and tool results a user turn of ``tool_result`` blocks (errors flagged
    ``is_error``). An empty assistant turn is left out: the API refuses empty content."""
    turns: list[MessageParam] = []
    for message in messages:
        if message.role == "user":
            turns.append({"role": "user", "content": message.text})
        elif message.role == "assistant":
            blocks: list[Any] = []
            if message.text:
                blocks.append({"type": "text", "text": message.text})
            blocks.extend(
                {"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments}
                for call in message.tool_calls
            )
            if blocks:
                turns.append({"role": "assistant", "content": blocks})
        elif message.tool_results:
            results = [to_tool_result(result) for result in message.tool_results]
            turns.append({"role": "user", "content": results})
    return turns


def to_tool_result(result: ToolResultMessage) -> ToolResultBlockParam:
    """One tool's outcome: text as is, anything else as JSON, ``is_error`` on failures."""
    text = result_text(result.content)
    block: ToolResultBlockParam = {
        "type": "tool_result",
        "tool_use_id": result.call_id,
        "is_error": result.is_error,
    }
    if text:
        block["content"] = text
    return block


def to_tool(spec: ToolSpec) -> ToolParam:
    """A tool as advertised to Claude; the API insists on an object schema."""
    schema: dict[str, Any] = {"type": "object", **spec.input_schema}
    tool: ToolParam = {"name": spec.name, "input_schema": schema}
    if spec.description:
        tool["description"] = spec.description
    return tool


# --- wire adapter: response -----------------------------------------------------------


def usage_from(usage: anthropic.types.Usage) -> Usage:
    """Cairn's one rule for cached prompt tokens (docs/ledger.md), from Anthropic's counts."""
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    return Usage(
        tokens_in=usage.input_tokens + cache_read + cache_write,
        tokens_out=usage.output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


__all__ = [
    "AnthropicBackend",
    "AnthropicProvider",
    "build_params",
    "retry_after_s",
    "to_messages",
    "usage_from",
]
