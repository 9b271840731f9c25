"""The OpenAI backend, with the real ``openai`` SDK pointed by base URL at a local server
that speaks Chat Completions (``tests.fakes.openai_server``) — which is also exactly what
an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) is to the backend.

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the tools advertised, the
assistant tool calls and the ``tool`` results sent back). The error table and the wire
details are checked on the backend alone, still through the SDK and the server.

Only what this vendor alone has is here (its wire mapping, its own error codes and
replies); what every backend does the same way is checked once, over the three vendors,
in ``test_vendor_backends.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Run, RunEvent, Usage
from cairn.models.base import (
    EnvCredentials,
    Message,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.models.openai import PLACEHOLDER_KEY, OpenAIBackend, is_openai_host, to_messages
from cairn.runner.messages import render_event_message
from cairn.services.app import App
from tests.fakes.openai_server import (
    MODEL,
    Error,
    FakeOpenAI,
    Part,
    Raw,
    completion,
    serve_openai,
    text,
    tool_call,
)
from tests.models import vendors
from tests.models.vendors import OPENAI, PAYLOAD, PROMPT, NoKey, failure, play, reset_and_check
from tests.runner.helpers import (
    BUILTIN_NAMES,
    assert_complete,
    assert_failed,
    kinds,
)

KEY = OPENAI.key


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_openai() as server:
        yield server


@pytest.fixture
def fake(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield from reset_and_check(openai_server)


async def fire(
    app: App, fake: FakeOpenAI, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh openai agent; the row and events as the ledger holds them."""
    return await vendors.fire(app, OPENAI, fake, runner_options, **settings)


def assert_key_never_leaked(run: Run, events: list[RunEvent]) -> None:
    vendors.assert_key_never_leaked(OPENAI, run, events)


def backend(fake: FakeOpenAI, **settings: Any) -> OpenAIBackend:
    model: OpenAIBackend = vendors.backend(OPENAI, fake.url, **settings)
    return model


# --- runs ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_run_with_two_tool_calls_over_two_turns_round_trips_through_the_api(
    app: App, fake: FakeOpenAI
) -> None:
    document = {"order": {"id": "A-17", "status": "shipped"}}
    fake.expected_key = KEY
    fake.queue(
        completion(
            text("Looking ", "the order up."),
            tool_call("call_01", "json_extract", {"document": document, "path": "order.status"}),
            prompt_tokens=520,
            completion_tokens=30,
        ),
        completion(
            tool_call("call_02", "regex_find", {"text": "A-17", "pattern": "("}),
            prompt_tokens=560,
            cached_tokens=512,
            completion_tokens=22,
        ),
        completion(
            text("Order A-17 ", "has shipped."),
            prompt_tokens=610,
            cached_tokens=512,
            completion_tokens=9,
        ),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "tool_errors"  # the second call's pattern does not compile
    assert run.output_text == "Order A-17 has shipped."
    assert [(c.call_id, c.name) for c in run.tool_calls] == [
        ("call_01", "json_extract"),
        ("call_02", "regex_find"),
    ]
    assert run.tool_calls[0].arguments == {"document": document, "path": "order.status"}
    assert run.tool_calls[0].result == "shipped"
    assert run.tool_calls[1].error is not None and "invalid pattern" in run.tool_calls[1].error
    # prompt_tokens already counts the cached ones: every prompt token once, nothing added.
    assert run.usage.tokens_in == 520 + 560 + 610
    assert run.usage.tokens_out == 30 + 22 + 9
    assert run.usage.cache_read_tokens == 512 + 512
    assert run.usage.cache_write_tokens == 0
    assert kinds(events) == [
        "text",
        "text",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "text",
        "text",
        "finish",
    ]
    assert events[-1].data["stop_reason"] == "end_turn"
    assert events[-1].data["usage"]["tokens_in"] == 1690
    # The model that answered each turn, as the server named it (gen_ai.response.model).
    assert [t.get("model") for t in events[-1].data["turns"]] == [MODEL] * 3

    first, second, third = fake.received
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.body["model"] == MODEL
    assert first.body["stream"] is True
    assert first.body["stream_options"] == {"include_usage": True}
    assert first.body["max_tokens"] == 1024  # a server other than OpenAI: the classic field
    assert "max_completion_tokens" not in first.body
    assert "temperature" not in first.body
    assert first.body["messages"] == [
        {"role": "system", "content": PROMPT},
        {"role": "user", "content": render_event_message(PAYLOAD)},
    ]
    advertised = {tool["function"]["name"]: tool for tool in first.body["tools"]}
    assert sorted(advertised) == BUILTIN_NAMES
    assert all(tool["type"] == "function" for tool in advertised.values())
    regex = advertised["regex_find"]["function"]
    assert regex["parameters"]["type"] == "object"
    assert regex["parameters"]["required"] == ["text", "pattern"]
    assert all(tool["function"]["description"] for tool in advertised.values())

    call_1 = {
        "id": "call_01",
        "type": "function",
        "function": {
            "name": "json_extract",
            "arguments": json.dumps({"document": document, "path": "order.status"}),
        },
    }
    assert second.body["messages"][2:] == [
        {"role": "assistant", "content": "Looking the order up.", "tool_calls": [call_1]},
        {"role": "tool", "tool_call_id": "call_01", "content": "shipped"},
    ]
    assert second.body["tools"] == first.body["tools"]
    *earlier, asked, answered = third.body["messages"]
    assert earlier == second.body["messages"]
    assert asked == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_02",
                "type": "function",
                "function": {
                    "name": "regex_find",
                    "arguments": json.dumps({"text": "A-17", "pattern": "("}),
                },
            }
        ],
    }
    assert answered == {
        "role": "tool",
        "tool_call_id": "call_02",
        "content": f"error: {run.tool_calls[1].error}",
    }
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_an_openai_compatible_server_works_without_openai_api_key(
    app: App, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local server (Ollama, vLLM, llama.cpp, LM Studio) needs no key: the agent names
    it by base_url, nothing is configured, and the run works."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake.queue(completion(text("Hello from a local model."), prompt_tokens=7, completion_tokens=6))
    run, events = await fire(
        app,
        fake,
        {"credentials": lambda _sandbox_id: EnvCredentials()},
        model="llama3.2:3b",
        temperature=0.2,
        max_tokens=300,
    )

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Hello from a local model."
    assert (run.usage.tokens_in, run.usage.tokens_out) == (7, 6)
    (received,) = fake.received
    assert received.headers["authorization"] == f"Bearer {PLACEHOLDER_KEY}"
    assert received.body["model"] == "llama3.2:3b"
    assert received.body["temperature"] == 0.2
    assert received.body["max_tokens"] == 300


@pytest.mark.anyio
async def test_a_compatible_server_that_wants_a_key_says_which_variable_to_set(
    app: App, fake: FakeOpenAI
) -> None:
    fake.expected_key = KEY
    run, events = await fire(app, fake, {"credentials": lambda _sandbox_id: NoKey()})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text.startswith(
        f"the OpenAI-compatible server at {fake.url} asked for an API key and none is "
        "configured (HTTP 401: Incorrect API key provided: "
    )
    assert message_text.endswith(": set OPENAI_API_KEY or store a credential for 'openai'")
    assert kinds(events) == ["error"], "a missing key is not retried"


@pytest.mark.anyio
async def test_a_server_that_sends_no_usage_counts_zero_tokens(app: App, fake: FakeOpenAI) -> None:
    fake.queue(completion(text("No counts here."), usage=False))
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "No counts here."
    assert run.usage == Usage()


# --- the backend alone: errors -------------------------------------------------------


SERVER = "the OpenAI-compatible server at http://127.0.0.1:"
CONTEXT = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted "
    "in 131072 tokens. Please reduce the length of the messages."
)

ERROR_CASES = [
    pytest.param(
        Error(403, "Project does not have access to the model", "invalid_request_error"),
        ("auth", False, 403, None),
        f"(HTTP 403: Project does not have access to the model): the API key may not use "
        f"model {MODEL!r}; check the key's project and permissions",
        id="403",
    ),
    pytest.param(
        Error(
            404,
            f"The model `{MODEL}` does not exist or you do not have access to it.",
            "invalid_request_error",
            code="model_not_found",
        ),
        ("unknown_model", False, 404, None),
        f"does not know model {MODEL!r} (HTTP 404: The model `{MODEL}` does not exist or you "
        "do not have access to it.): check model_settings.model and base_url (requests went to",
        id="404",
    ),
    pytest.param(
        Error(400, CONTEXT, "invalid_request_error", "context_length_exceeded", "messages"),
        ("context_too_long", False, 400, None),
        f"the conversation is too long for model {MODEL!r} (HTTP 400: {CONTEXT}): shorten the "
        "system prompt, the event payload or the tool results, or lower max_tokens",
        id="400-context-code",
    ),
    pytest.param(
        Error(400, "prompt is too long: 9000 tokens, context window is 8192", "BadRequestError"),
        ("context_too_long", False, 400, None),
        "the conversation is too long for model",
        id="400-context-message",
    ),
    pytest.param(
        Error(413, "Request body too large", "invalid_request_error"),
        ("context_too_long", False, 413, None),
        "the conversation is too long for model",
        id="413",
    ),
    pytest.param(
        Error(400, "Invalid value for 'tool_choice'", "invalid_request_error", param="tools"),
        ("bad_request", False, 400, None),
        "rejected the request (HTTP 400: Invalid value for 'tool_choice')",
        id="400",
    ),
    pytest.param(
        Error(422, "messages.1.content: Field required", "BadRequestError"),
        ("bad_request", False, 422, None),
        "rejected the request (HTTP 422: messages.1.content: Field required)",
        id="422",
    ),
    pytest.param(
        Error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            code="insufficient_quota",
        ),
        ("rate_limited", False, 429, None),
        "refused the request: the account's quota is used up (HTTP 429: You exceeded",
        id="429-quota",
    ),
    pytest.param(
        Error(
            429,
            "Rate limit reached for requests",
            "requests",
            code="rate_limit_exceeded",
            headers={"retry-after-ms": "1500"},
        ),
        ("rate_limited", True, 429, 1.5),
        "rate-limited the request (HTTP 429: Rate limit reached for requests); it asked to "
        "wait 1.5 s",
        id="429-retry-after-ms",
    ),
    pytest.param(
        Error(
            503, "The engine is currently overloaded", "server_error", headers={"retry-after": "4"}
        ),
        ("server_error", True, 503, 4.0),
        "had a server error (HTTP 503: The engine is currently overloaded): try again later",
        id="503",
    ),
    pytest.param(
        Error(500, "Internal error", "server_error", headers={"x-should-retry": "false"}),
        ("server_error", False, 500, None),
        "had a server error (HTTP 500: Internal error)",
        id="500-should-not-retry",
    ),
    pytest.param(
        Error(504, "Gateway timeout", "server_error"),
        ("timeout", True, 504, None),
        "timed out on its side (HTTP 504: Gateway timeout): try again later",
        id="504",
    ),
    pytest.param(
        Raw(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        ("server_error", True, 502, None),
        "had a server error (HTTP 502: <html><body><h1>502 Bad Gateway</h1></body></html>)",
        id="502-html",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "expected", "text_part"), ERROR_CASES)
async def test_error_responses_become_model_errors_that_say_what_to_do(
    fake: FakeOpenAI,
    reply: Error | Raw,
    expected: tuple[str, bool, int, float | None],
    text_part: str,
) -> None:
    fake.queue(reply)
    error = await failure(backend(fake))
    assert (error.reason, error.retryable, error.status_code, error.retry_after_s) == expected
    assert error.backend == "openai"
    assert text_part in str(error)
    assert str(error).startswith((SERVER, "the conversation is too long"))
    assert KEY not in str(error)


@pytest.mark.anyio
async def test_a_refused_temperature_says_how_to_fix_it(fake: FakeOpenAI) -> None:
    fake.queue(
        Error(
            400,
            "Unsupported value: 'temperature' does not support 0.3 with this model. Only the "
            "default (1) value is supported.",
            "invalid_request_error",
            code="unsupported_value",
            param="temperature",
        )
    )
    error = await failure(backend(fake, temperature=0.3))
    assert fake.received[0].body["temperature"] == 0.3
    assert (error.reason, error.retryable) == ("bad_request", False)
    assert str(error).endswith(
        f"; this agent sets temperature=0.3, which model {MODEL!r} does not accept: remove "
        "temperature from its model_settings"
    )


@pytest.mark.anyio
async def test_a_server_that_ignores_stream_true_is_told_apart(fake: FakeOpenAI) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
    fake.queue(Raw(200, json.dumps(body)))
    error = await failure(backend(fake))
    assert "answered with one JSON body instead of a stream" in str(error)


@pytest.mark.anyio
async def test_tool_arguments_cut_off_by_max_tokens_are_not_run(fake: FakeOpenAI) -> None:
    truncated = Part(
        (
            {
                "id": "call_09",
                "type": "function",
                "function": {"name": "regex_find", "arguments": ""},
            },
            {"function": {"arguments": '{"text": "A-17", "pat'}},
        ),
        is_tool_call=True,
    )
    fake.queue(completion(truncated, finish_reason="length"))
    error = await failure(backend(fake))
    assert str(error) == (
        "openai ran out of max_tokens while writing the arguments for tool 'regex_find' "
        "(Unterminated string starting at: line 1 column 18 (char 17)); raise max_tokens"
    )
    assert error.retryable is False


# --- the backend alone: the stream -----------------------------------------------------


@pytest.mark.anyio
async def test_openai_itself_gets_max_completion_tokens_and_cache_writes_are_kept(
    fake: FakeOpenAI,
) -> None:
    model = OpenAIBackend(
        ModelSettings(backend="openai", model=MODEL, base_url=fake.url, max_tokens=256),
        EnvCredentials({"openai": KEY}),
        token_field="max_completion_tokens",
    )
    fake.queue(
        completion(
            text("ok"),
            prompt_tokens=2048,
            cached_tokens=1024,
            cache_write_tokens=512,
            completion_tokens=40,
        )
    )
    events = await play(model)
    body = fake.received[0].body
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert events[-1] == TurnEnd(
        "end_turn",
        Usage(tokens_in=2048, tokens_out=40, cache_read_tokens=1024, cache_write_tokens=512),
    )
    assert OpenAIBackend(ModelSettings(backend="openai", model=MODEL), NoKey()).token_field == (
        "max_completion_tokens"
    )
    assert is_openai_host(None) and is_openai_host("https://api.openai.com/v1")
    assert not is_openai_host(fake.url)


@pytest.mark.anyio
async def test_lenient_servers_tool_call_deltas_are_assembled_too(fake: FakeOpenAI) -> None:
    """Some servers repeat the id and name on every delta, send no id at all, or finish
    with ``stop`` after tool calls."""
    repeated = Part(
        tuple(
            {"id": "call_r", "type": "function", "function": {"name": "clock_now", "arguments": a}}
            for a in ('{"timezone"', ': "UTC"}')
        ),
        is_tool_call=True,
    )
    anonymous = Part(
        ({"type": "function", "function": {"name": "json_extract", "arguments": '{"path": "a"}'}},),
        is_tool_call=True,
    )
    fake.queue(completion(repeated, anonymous, finish_reason="stop"))
    events = await play(backend(fake))
    assert events[:2] == [
        ToolCallRequest("call_r", "clock_now", {"timezone": "UTC"}),
        ToolCallRequest("call_0_1", "json_extract", {"path": "a"}),
    ]
    assert isinstance(events[2], TurnEnd) and events[2].stop_reason == "tool_use"


def test_conversation_edges_map_to_valid_messages() -> None:
    call = ToolCallRequest("call_1", "json_extract", {"path": "a"})
    turns = to_messages(
        "",
        [
            Message("user", "hi"),
            Message("assistant", "", (call,)),
            Message(
                "tool",
                tool_results=(
                    ToolResultMessage("call_1", "json_extract", {"a": [1, 2]}),
                    ToolResultMessage("call_2", "clock_now", "boom", is_error=True),
                ),
            ),
            Message("assistant", ""),  # an empty turn is left out
            Message("assistant", "Done."),
        ],
    )
    assert turns == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "json_extract", "arguments": '{"path": "a"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"a": [1, 2]}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "error: boom"},
        {"role": "assistant", "content": "Done."},
    ]
