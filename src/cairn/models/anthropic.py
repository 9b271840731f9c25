"""The Anthropic backend: Claude through the official ``anthropic`` SDK's Messages API.

Two parts, kept apart as in ``pydantic-ai``: ``AnthropicProvider`` owns the credential and
builds SDK clients (the only object that ever holds the key), and the wire adapter below it
turns a ``ModelRequest`` into Messages API parameters and the SDK's stream events into
Cairn's ``TextDelta`` / ``ToolCallRequest`` / ``TurnEnd``.

What the adapter guarantees:

* Text is yielded as each ``text_delta`` arrives; tool calls once the message is complete
  (a stream cut short must not run a tool with half its arguments); one ``TurnEnd`` last,
  with the stop reason normalised (``end_turn``, ``tool_use``, ``max_tokens``, ``other``).
* Usage follows docs/tokens.md: ``tokens_in = input_tokens + cache_creation_input_tokens +
  cache_read_input_tokens`` (each prompt token counted once), with the cached shares
  repeated as ``cache_write_tokens`` / ``cache_read_tokens``. ``message_delta`` counts are
  cumulative, so the last value of each field wins (the SDK's own accumulator does this).
* The SDK's retries are off (``max_retries=0``): the runner retries, and records each retry
  as a run event. Failures become ``ModelError`` with a reason, ``retryable`` and the
  provider's ``retry-after``; messages name the model and the remedy, never the key.
* The stream is read inside the SDK's context managers, so cancelling a run closes the
  HTTP response at once.

The SDK is imported when a turn runs, not when this module is imported; a missing SDK
fails the run with the extra to install. Anthropic SDK 2.x speaks API version 2026-10-21,
which has no ``temperature``: it is sent (as an extra body field) only when an agent sets
it, and the API's refusal is explained with the fix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Usage
from cairn.errors import ModelError, ModelErrorReason
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
from cairn.models.vendor_errors import connection_lost, quote_body, retry_after_s
from cairn.tools.base import ToolSpec

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam, ToolParam, ToolResultBlockParam

BACKEND = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
CONNECT_TIMEOUT_S = 10.0

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

_CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|context (?:limit|window|length)|too many (?:input )?tokens"
    r"|exceeds? the (?:model'?s? )?(?:maximum )?context",
    re.IGNORECASE,
)


def import_sdk() -> Any:
    """The ``anthropic`` module, or a ``ModelError`` naming the extra that installs it."""
    try:
        import anthropic
    except ImportError:
        raise ModelError(
            "the anthropic backend needs the anthropic SDK, which is not installed: "
            "pip install 'cairn[anthropic]'",
            backend=BACKEND,
            reason="other",
        ) from None
    return anthropic


class AnthropicProvider:
    """Holds the API key and where to send requests; builds one SDK client per turn.

    A client per turn (closed when the turn ends) means no connection pool outlives a run,
    whatever the caller does with the backend afterwards.
    """

    def __init__(self, api_key: str | None, *, base_url: str | None, timeout_s: float) -> None:
        self._api_key = api_key or None
        self.base_url = base_url
        self.timeout_s = timeout_s

    @property
    def has_key(self) -> bool:
        """Whether a key is configured (a turn without one fails before any request)."""
        return self._api_key is not None

    def client(self) -> anthropic.AsyncAnthropic:
        """A new SDK client with retries off and our timeout: read ``timeout_s`` between
        bytes, connect within ``CONNECT_TIMEOUT_S`` (a dead host fails fast)."""
        sdk = import_sdk()
        client: anthropic.AsyncAnthropic = sdk.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=sdk.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            max_retries=0,
        )
        return client

    def redact(self, text: str) -> str:
        """``text`` with the key blanked out, for anything that may reach a person or a log."""
        if self._api_key and len(self._api_key) >= 4:
            return text.replace(self._api_key, "[redacted]")
        return text

    def where(self) -> str:
        """Where requests go (as the SDK decides), without credentials or query string."""
        url = self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


class AnthropicBackend:
    """Claude over the Messages API, streamed. Constructed per run by the registry as
    ``AnthropicBackend(settings, credentials)``; ``request_timeout_s`` (default: the agent's
    ``timeout_s``) bounds each HTTP read, for embedders that want a stall to fail (and be
    retried) well before the run's own deadline."""

    name = BACKEND

    def __init__(
        self,
        settings: ModelSettings,
        credentials: Credentials,
        *,
        request_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.provider = AnthropicProvider(
            credentials.api_key(BACKEND),
            base_url=settings.base_url,
            timeout_s=request_timeout_s or settings.timeout_s,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """One Messages API call, streamed; raises ``ModelError`` on failure."""
        if not self.provider.has_key:
            raise ModelError(
                "no API key for anthropic: set ANTHROPIC_API_KEY or store a credential "
                "for 'anthropic'",
                backend=BACKEND,
                reason="auth",
            )
        sdk = import_sdk()
        import httpx2  # the SDK's HTTP client: errors while reading the body arrive raw

        params = build_params(request)
        calls: list[ToolCallRequest] = []
        unreadable: list[tuple[str, str]] = []  # (tool name, why its input is not an object)
        json_buffers: dict[int, str] = {}
        complete = False
        answer_started = False  # any event of the answer received: decides how a drop reads
        usage = Usage()
        stop_reason: str | None = None
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
                            raw = json_buffers[event.index]
                            arguments, problem = _tool_arguments(raw)
                            if problem is None:
                                calls.append(ToolCallRequest(block.id, block.name, arguments))
                            else:
                                unreadable.append((block.name, problem))
                    elif event.type == "message_stop":
                        complete = True
                        message = event.message
                        stop_reason = message.stop_reason
                        usage = usage_from(message.usage)
        except sdk.APIError as exc:
            raise self._api_error(sdk, exc, answer_started=answer_started) from exc
        except httpx2.TimeoutException as exc:
            raise self._timeout() from exc
        except httpx2.TransportError as exc:
            raise self._dropped(exc, answer_started=answer_started) from exc
        except ValueError as exc:  # a frame that is not the JSON the protocol promises
            raise ModelError(
                self.provider.redact(f"anthropic sent a stream Cairn could not read: {exc}"),
                backend=BACKEND,
                reason="other",
                retryable=True,
            ) from exc
        if not complete:
            raise ModelError(
                f"anthropic's stream from {self.provider.where()} ended before the message was "
                "complete (no message_stop): the connection dropped; try again",
                backend=BACKEND,
                reason="connection",
                retryable=True,
            )
        if unreadable:
            raise self._unreadable_call(*unreadable[0], stop_reason)
        for call in calls:
            yield call
        yield TurnEnd(_STOP_REASONS.get(stop_reason or "", "other"), usage)

    # --- errors ------------------------------------------------------------------------

    def _api_error(self, sdk: Any, exc: anthropic.APIError, *, answer_started: bool) -> ModelError:
        if isinstance(exc, sdk.APITimeoutError):
            return self._timeout()
        if isinstance(exc, sdk.APIConnectionError):
            return self._dropped(exc.__cause__ or exc, answer_started=answer_started)
        if isinstance(exc, sdk.APIStatusError):
            return self._status_error(exc)
        return ModelError(
            self.provider.redact(f"anthropic failed: {exc.message}"),
            backend=BACKEND,
            reason="other",
        )

    def _timeout(self) -> ModelError:
        return ModelError(
            f"anthropic did not answer within {self.provider.timeout_s:g} s (model "
            f"{self.settings.model!r} at {self.provider.where()}): the service is slow or "
            "unreachable; try again later or raise timeout_s",
            backend=BACKEND,
            reason="timeout",
            retryable=True,
        )

    def _dropped(self, cause: BaseException, *, answer_started: bool) -> ModelError:
        return connection_lost(
            BACKEND,
            self.provider.where(),
            cause,
            answer_started=answer_started,
            unreachable_remedy="check the network and model_settings.base_url",
            redact=self.provider.redact,
        )

    def _unreadable_call(self, tool: str, problem: str, stop_reason: str | None) -> ModelError:
        if stop_reason == "max_tokens":
            return ModelError(
                f"anthropic's answer reached max_tokens={self.settings.max_tokens} in the middle "
                f"of a call to tool {tool!r}, so the call was not run: raise max_tokens",
                backend=BACKEND,
                reason="other",
            )
        return ModelError(
            f"anthropic sent arguments for tool {tool!r} that are not a JSON object ({problem}): "
            "try again, or make the tool's description clearer",
            backend=BACKEND,
            reason="other",
            retryable=True,
        )

    def _status_error(self, exc: anthropic.APIStatusError) -> ModelError:
        """Classify an error response (or an SSE ``error`` event, which arrives under the
        stream's HTTP 200) and say what to do about it."""
        error_type = str(exc.type or "")
        api_message = exc.api_message or quote_body(exc.body) or "no message"
        in_stream = exc.status_code < 400
        status = _TYPE_STATUS.get(error_type, 500) if in_stream else exc.status_code
        said = f"{'an error event mid-stream' if in_stream else f'HTTP {status}'}: {api_message}"
        model = self.settings.model
        reason: ModelErrorReason = "other"
        retryable = False
        retry_after: float | None = None
        if status == 401 or error_type == "authentication_error":
            reason = "auth"
            text = (
                f"anthropic rejected the API key ({said}): set ANTHROPIC_API_KEY or store a "
                "credential for 'anthropic'"
            )
        elif status == 403 or error_type == "permission_error":
            reason = "auth"
            text = (
                f"anthropic refused the request ({said}): the API key may not use model "
                f"{model!r}; check the key's workspace and permissions"
            )
        elif status == 402 or error_type == "billing_error":
            text = (
                f"anthropic refused the request for billing ({said}): check the account's plan "
                "and credit balance"
            )
        elif status == 404:
            reason = "unknown_model"
            text = f"anthropic does not know model {model!r} ({said}): check model_settings.model"
            if self.provider.base_url:
                text += f" and base_url (requests went to {self.provider.where()})"
                if self.provider.base_url.rstrip("/").endswith("/v1"):
                    text += "; leave /v1 off base_url, the SDK adds it"
        elif status == 413 or (status == 400 and _CONTEXT_TOO_LONG.search(api_message)):
            reason = "context_too_long"
            text = (
                f"the conversation is too long for model {model!r} ({said}): shorten the system "
                "prompt, the event payload or the tool results, or lower max_tokens"
            )
        elif status == 400:
            reason = "bad_request"
            text = f"anthropic rejected the request ({said})"
            if "temperature" in api_message and self.settings.temperature is not None:
                text += (
                    f"; this agent sets temperature={self.settings.temperature:g}, which the "
                    "Anthropic API (version 2026-10-21) no longer accepts: remove temperature "
                    "from its model_settings"
                )
        elif status == 429:
            reason = "rate_limited"
            if exc.error_code in _SPEND_LIMIT_CODES:
                text = (
                    f"anthropic refused the request: the spend limit is reached ({said}); raise "
                    "the limit in the Anthropic console"
                )
            else:
                retryable = True
                retry_after = None if in_stream else retry_after_s(exc.response.headers)
                text = f"anthropic rate-limited the request ({said})"
                if retry_after is not None:
                    text += f"; it asked to wait {retry_after:g} s"
        elif status in (408, 504) or error_type == "timeout_error":
            reason, retryable = "timeout", True
            text = f"anthropic timed out on its side ({said}): try again later"
        elif status == 529 or error_type == "overloaded_error":
            reason, retryable = "server_error", True
            text = f"anthropic is overloaded ({said}): try again later"
        elif status >= 500:
            reason, retryable = "server_error", True
            text = f"anthropic had a server error ({said}): try again later"
        else:
            retryable = status == 409
            text = f"anthropic answered HTTP {status} ({api_message})"
        if not in_stream:
            # The API says outright when a retry is (not) worth it; obey, as the SDK does.
            should_retry = exc.response.headers.get("x-should-retry")
            if should_retry in ("true", "false") and reason != "auth":
                retryable = should_retry == "true"
            if retryable and retry_after is None:
                retry_after = retry_after_s(exc.response.headers)
        return ModelError(
            self.provider.redact(text),
            backend=BACKEND,
            status_code=None if in_stream else status,
            reason=reason,
            retryable=retryable,
            retry_after_s=retry_after,
        )


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
    content = result.content
    text = content if isinstance(content, str) else json.dumps(content, default=str)
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
    """Cairn's one rule for cached prompt tokens (docs/tokens.md), from Anthropic's counts."""
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    return Usage(
        tokens_in=usage.input_tokens + cache_read + cache_write,
        tokens_out=usage.output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _tool_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """A tool call's streamed input, parsed strictly (the SDK's own parse is lenient, for
    display), and what is wrong with it if it is not a JSON object."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, f"{exc.msg} at character {exc.pos}"
    if not isinstance(value, dict):
        return {}, f"a JSON {type(value).__name__}"
    return value, None


__all__ = [
    "AnthropicBackend",
    "AnthropicProvider",
    "build_params",
    "retry_after_s",
    "to_messages",
    "usage_from",
]
