"""The Anthropic backend, with the real ``anthropic`` SDK pointed by base URL at a local
server that speaks the Messages API (``tests.fakes.anthropic_server``).

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the tools advertised, the
tool calls and results sent back). The error table and the wire details are checked on
the backend alone, still through the SDK and the server.
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
from cairn.models.anthropic import AnthropicBackend, build_params, retry_after_s, to_messages
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
from cairn.models.registry import model_backends
from cairn.runner.engine import Runner
from cairn.runner.messages import render_event_message
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.sources import available_sources
from cairn.tools.base import ToolSpec
from tests.fakes.anthropic_server import (
    MODEL,
    Block,
    Error,
    FakeAnthropic,
    Hang,
    message,
    serve_anthropic,
    text,
    tool_use,
)
from tests.runner.helpers import (
    BUILTIN_NAMES,
    SANDBOX,
    assert_complete,
    assert_failed,
    kinds,
    stored,
)

KEY = "sk-ant-test-7f3a9c2e5b1d4f60"
PROMPT = "You look up orders and report what you found."
PAYLOAD = {"order": "A-17", "title": "broken checkout"}
SHORT_TIMEOUT_BACKEND = "anthropic-short-timeout"


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_anthropic() as server:
        yield server


@pytest.fixture
def fake(anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """The server, with nothing queued or received; every queued reply must be used."""
    anthropic_server.reset()
    yield anthropic_server
    assert anthropic_server.pending == 0, "a queued reply was never requested"


@pytest.fixture
def short_timeout_backend() -> Iterator[str]:
    """The Anthropic backend with a 0.2 s request timeout, registered as a plugin would be,
    so a run can hit the SDK's timeout well before its own deadline."""
    model_backends.register(SHORT_TIMEOUT_BACKEND, partial(AnthropicBackend, request_timeout_s=0.2))
    yield SHORT_TIMEOUT_BACKEND
    model_backends.unregister(SHORT_TIMEOUT_BACKEND)


class NoKey:
    """Credentials with nothing configured (not even in the environment)."""

    def api_key(self, backend: str) -> str | None:
        return None


def runner(app: App, **options: Any) -> Runner:
    """A runner that gives the test key to every backend and retries fast."""
    options.setdefault("credentials", lambda _sandbox_id: EnvCredentials({"anthropic": KEY}))
    return Runner(app.store, app.tool_context, retry_base_s=0.01, **options)


async def claude_agent(app: App, fake: FakeAnthropic, **settings: Any) -> Agent:
    """An agent on the Anthropic backend, talking to the fake server, with the builtin tools."""
    settings.setdefault("backend", "anthropic")
    agent, _warnings = await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug="claude",
            system_prompt=PROMPT,
            tool_sources=["builtin"],
            model_settings=ModelSettings(model=MODEL, base_url=fake.url, **settings),
        ),
    )
    return agent


async def fire(
    app: App, fake: FakeAnthropic, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh Claude agent; the row and events as the ledger holds them."""
    agent = await claude_agent(app, fake, **settings)
    run = await runner(app, **(runner_options or {})).fire(
        agent, PAYLOAD, available_sources(app, SANDBOX), kind="test"
    )
    return stored(app, run.run_id)


def assert_key_never_leaked(run: Run, events: list[RunEvent]) -> None:
    """The key appears nowhere a person or a log could read it."""
    assert KEY not in (run.error_message or "")
    assert KEY not in json.dumps([event.data for event in events], default=str)
    trace = run.tool_resolution_trace
    assert trace is None or KEY not in json.dumps(trace.to_dict(), default=str)


# --- runs ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_run_with_two_tool_calls_over_two_turns_round_trips_through_the_api(
    app: App, fake: FakeAnthropic
) -> None:
    document = {"order": {"id": "A-17", "status": "shipped"}}
    fake.queue(
        message(
            text("Looking the order up."),
            tool_use("toolu_01", "json_extract", {"document": document, "path": "order.status"}),
            input_tokens=120,
            cache_write=400,
            output_tokens=30,
        ),
        message(
            tool_use("toolu_02", "regex_find", {"text": "A-17", "pattern": "("}),
            input_tokens=160,
            cache_read=400,
            output_tokens=22,
        ),
        message(
            text("Order A-17 ", "has shipped."),
            input_tokens=210,
            cache_read=400,
            output_tokens=9,
        ),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "tool_errors"  # the second call's pattern does not compile
    assert run.output_text == "Order A-17 has shipped."
    assert [(c.call_id, c.name) for c in run.tool_calls] == [
        ("toolu_01", "json_extract"),
        ("toolu_02", "regex_find"),
    ]
    assert run.tool_calls[0].arguments == {"document": document, "path": "order.status"}
    assert run.tool_calls[0].result == "shipped"
    assert run.tool_calls[1].error is not None and "invalid pattern" in run.tool_calls[1].error
    # Every prompt token once (cache reads and writes included), output as reported.
    assert run.usage.tokens_in == (120 + 400) + (160 + 400) + (210 + 400)
    assert run.usage.tokens_out == 30 + 22 + 9
    assert run.usage.cache_read_tokens == 800
    assert run.usage.cache_write_tokens == 400
    assert kinds(events) == [
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
    assert first.path == "/v1/messages"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["anthropic-version"] == "2026-10-21"
    assert first.body["model"] == MODEL
    assert first.body["max_tokens"] == 1024
    assert first.body["stream"] is True
    assert first.body["system"] == PROMPT
    assert "temperature" not in first.body
    assert first.body["messages"] == [{"role": "user", "content": render_event_message(PAYLOAD)}]
    advertised = {tool["name"]: tool for tool in first.body["tools"]}
    assert sorted(advertised) == BUILTIN_NAMES
    assert advertised["regex_find"]["input_schema"]["required"] == ["text", "pattern"]
    assert all(tool["input_schema"]["type"] == "object" for tool in advertised.values())
    assert all(tool["description"] for tool in advertised.values())

    call_1 = {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "json_extract",
        "input": {"document": document, "path": "order.status"},
    }
    assert second.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Looking the order up."}, call_1],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "is_error": False,
                    "content": "shipped",
                }
            ],
        },
    ]
    assert second.body["tools"] == first.body["tools"]
    *earlier, asked, answered = third.body["messages"]
    assert earlier == second.body["messages"]
    assert asked == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_02",
                "name": "regex_find",
                "input": {"text": "A-17", "pattern": "("},
            }
        ],
    }
    (result,) = answered["content"]
    assert answered["role"] == "user"
    assert (result["type"], result["tool_use_id"], result["is_error"]) == (
        "tool_result",
        "toolu_02",
        True,
    )
    assert result["content"] == run.tool_calls[1].error
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_streamed_text_arrives_as_several_text_events(app: App, fake: FakeAnthropic) -> None:
    pieces = ["The checkout ", "is broken ", "for orders ", "over $100."]
    fake.queue(message(text(*pieces), input_tokens=42, output_tokens=17))
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
async def test_a_rejected_api_key_fails_the_run_saying_which_variable_to_set(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(Error(401, "authentication_error", "invalid x-api-key"))
    run, events = await fire(app, fake)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "anthropic rejected the API key (HTTP 401: invalid x-api-key): set ANTHROPIC_API_KEY "
        "or store a credential for 'anthropic'"
    )
    assert kinds(events) == ["error"], "a bad key is not retried"
    assert run.outcome == "interrupted"
    assert len(fake.received) == 1
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_a_missing_key_fails_the_run_before_any_request(
    app: App, fake: FakeAnthropic
) -> None:
    run, events = await fire(app, fake, {"credentials": lambda _sandbox_id: NoKey()})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "no API key for anthropic: set ANTHROPIC_API_KEY or store a credential for 'anthropic'"
    )
    assert fake.received == []


@pytest.mark.anyio
async def test_a_rate_limit_is_retried_after_the_wait_the_api_asked_for(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(
        Error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            headers={"retry-after": "1"},
        ),
        message(text("Done."), input_tokens=12, output_tokens=3),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Done."
    assert kinds(events) == ["retry", "text", "finish"]
    retry = events[0].data
    assert (retry["attempt"], retry["reason"], retry["status_code"]) == (1, "rate_limited", 429)
    assert retry["wait_s"] == 1.0, "the API's retry-after wins over the runner's backoff"
    assert retry["message"].startswith("anthropic rate-limited the request (HTTP 429: Number")
    assert run.duration_ms is not None and run.duration_ms >= 1000
    assert len(fake.received) == 2
    assert fake.received[0].body == fake.received[1].body, "the retry sends the same request"
    assert (run.usage.tokens_in, run.usage.tokens_out) == (12, 3), "the refused call cost nothing"


@pytest.mark.anyio
async def test_a_server_error_is_retried_then_fails_the_run_with_the_status(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(
        Error(500, "api_error", "Internal server error"),
        Error(500, "api_error", "Internal server error"),
    )
    run, events = await fire(app, fake, {"max_model_retries": 1})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "anthropic had a server error (HTTP 500: Internal server error): try again later "
        "(gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert (events[0].data["reason"], events[0].data["status_code"]) == ("server_error", 500)
    assert len(fake.received) == 2


@pytest.mark.anyio
async def test_an_overloaded_error_mid_stream_is_retried_and_the_retry_answers(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(
        message(text("Partial "), error={"type": "overloaded_error", "message": "Overloaded"}),
        message(text("Complete answer."), input_tokens=20, output_tokens=4),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Complete answer."
    assert kinds(events) == ["text", "retry", "text", "finish"]
    retry = events[1].data
    assert (retry["reason"], retry["status_code"]) == ("server_error", None)
    assert "overloaded (an error event mid-stream: Overloaded)" in retry["message"]


@pytest.mark.anyio
async def test_a_request_that_gets_no_answer_times_out_and_fails_the_run(
    app: App, fake: FakeAnthropic, short_timeout_backend: str
) -> None:
    fake.queue(Hang(), Hang())
    run, events = await fire(app, fake, {"max_model_retries": 1}, backend=short_timeout_backend)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"anthropic did not answer within 0.2 s (model {MODEL!r} at {fake.url}): the service "
        "is slow or unreachable; try again later or raise timeout_s (gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert events[0].data["reason"] == "timeout"
    assert len(fake.received) == 2
    assert await fake.wait(fake.disconnected), "the client hung up on the silent server"


@pytest.mark.anyio
async def test_a_model_that_stalls_past_timeout_s_fails_the_run_and_the_stream_is_closed(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(message(text("Thinking about it"), stall=True))
    run, events = await fire(app, fake, timeout_s=0.5)

    message_text = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=0.5 s while waiting for the model" in message_text
    assert [e.data["delta"] for e in events if e.kind == "text"] == ["Thinking about it"]
    assert await fake.wait(fake.disconnected), "the deadline closed the HTTP response"


@pytest.mark.anyio
async def test_cancelling_a_run_closes_the_provider_stream_at_once(
    app: App, fake: FakeAnthropic
) -> None:
    fake.queue(message(text("Working on it"), stall=True))
    agent = await claude_agent(app, fake)
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


def backend(fake: FakeAnthropic, **settings: Any) -> AnthropicBackend:
    settings.setdefault("base_url", fake.url)
    return AnthropicBackend(
        ModelSettings(backend="anthropic", model=MODEL, **settings),
        EnvCredentials({"anthropic": KEY}),
    )


def request(settings: ModelSettings, *, tools: list[ToolSpec] | None = None) -> ModelRequest:
    return ModelRequest(
        system="Be brief.",
        messages=[Message("user", "What is the order status?")],
        tools=tools or [],
        settings=settings,
        turn=0,
    )


async def play(model: AnthropicBackend) -> list[ModelEvent]:
    return [event async for event in model.stream(request(model.settings))]


async def failure(model: AnthropicBackend) -> ModelError:
    with pytest.raises(ModelError) as caught:
        await play(model)
    return caught.value


ERROR_CASES = [
    pytest.param(
        Error(403, "permission_error", "Your API key does not have permission to use the model"),
        ("auth", False, 403, None),
        f"anthropic refused the request (HTTP 403: Your API key does not have permission to use "
        f"the model): the API key may not use model {MODEL!r}; check the key's workspace",
        id="403",
    ),
    pytest.param(
        Error(404, "not_found_error", f"model: {MODEL}"),
        ("unknown_model", False, 404, None),
        f"anthropic does not know model {MODEL!r} (HTTP 404: model: {MODEL}): check "
        "model_settings.model and base_url (requests went to http://127.0.0.1:",
        id="404",
    ),
    pytest.param(
        Error(400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
        ("context_too_long", False, 400, None),
        f"the conversation is too long for model {MODEL!r} (HTTP 400: prompt is too long: "
        "208310 tokens > 200000 maximum): shorten the system prompt, the event payload or the "
        "tool results, or lower max_tokens",
        id="400-context",
    ),
    pytest.param(
        Error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
        ("context_too_long", False, 413, None),
        "the conversation is too long for model",
        id="413",
    ),
    pytest.param(
        Error(400, "invalid_request_error", "messages: roles must alternate"),
        ("bad_request", False, 400, None),
        "anthropic rejected the request (HTTP 400: messages: roles must alternate)",
        id="400",
    ),
    pytest.param(
        Error(402, "billing_error", "Your credit balance is too low"),
        ("other", False, 402, None),
        "anthropic refused the request for billing (HTTP 402: Your credit balance is too low)",
        id="402",
    ),
    pytest.param(
        Error(429, "rate_limit_error", "Too many requests", headers={"retry-after-ms": "1500"}),
        ("rate_limited", True, 429, 1.5),
        "anthropic rate-limited the request (HTTP 429: Too many requests); it asked to wait 1.5 s",
        id="429-retry-after-ms",
    ),
    pytest.param(
        Error(
            429,
            "rate_limit_error",
            "Your organization has reached its spend limit",
            error_code="enforced_spend_limit_reached",
        ),
        ("rate_limited", False, 429, None),
        "anthropic refused the request: the spend limit is reached",
        id="429-spend-limit",
    ),
    pytest.param(
        Error(529, "overloaded_error", "Overloaded", headers={"retry-after": "4"}),
        ("server_error", True, 529, 4.0),
        "anthropic is overloaded (HTTP 529: Overloaded): try again later",
        id="529",
    ),
    pytest.param(
        Error(503, "api_error", "Service unavailable", headers={"x-should-retry": "false"}),
        ("server_error", False, 503, None),
        "anthropic had a server error (HTTP 503: Service unavailable)",
        id="503-should-not-retry",
    ),
    pytest.param(
        Error(504, "timeout_error", "Request timed out"),
        ("timeout", True, 504, None),
        "anthropic timed out on its side (HTTP 504: Request timed out)",
        id="504",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "expected", "text_start"), ERROR_CASES)
async def test_error_responses_become_model_errors_that_say_what_to_do(
    fake: FakeAnthropic,
    reply: Error,
    expected: tuple[str, bool, int, float | None],
    text_start: str,
) -> None:
    fake.queue(reply)
    error = await failure(backend(fake))
    assert (error.reason, error.retryable, error.status_code, error.retry_after_s) == expected
    assert error.backend == "anthropic"
    assert str(error).startswith(text_start)
    assert KEY not in str(error)


@pytest.mark.anyio
async def test_an_error_that_quotes_the_key_is_redacted(fake: FakeAnthropic) -> None:
    fake.queue(Error(401, "authentication_error", f"invalid x-api-key: {KEY}"))
    error = await failure(backend(fake))
    assert KEY not in str(error)
    assert "invalid x-api-key: [redacted]" in str(error)


@pytest.mark.anyio
async def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = AnthropicBackend(
        ModelSettings(backend="anthropic", model=MODEL, base_url=f"http://127.0.0.1:{port}"),
        EnvCredentials({"anthropic": KEY}),
    )
    error = await failure(model)
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach anthropic at http://127.0.0.1:{port} (")
    assert str(error).endswith("check the network and model_settings.base_url")


@pytest.mark.anyio
async def test_a_stream_that_goes_silent_mid_answer_times_out_and_is_closed(
    fake: FakeAnthropic,
) -> None:
    fake.queue(message(text("Let me"), stall=True))
    model = AnthropicBackend(
        ModelSettings(backend="anthropic", model=MODEL, base_url=fake.url),
        EnvCredentials({"anthropic": KEY}),
        request_timeout_s=0.2,
    )
    error = await failure(model)
    assert (error.reason, error.retryable) == ("timeout", True)
    assert str(error).startswith("anthropic did not answer within 0.2 s")
    assert await fake.wait(fake.disconnected)


@pytest.mark.anyio
async def test_a_stream_cut_before_message_stop_is_a_retryable_connection_error(
    fake: FakeAnthropic,
) -> None:
    fake.queue(message(text("Half an ans"), complete=False))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("connection", True)
    assert "ended before the message was complete" in str(error)


@pytest.mark.anyio
async def test_tool_arguments_cut_off_by_max_tokens_are_not_run(fake: FakeAnthropic) -> None:
    truncated = Block(
        {"type": "tool_use", "id": "toolu_09", "name": "regex_find", "input": {}},
        (
            {"type": "input_json_delta", "partial_json": ""},
            {"type": "input_json_delta", "partial_json": '{"text": "A-17", "pat'},
        ),
        is_tool_use=True,
    )
    fake.queue(message(truncated, stop_reason="max_tokens"))
    error = await failure(backend(fake, max_tokens=64))
    assert (error.reason, error.retryable) == ("other", False)
    assert str(error) == (
        "anthropic's answer reached max_tokens=64 in the middle of a call to tool 'regex_find', "
        "so the call was not run: raise max_tokens"
    )


@pytest.mark.anyio
async def test_tool_arguments_that_are_not_an_object_are_not_run(fake: FakeAnthropic) -> None:
    fake.queue(message(tool_use("toolu_10", "clock_now", ["UTC"])))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("other", True)
    assert str(error).startswith(
        "anthropic sent arguments for tool 'clock_now' that are not a JSON object (a JSON list)"
    )


@pytest.mark.anyio
async def test_temperature_is_sent_when_set_and_its_refusal_says_how_to_fix_it(
    fake: FakeAnthropic,
) -> None:
    error = await failure(backend(fake, temperature=0.3))
    assert fake.received[0].body["temperature"] == 0.3
    assert (error.reason, error.retryable) == ("bad_request", False)
    assert str(error) == (
        "anthropic rejected the request (HTTP 400: temperature: Extra inputs are not "
        "permitted); this agent sets temperature=0.3, which the Anthropic API (version "
        "2026-10-21) no longer accepts: remove temperature from its model_settings"
    )


# --- the backend alone: the stream -----------------------------------------------------


@pytest.mark.anyio
async def test_message_delta_usage_is_cumulative_so_the_last_counts_win(
    fake: FakeAnthropic,
) -> None:
    fake.queue(
        message(
            text("ok"),
            input_tokens=50,
            cache_read=1000,
            cache_write=0,
            final_input={"input_tokens": 55, "cache_creation_input_tokens": 20},
            output_tokens=40,
        )
    )
    *_, end = await play(backend(fake))
    assert isinstance(end, TurnEnd)
    assert end.usage.tokens_in == 55 + 1000 + 20
    assert (end.usage.tokens_out, end.usage.cache_read_tokens, end.usage.cache_write_tokens) == (
        40,
        1000,
        20,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("vendor", "normalised"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("model_context_window_exceeded", "max_tokens"),
        ("refusal", "other"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reasons_are_normalised(
    fake: FakeAnthropic, vendor: str, normalised: str
) -> None:
    fake.queue(message(text("x"), stop_reason=vendor, input_tokens=8, output_tokens=2))
    events = await play(backend(fake))
    assert events == [TextDelta("x"), TurnEnd(normalised, Usage(tokens_in=8, tokens_out=2))]


@pytest.mark.anyio
async def test_tool_calls_come_after_the_text_and_before_the_turn_end(
    fake: FakeAnthropic,
) -> None:
    fake.queue(
        message(
            text("Two lookups."),
            tool_use("toolu_a", "clock_now", {"timezone": "Europe/Paris"}),
            tool_use("toolu_b", "clock_now", {}, pieces=1),
        )
    )
    events = await play(backend(fake))
    assert events[:3] == [
        TextDelta("Two lookups."),
        ToolCallRequest("toolu_a", "clock_now", {"timezone": "Europe/Paris"}),
        ToolCallRequest("toolu_b", "clock_now", {}),
    ]
    assert isinstance(events[3], TurnEnd) and events[3].stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"retry-after": "later"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_as_the_sdk_reads_it(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert retry_after_s(headers) == seconds


def test_the_registry_finds_the_backend_under_its_name() -> None:
    assert model_backends.get("anthropic") is AnthropicBackend


def test_conversation_edges_map_to_valid_messages() -> None:
    call = ToolCallRequest("toolu_1", "json_extract", {"path": "a"})
    turns = to_messages(
        [
            Message("user", "hi"),
            Message("assistant", "", (call,)),
            Message(
                "tool",
                tool_results=(ToolResultMessage("toolu_1", "json_extract", {"a": [1, 2]}),),
            ),
            Message("assistant", ""),  # an empty turn is left out: the API refuses it
        ]
    )
    assert turns == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "json_extract",
                    "input": {"path": "a"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "is_error": False,
                    "content": '{"a": [1, 2]}',
                }
            ],
        },
    ]
    empty = to_messages(
        [Message("tool", tool_results=(ToolResultMessage("toolu_2", "clock_now", ""),))]
    )
    assert empty == [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "is_error": False}],
        }
    ]


def test_params_leave_out_what_is_not_set_and_give_every_tool_an_object_schema() -> None:
    settings = ModelSettings(backend="anthropic", model=MODEL, max_tokens=300)
    params = build_params(
        ModelRequest(
            system="",
            messages=[Message("user", "hi")],
            tools=[ToolSpec("ping", "", {"properties": {}})],
            settings=settings,
            turn=0,
        )
    )
    assert params == {
        "model": MODEL,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}],
    }
