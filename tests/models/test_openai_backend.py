"""The OpenAI backend, with the real ``openai`` SDK pointed by base URL at a local server
that speaks Chat Completions (``tests.fakes.openai_server``) — which is also exactly what
an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) is to the backend.

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the tools advertised, the
assistant tool calls and the ``tool`` results sent back). The error table and the wire
details are checked on the backend alone, still through the SDK and the server.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import pytest

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run, RunEvent, Usage
from cairn.errors import ModelError
from cairn.models.base import (
    EnvCredentials,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.models.openai import PLACEHOLDER_KEY, OpenAIBackend, is_openai_host, to_messages
from cairn.models.registry import model_backends
from cairn.runner.engine import Runner
from cairn.runner.messages import render_event_message
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.sources import available_sources
from cairn.tools.base import ToolSpec
from tests.fakes.openai_server import (
    MODEL,
    Error,
    FakeOpenAI,
    Hang,
    Part,
    Raw,
    completion,
    masked,
    serve_openai,
    text,
    tool_call,
)
from tests.runner.helpers import (
    BUILTIN_NAMES,
    SANDBOX,
    assert_complete,
    assert_failed,
    kinds,
    stored,
)

KEY = "sk-proj-test-9c41e07b2d5a4f38"
PROMPT = "You look up orders and report what you found."
PAYLOAD = {"order": "A-17", "title": "broken checkout"}
SHORT_TIMEOUT_BACKEND = "openai-short-timeout"


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_openai() as server:
        yield server


@pytest.fixture
def fake(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The server, with nothing queued or received; every queued reply must be used."""
    openai_server.reset()
    yield openai_server
    assert openai_server.pending == 0, "a queued reply was never requested"


@pytest.fixture
def short_timeout_backend() -> Iterator[str]:
    """The OpenAI backend with a 0.2 s request timeout, registered as a plugin would be,
    so a run can hit the SDK's timeout well before its own deadline."""
    model_backends.register(SHORT_TIMEOUT_BACKEND, partial(OpenAIBackend, request_timeout_s=0.2))
    yield SHORT_TIMEOUT_BACKEND
    model_backends.unregister(SHORT_TIMEOUT_BACKEND)


class NoKey:
    """Credentials with nothing configured (not even in the environment)."""

    def api_key(self, backend: str) -> str | None:
        return None


def runner(app: App, **options: Any) -> Runner:
    """A runner that gives the test key to every backend and retries fast."""
    options.setdefault("credentials", lambda _sandbox_id: EnvCredentials({"openai": KEY}))
    return Runner(app.store, app.tool_context, retry_base_s=0.01, **options)


async def gpt_agent(app: App, **settings: Any) -> Agent:
    """An agent on the OpenAI backend with the builtin tools (``base_url`` given by the test)."""
    settings.setdefault("backend", "openai")
    settings.setdefault("model", MODEL)
    agent, _warnings = await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug="gpt",
            system_prompt=PROMPT,
            tool_sources=["builtin"],
            model_settings=ModelSettings(**settings),
        ),
    )
    return agent


async def fire(
    app: App, fake: FakeOpenAI, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh agent talking to the fake server; the row and events as
    the ledger holds them."""
    settings.setdefault("base_url", fake.url)
    agent = await gpt_agent(app, **settings)
    run = await runner(app, **(runner_options or {})).fire(
        agent, PAYLOAD, available_sources(app, SANDBOX), kind="test"
    )
    return stored(app, run.run_id)


def assert_key_never_leaked(run: Run, events: list[RunEvent]) -> None:
    """The key, whole or masked, appears nowhere a person or a log could read it."""
    for secret in (KEY, masked(KEY), KEY[-4:] + "."):
        assert secret not in (run.error_message or "")
        assert secret not in json.dumps([event.data for event in events], default=str)
        trace = run.tool_resolution_trace
        assert trace is None or secret not in json.dumps(trace.to_dict(), default=str)


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
async def test_streamed_text_arrives_as_several_text_events(app: App, fake: FakeOpenAI) -> None:
    pieces = ["The checkout ", "is broken ", "for orders ", "over $100."]
    fake.queue(completion(text(*pieces), prompt_tokens=42, completion_tokens=17))
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "answered"
    assert [e.data["delta"] for e in events if e.kind == "text"] == pieces
    assert all(e.data["turn"] == 0 for e in events if e.kind == "text")
    assert run.output_text == "".join(pieces)
    assert (run.usage.tokens_in, run.usage.tokens_out) == (42, 17)
    assert (run.usage.cache_read_tokens, run.usage.cache_write_tokens) == (0, 0)


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
async def test_a_rejected_api_key_fails_the_run_saying_which_variable_to_set(
    app: App, fake: FakeOpenAI
) -> None:
    fake.expected_key = "sk-proj-the-right-one-0000"
    run, events = await fire(app, fake)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"the OpenAI-compatible server at {fake.url} rejected the API key (HTTP 401: Incorrect "
        "API key provided: [redacted]. You can find your API key at "
        "https://platform.openai.com/account/api-keys.): set OPENAI_API_KEY or store a "
        "credential for 'openai'"
    )
    assert kinds(events) == ["error"], "a bad key is not retried"
    assert run.outcome == "interrupted"
    assert len(fake.received) == 1
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_no_key_and_no_base_url_fails_the_run_before_any_request(
    app: App, fake: FakeOpenAI
) -> None:
    run, events = await fire(app, fake, {"credentials": lambda _sandbox_id: NoKey()}, base_url=None)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "no API key for openai: set OPENAI_API_KEY or store a credential for 'openai' (or set "
        "model_settings.base_url to an OpenAI-compatible server that needs none)"
    )
    assert fake.received == []


@pytest.mark.anyio
async def test_a_rate_limit_is_retried_after_the_wait_the_api_asked_for(
    app: App, fake: FakeOpenAI
) -> None:
    fake.queue(
        Error(
            429,
            f"Rate limit reached for {MODEL} on tokens per min (TPM): Limit 30000, Used 29500, "
            "Requested 900. Please try again in 1s.",
            "tokens",
            code="rate_limit_exceeded",
            headers={"retry-after": "1", "x-ratelimit-remaining-tokens": "0"},
        ),
        completion(text("Done."), prompt_tokens=12, completion_tokens=3),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Done."
    assert kinds(events) == ["retry", "text", "finish"]
    retry = events[0].data
    assert (retry["attempt"], retry["reason"], retry["status_code"]) == (1, "rate_limited", 429)
    assert retry["wait_s"] == 1.0, "the API's retry-after wins over the runner's backoff"
    assert retry["message"].startswith(
        f"the OpenAI-compatible server at {fake.url} rate-limited the request (HTTP 429: Rate"
    )
    assert retry["message"].endswith("; it asked to wait 1 s")
    assert run.duration_ms is not None and run.duration_ms >= 1000
    assert len(fake.received) == 2
    assert fake.received[0].body == fake.received[1].body, "the retry sends the same request"
    assert (run.usage.tokens_in, run.usage.tokens_out) == (12, 3), "the refused call cost nothing"


@pytest.mark.anyio
async def test_a_server_error_is_retried_then_fails_the_run_with_the_status(
    app: App, fake: FakeOpenAI
) -> None:
    message = "The server had an error while processing your request. Sorry about that!"
    fake.queue(Error(500, message, "server_error"), Error(500, message, "server_error"))
    run, events = await fire(app, fake, {"max_model_retries": 1})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"the OpenAI-compatible server at {fake.url} had a server error (HTTP 500: {message}): "
        "try again later (gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert (events[0].data["reason"], events[0].data["status_code"]) == ("server_error", 500)
    assert len(fake.received) == 2


@pytest.mark.anyio
async def test_an_error_inside_the_stream_is_retried_and_the_retry_answers(
    app: App, fake: FakeOpenAI
) -> None:
    fake.queue(
        completion(
            text("Partial "),
            error={"message": "The model is overloaded.", "type": "server_error", "code": None},
        ),
        completion(text("Complete answer."), prompt_tokens=20, completion_tokens=4),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Complete answer."
    assert kinds(events) == ["text", "retry", "text", "finish"]
    retry = events[1].data
    assert (retry["reason"], retry["status_code"]) == ("server_error", None)
    assert (
        "server error (an error inside the stream: The model is overloaded.)" in (retry["message"])
    )


@pytest.mark.anyio
async def test_a_request_that_gets_no_answer_times_out_and_fails_the_run(
    app: App, fake: FakeOpenAI, short_timeout_backend: str
) -> None:
    fake.queue(Hang(), Hang())
    run, events = await fire(app, fake, {"max_model_retries": 1}, backend=short_timeout_backend)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"openai did not answer within 0.2 s (model {MODEL!r} at {fake.url}): the service is "
        "slow or unreachable; try again later or raise timeout_s (gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert events[0].data["reason"] == "timeout"
    assert len(fake.received) == 2
    assert await fake.wait(fake.disconnected), "the client hung up on the silent server"


@pytest.mark.anyio
async def test_a_server_that_sends_no_usage_counts_zero_tokens(app: App, fake: FakeOpenAI) -> None:
    fake.queue(completion(text("No counts here."), usage=False))
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "No counts here."
    assert run.usage == Usage()


@pytest.mark.anyio
async def test_a_model_that_stalls_past_timeout_s_fails_the_run_and_the_stream_is_closed(
    app: App, fake: FakeOpenAI
) -> None:
    fake.queue(completion(text("Thinking about it"), stall=True))
    # Long enough for a loaded machine to send the request and read the first delta.
    run, events = await fire(app, fake, timeout_s=3)

    message_text = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=3 s while waiting for the model" in message_text
    assert [e.data["delta"] for e in events if e.kind == "text"] == ["Thinking about it"]
    assert await fake.wait(fake.disconnected), "the deadline closed the HTTP response"


@pytest.mark.anyio
async def test_cancelling_a_run_closes_the_provider_stream_at_once(
    app: App, fake: FakeOpenAI
) -> None:
    fake.queue(completion(text("Working on it"), stall=True))
    agent = await gpt_agent(app, base_url=fake.url)
    engine = runner(app)
    run = engine.accept(agent, PAYLOAD, kind="test")
    finished: list[Run] = []

    async def execute() -> None:
        finished.append(await engine.execute(run, agent, available_sources(app, SANDBOX)))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(execute)
            assert await fake.wait(fake.stalled)
            assert engine.cancel(run.run_id)
            assert await fake.wait(fake.disconnected, 2.0), "the stream was not closed"

    row, events = stored(app, run.run_id)
    assert finished[0].status == row.status == "cancelled"
    assert_complete(row, events)
    assert row.error_message == "the run was cancelled before it finished"


# --- the backend alone: errors -------------------------------------------------------


def backend(fake: FakeOpenAI, **settings: Any) -> OpenAIBackend:
    settings.setdefault("base_url", fake.url)
    return OpenAIBackend(
        ModelSettings(backend="openai", model=MODEL, **settings),
        EnvCredentials({"openai": KEY}),
    )


def request(settings: ModelSettings, *, tools: list[ToolSpec] | None = None) -> ModelRequest:
    return ModelRequest(
        system="Be brief.",
        messages=[Message("user", "What is the order status?")],
        tools=tools or [],
        settings=settings,
        turn=0,
    )


async def play(model: OpenAIBackend) -> list[ModelEvent]:
    return [event async for event in model.stream(request(model.settings))]


async def failure(model: OpenAIBackend) -> ModelError:
    with pytest.raises(ModelError) as caught:
        await play(model)
    return caught.value


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
async def test_an_error_that_quotes_the_key_is_redacted(fake: FakeOpenAI) -> None:
    fake.queue(Error(401, f"key {KEY} is not valid for this server", "authentication_error"))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable, error.status_code) == ("auth", False, 401)
    assert KEY not in str(error)
    assert "key [redacted] is not valid for this server" in str(error)


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
async def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIBackend(
        ModelSettings(backend="openai", model=MODEL, base_url=f"http://127.0.0.1:{port}/v1"),
        EnvCredentials({"openai": KEY}),
    )
    error = await failure(model)
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach openai at http://127.0.0.1:{port}/v1 (")
    assert str(error).endswith("check that the server is running there and model_settings.base_url")


@pytest.mark.anyio
async def test_a_stream_cut_before_the_finish_is_a_retryable_connection_error(
    fake: FakeOpenAI,
) -> None:
    fake.queue(completion(text("Half an ans"), finish=False))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("connection", True)
    assert "ended before the answer was complete (no finish_reason)" in str(error)


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
@pytest.mark.parametrize(
    ("vendor", "normalised"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "other"),
        ("something_new", "other"),
    ],
)
async def test_finish_reasons_are_normalised(
    fake: FakeOpenAI, vendor: str, normalised: str
) -> None:
    fake.queue(completion(text("x"), finish_reason=vendor, prompt_tokens=8, completion_tokens=2))
    events = await play(backend(fake))
    assert events == [TextDelta("x"), TurnEnd(normalised, Usage(tokens_in=8, tokens_out=2))]


@pytest.mark.anyio
async def test_tool_calls_are_assembled_by_index_after_the_text(fake: FakeOpenAI) -> None:
    fake.queue(
        completion(
            text("Two lookups."),
            tool_call("call_a", "clock_now", {"timezone": "Europe/Paris"}),
            tool_call("call_b", "clock_now", {}, pieces=1),
        )
    )
    events = await play(backend(fake))
    assert events[:3] == [
        TextDelta("Two lookups."),
        ToolCallRequest("call_a", "clock_now", {"timezone": "Europe/Paris"}),
        ToolCallRequest("call_b", "clock_now", {}),
    ]
    assert isinstance(events[3], TurnEnd) and events[3].stop_reason == "tool_use"


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


def test_the_registry_finds_the_backend_under_its_name() -> None:
    assert model_backends.get("openai") is OpenAIBackend


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
