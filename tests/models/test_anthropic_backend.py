"""The Anthropic backend, with the real ``anthropic`` SDK pointed by base URL at a local
server that speaks the Messages API (``tests.fakes.anthropic_server``).

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the tools advertised, the
tool calls and results sent back). The error table and the wire details are checked on
the backend alone, still through the SDK and the server.

Only what this vendor alone has is here (its wire mapping, its own error codes and
replies); what every backend does the same way is checked once, over the three vendors,
in ``test_vendor_backends.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Run, RunEvent
from cairn.domain.tools import ToolSpec
from cairn.models.anthropic import AnthropicBackend, build_params, retry_after_s, to_messages
from cairn.models.base import (
    Message,
    ModelRequest,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.runner.messages import render_event_message
from cairn.services.app import App
from tests.fakes.anthropic_server import (
    MODEL,
    Block,
    Error,
    FakeAnthropic,
    message,
    serve_anthropic,
    text,
    tool_use,
)
from tests.models import vendors
from tests.models.vendors import ANTHROPIC, PAYLOAD, PROMPT, failure, play, reset_and_check
from tests.runner.helpers import (
    BUILTIN_NAMES,
    assert_complete,
    kinds,
)

KEY = ANTHROPIC.key


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_anthropic() as server:
        yield server


@pytest.fixture
def fake(anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    yield from reset_and_check(anthropic_server)


async def fire(
    app: App, fake: FakeAnthropic, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh anthropic agent; the row and events as the ledger holds them."""
    return await vendors.fire(app, ANTHROPIC, fake, runner_options, **settings)


def assert_key_never_leaked(run: Run, events: list[RunEvent]) -> None:
    vendors.assert_key_never_leaked(ANTHROPIC, run, events)


def backend(fake: FakeAnthropic, **settings: Any) -> AnthropicBackend:
    model: AnthropicBackend = vendors.backend(ANTHROPIC, fake.url, **settings)
    return model


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
    # The model that answered each turn, as the vendor named it (gen_ai.response.model).
    assert [t.get("model") for t in events[-1].data["turns"]] == [MODEL] * 3

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


# --- the backend alone: errors -------------------------------------------------------


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
