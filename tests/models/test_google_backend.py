"""The Google backend, with the real ``google-genai`` SDK pointed by base URL at a local
server that speaks the Gemini REST API (``tests.fakes.google_server``).

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the functions declared, the
calls and results sent back, the key header). The error table and the wire details are
checked on the backend alone, still through the SDK and the server.
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
from cairn.models.google import GoogleBackend, GoogleProvider, retry_after_s, split_version
from cairn.models.registry import model_backends
from cairn.runner.engine import Runner
from cairn.runner.messages import render_event_message
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.sources import available_sources
from cairn.tools.base import ToolSpec
from tests.fakes.google_server import (
    MODEL,
    Error,
    FakeGemini,
    Hang,
    answer,
    call,
    error_info,
    retry_info,
    serve_google,
    thought,
)
from tests.runner.helpers import (
    BUILTIN_NAMES,
    SANDBOX,
    assert_complete,
    assert_failed,
    kinds,
    stored,
)

KEY = "AIzaSy-test-4c1d9e7f2a6b8035"
PROMPT = "You look up orders and report what you found."
PAYLOAD = {"order": "A-17", "title": "broken checkout"}
SHORT_TIMEOUT_BACKEND = "google-short-timeout"
SIGNATURE = b"\x8a\x01opaque-thought-signature"


@pytest.fixture(scope="module")
def google_server() -> Iterator[FakeGemini]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_google() as server:
        yield server


@pytest.fixture
def fake(google_server: FakeGemini) -> Iterator[FakeGemini]:
    """The server, with nothing queued or received; every queued reply must be used."""
    google_server.reset()
    yield google_server
    assert google_server.pending == 0, "a queued reply was never requested"


@pytest.fixture
def short_timeout_backend() -> Iterator[str]:
    """The Google backend with a 0.2 s request timeout, registered as a plugin would be,
    so a run can hit the SDK's timeout well before its own deadline."""
    model_backends.register(SHORT_TIMEOUT_BACKEND, partial(GoogleBackend, request_timeout_s=0.2))
    yield SHORT_TIMEOUT_BACKEND
    model_backends.unregister(SHORT_TIMEOUT_BACKEND)


class NoKey:
    """Credentials with nothing configured (not even in the environment)."""

    def api_key(self, backend: str) -> str | None:
        return None


def runner(app: App, **options: Any) -> Runner:
    """A runner that gives the test key to every backend and retries fast."""
    options.setdefault("credentials", lambda _sandbox_id: EnvCredentials({"google": KEY}))
    return Runner(app.store, app.tool_context, retry_base_s=0.01, **options)


async def gemini_agent(app: App, fake: FakeGemini, **settings: Any) -> Agent:
    """An agent on the Google backend, talking to the fake server, with the builtin tools."""
    settings.setdefault("backend", "google")
    agent, _warnings = await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug="gemini",
            system_prompt=PROMPT,
            tool_sources=["builtin"],
            model_settings=ModelSettings(model=MODEL, base_url=fake.url, **settings),
        ),
    )
    return agent


async def fire(
    app: App, fake: FakeGemini, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh Gemini agent; the row and events as the ledger holds them."""
    agent = await gemini_agent(app, fake, **settings)
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


def declared_schema(declaration: dict[str, Any]) -> Any:
    """A declaration's JSON Schema. SDK 3.6 sends it under the proto field name
    ``parameters_json_schema``, which the API accepts as it accepts ``parametersJsonSchema``."""
    return declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema"))


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# --- runs ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_run_with_two_tool_calls_over_two_turns_round_trips_through_the_api(
    app: App, fake: FakeGemini
) -> None:
    document = {"order": {"id": "A-17", "status": "shipped"}}
    fake.queue(
        answer(
            "Looking the order up.",
            call(
                "json_extract", {"document": document, "path": "order.status"}, signature=SIGNATURE
            ),
            prompt_tokens=520,
            cached_tokens=400,
            output_tokens=30,
            thoughts_tokens=12,
        ),
        answer(
            call("regex_find", {"text": "A-17", "pattern": "("}, call_id="fc-api-2"),
            prompt_tokens=560,
            cached_tokens=400,
            output_tokens=22,
        ),
        answer("Order A-17 ", "has shipped.", prompt_tokens=610, output_tokens=9),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "tool_errors"  # the second call's pattern does not compile
    assert run.output_text == "Order A-17 has shipped."
    assert [(c.call_id, c.name) for c in run.tool_calls] == [
        ("gemini_call_0_0", "json_extract"),  # Gemini gave no id: made up, stable per turn
        ("fc-api-2", "regex_find"),  # Gemini's own id is kept
    ]
    assert run.tool_calls[0].arguments == {"document": document, "path": "order.status"}
    assert run.tool_calls[0].result == "shipped"
    assert run.tool_calls[1].error is not None and "invalid pattern" in run.tool_calls[1].error
    # promptTokenCount already includes the cached share; thinking counts as output.
    assert run.usage.tokens_in == 520 + 560 + 610
    assert run.usage.cache_read_tokens == 800
    assert run.usage.cache_write_tokens == 0
    assert run.usage.tokens_out == (30 + 12) + 22 + 9
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
    assert first.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert first.query == {"alt": "sse"}, "the key travels in a header, never in the URL"
    assert first.headers["x-goog-api-key"] == KEY
    assert first.headers["x-server-timeout"] == "120"
    assert first.body["systemInstruction"] == {"parts": [{"text": PROMPT}], "role": "user"}
    assert first.body["generationConfig"] == {"maxOutputTokens": 1024}
    assert first.body["contents"] == [
        {"role": "user", "parts": [{"text": render_event_message(PAYLOAD)}]}
    ]
    (tool,) = first.body["tools"]
    declared = {d["name"]: d for d in tool["functionDeclarations"]}
    assert sorted(declared) == BUILTIN_NAMES
    assert all(d["description"] for d in declared.values())
    # The tools' JSON Schemas go as they are, not squeezed into OpenAPI's subset.
    extract = declared_schema(declared["json_extract"])
    assert extract["properties"]["document"] == {}
    assert extract["required"] == ["document", "path"]
    assert declared_schema(declared["regex_find"])["properties"]["max_matches"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
    }
    assert all(declared_schema(d)["type"] == "object" for d in declared.values())

    asked_1 = {
        "role": "model",
        "parts": [
            {"text": "Looking the order up."},
            {
                "functionCall": {
                    "name": "json_extract",
                    "args": {"document": document, "path": "order.status"},
                },
                "thoughtSignature": b64(SIGNATURE),
            },
        ],
    }
    answered_1 = {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "json_extract", "response": {"output": "shipped"}}}
        ],
    }
    assert second.body["contents"][1:] == [asked_1, answered_1]
    assert second.body["tools"] == first.body["tools"]
    *earlier, asked_2, answered_2 = third.body["contents"]
    assert earlier == second.body["contents"]
    assert asked_2 == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "id": "fc-api-2",
                    "name": "regex_find",
                    "args": {"text": "A-17", "pattern": "("},
                }
            }
        ],
    }
    assert answered_2 == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "fc-api-2",
                    "name": "regex_find",
                    "response": {"error": run.tool_calls[1].error},
                }
            }
        ],
    }
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_streamed_text_arrives_as_several_text_events(app: App, fake: FakeGemini) -> None:
    pieces = ["The checkout ", "is broken ", "for orders ", "over $100."]
    fake.queue(answer(*pieces, prompt_tokens=42, output_tokens=17))
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "answered"
    assert [e.data["delta"] for e in events if e.kind == "text"] == pieces
    assert all(e.data["turn"] == 0 for e in events if e.kind == "text")
    assert run.output_text == "".join(pieces)
    # Every chunk repeated the running usage: the last one counts, not their sum.
    assert (run.usage.tokens_in, run.usage.tokens_out) == (42, 17)
    assert (run.usage.cache_read_tokens, run.usage.cache_write_tokens) == (0, 0)


@pytest.mark.anyio
async def test_a_rejected_api_key_fails_the_run_saying_which_variable_to_set(
    app: App, fake: FakeGemini
) -> None:
    fake.queue(Error(401, message="Request had invalid authentication credentials."))
    run, events = await fire(app, fake)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "google rejected the API key (HTTP 401 UNAUTHENTICATED: Request had invalid "
        "authentication credentials.): set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a "
        "credential for 'google'"
    )
    assert kinds(events) == ["error"], "a bad key is not retried"
    assert run.outcome == "interrupted"
    assert len(fake.received) == 1
    assert_key_never_leaked(run, events)


@pytest.mark.anyio
async def test_a_missing_key_fails_the_run_before_any_request(app: App, fake: FakeGemini) -> None:
    run, events = await fire(app, fake, {"credentials": lambda _sandbox_id: NoKey()})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "no API key for google: set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a credential "
        "for 'google'"
    )
    assert fake.received == []


@pytest.mark.anyio
async def test_a_rate_limit_is_retried_after_the_wait_the_api_asked_for(
    app: App, fake: FakeGemini
) -> None:
    fake.queue(
        Error(
            429,
            message="Resource has been exhausted (e.g. check quota).",
            headers={"retry-after": "1"},
        ),
        answer("Done.", prompt_tokens=12, output_tokens=3),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Done."
    assert kinds(events) == ["retry", "text", "finish"]
    retry = events[0].data
    assert (retry["attempt"], retry["reason"], retry["status_code"]) == (1, "rate_limited", 429)
    assert retry["wait_s"] == 1.0, "the API's retry-after wins over the runner's backoff"
    assert retry["message"] == (
        "google rate-limited the request (HTTP 429 RESOURCE_EXHAUSTED: Resource has been "
        "exhausted (e.g. check quota).); it asked to wait 1 s"
    )
    assert run.duration_ms is not None and run.duration_ms >= 1000
    assert len(fake.received) == 2, "the SDK did not retry on its own"
    assert fake.received[0].body == fake.received[1].body, "the retry sends the same request"
    assert (run.usage.tokens_in, run.usage.tokens_out) == (12, 3), "the refused call cost nothing"


@pytest.mark.anyio
async def test_a_server_error_is_retried_then_fails_the_run_with_the_status(
    app: App, fake: FakeGemini
) -> None:
    fake.queue(
        Error(500, message="An internal error has occurred."),
        Error(500, message="An internal error has occurred."),
    )
    run, events = await fire(app, fake, {"max_model_retries": 1})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        "google had a server error (HTTP 500 INTERNAL: An internal error has occurred.): try "
        "again later (gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert (events[0].data["reason"], events[0].data["status_code"]) == ("server_error", 500)
    assert len(fake.received) == 2


@pytest.mark.anyio
async def test_an_overloaded_error_frame_mid_stream_is_retried_and_the_retry_answers(
    app: App, fake: FakeGemini
) -> None:
    overloaded = Error(503, message="The model is overloaded. Please try again later.")
    fake.queue(
        answer("Partial ", error=overloaded.body()),
        answer("Complete answer.", prompt_tokens=20, output_tokens=4),
    )
    run, events = await fire(app, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Complete answer."
    assert kinds(events) == ["text", "retry", "text", "finish"]
    retry = events[1].data
    assert (retry["reason"], retry["status_code"]) == ("server_error", 503)
    assert retry["message"] == (
        "google is overloaded or unavailable (an error frame mid-stream, 503 UNAVAILABLE: The "
        "model is overloaded. Please try again later.): try again later"
    )
    assert (run.usage.tokens_in, run.usage.tokens_out) == (20, 4)


@pytest.mark.anyio
async def test_a_request_that_gets_no_answer_times_out_and_fails_the_run(
    app: App, fake: FakeGemini, short_timeout_backend: str
) -> None:
    fake.queue(Hang(), Hang())
    run, events = await fire(app, fake, {"max_model_retries": 1}, backend=short_timeout_backend)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"google did not answer within 0.2 s (model {MODEL!r} at {fake.url}): the service "
        "is slow or unreachable; try again later or raise timeout_s (gave up after 1 retries)"
    )
    assert kinds(events) == ["retry", "error"]
    assert events[0].data["reason"] == "timeout"
    assert len(fake.received) == 2
    assert fake.received[0].headers["x-server-timeout"] == "1"
    assert await fake.wait(fake.disconnected), "the client hung up on the silent server"


@pytest.mark.anyio
async def test_a_model_that_stalls_past_timeout_s_fails_the_run_and_the_stream_is_closed(
    app: App, fake: FakeGemini
) -> None:
    fake.queue(answer("Thinking about it", stall=True))
    run, events = await fire(app, fake, timeout_s=0.5)

    message_text = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=0.5 s while waiting for the model" in message_text
    assert [e.data["delta"] for e in events if e.kind == "text"] == ["Thinking about it"]
    assert await fake.wait(fake.disconnected), "the deadline closed the HTTP response"


@pytest.mark.anyio
async def test_cancelling_a_run_closes_the_provider_stream_at_once(
    app: App, fake: FakeGemini
) -> None:
    fake.queue(answer("Working on it", stall=True))
    agent = await gemini_agent(app, fake)
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


def backend(fake: FakeGemini, **settings: Any) -> GoogleBackend:
    settings.setdefault("base_url", fake.url)
    return GoogleBackend(
        ModelSettings(backend="google", model=MODEL, **settings),
        EnvCredentials({"google": KEY}),
    )


def request(
    settings: ModelSettings,
    *,
    tools: list[ToolSpec] | None = None,
    messages: list[Message] | None = None,
    turn: int = 0,
) -> ModelRequest:
    return ModelRequest(
        system="Be brief.",
        messages=messages or [Message("user", "What is the order status?")],
        tools=tools or [],
        settings=settings,
        turn=turn,
    )


async def play(model: GoogleBackend, **options: Any) -> list[ModelEvent]:
    return [event async for event in model.stream(request(model.settings, **options))]


async def failure(model: GoogleBackend) -> ModelError:
    with pytest.raises(ModelError) as caught:
        await play(model)
    return caught.value


DAILY_QUOTA = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [
        {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        }
    ],
}

ERROR_CASES = [
    pytest.param(
        Error(
            400,
            message="API key not valid. Please pass a valid API key.",
            details=(error_info("API_KEY_INVALID"),),
        ),
        ("auth", False, 400, None),
        "google rejected the API key (HTTP 400 INVALID_ARGUMENT: API key not valid. Please pass "
        "a valid API key.): set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a credential",
        id="400-bad-key",
    ),
    pytest.param(
        Error(403, message="Generative Language API has not been used in project 1234."),
        ("auth", False, 403, None),
        "google refused the request (HTTP 403 PERMISSION_DENIED: Generative Language API has "
        f"not been used in project 1234.): the API key may not use model {MODEL!r} or the "
        "Gemini API",
        id="403",
    ),
    pytest.param(
        Error(
            404,
            message=f"models/{MODEL} is not found for API version v1beta, or is not supported "
            "for generateContent.",
        ),
        ("unknown_model", False, 404, None),
        f"google does not know model {MODEL!r} (HTTP 404 NOT_FOUND: models/{MODEL} is not found "
        "for API version v1beta, or is not supported for generateContent.): check "
        "model_settings.model and base_url (requests went to http://127.0.0.1:",
        id="404",
    ),
    pytest.param(
        Error(
            400,
            message="The input token count (1200000) exceeds the maximum number of tokens "
            "allowed (1048576).",
        ),
        ("context_too_long", False, 400, None),
        f"the conversation is too long for model {MODEL!r} (HTTP 400 INVALID_ARGUMENT: The "
        "input token count (1200000) exceeds the maximum number of tokens allowed (1048576).): "
        "shorten the system prompt, the event payload or the tool results, or lower max_tokens",
        id="400-context",
    ),
    pytest.param(
        Error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        ("bad_request", False, 400, None),
        "google rejected the request (HTTP 400 FAILED_PRECONDITION: User location is not "
        "supported for the API use.)",
        id="400",
    ),
    pytest.param(
        Error(429, message="Resource has been exhausted.", details=(retry_info("1.5s"),)),
        ("rate_limited", True, 429, 1.5),
        "google rate-limited the request (HTTP 429 RESOURCE_EXHAUSTED: Resource has been "
        "exhausted.); it asked to wait 1.5 s",
        id="429-retry-info",
    ),
    pytest.param(
        Error(
            429,
            message="You exceeded your current quota.",
            headers={"retry-after": "2"},
            details=(retry_info("40s"),),
        ),
        ("rate_limited", True, 429, 2.0),
        "google rate-limited the request (HTTP 429 RESOURCE_EXHAUSTED: You exceeded your "
        "current quota.); it asked to wait 2 s",
        id="429-header-wins",
    ),
    pytest.param(
        Error(
            429,
            message="You exceeded your current quota.",
            details=(DAILY_QUOTA, retry_info("36000s")),
        ),
        ("rate_limited", False, 429, None),
        "google refused the request: the daily quota "
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier is used up",
        id="429-daily-quota",
    ),
    pytest.param(
        Error(503, message="The model is overloaded. Please try again later."),
        ("server_error", True, 503, None),
        "google is overloaded or unavailable (HTTP 503 UNAVAILABLE: The model is overloaded. "
        "Please try again later.): try again later",
        id="503",
    ),
    pytest.param(
        Error(504, message="Deadline expired before operation could complete."),
        ("timeout", True, 504, None),
        "google timed out on its side (HTTP 504 DEADLINE_EXCEEDED: Deadline expired",
        id="504",
    ),
    pytest.param(
        Error(500, message="An internal error has occurred.", headers={"retry-after": "3"}),
        ("server_error", True, 500, 3.0),
        "google had a server error (HTTP 500 INTERNAL: An internal error has occurred.)",
        id="500-retry-after",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "expected", "text_start"), ERROR_CASES)
async def test_error_responses_become_model_errors_that_say_what_to_do(
    fake: FakeGemini,
    reply: Error,
    expected: tuple[str, bool, int, float | None],
    text_start: str,
) -> None:
    fake.queue(reply)
    error = await failure(backend(fake))
    assert (error.reason, error.retryable, error.status_code, error.retry_after_s) == expected
    assert error.backend == "google"
    assert str(error).startswith(text_start)
    assert KEY not in str(error)
    assert len(fake.received) == 1, "the SDK's own retries are off"


@pytest.mark.anyio
async def test_a_proxy_error_page_is_quoted_short_on_one_line(fake: FakeGemini) -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 1000
    fake.queue(Error(502, html=page))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable, error.status_code) == ("server_error", True, 502)
    assert str(error).startswith(
        "google had a server error (HTTP 502 Bad Gateway: <html> <head><title>502 Bad Gateway"
    )
    assert len(str(error)) < 400


@pytest.mark.anyio
async def test_a_request_without_a_key_header_is_refused_like_the_api_does(
    fake: FakeGemini,
) -> None:
    """The fake's own check, so the key-header assertions above mean something."""
    import httpx2

    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{fake.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", json={}
        )
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.anyio
async def test_an_error_that_quotes_the_key_is_redacted(fake: FakeGemini) -> None:
    fake.queue(Error(401, message=f"API key {KEY} is not valid"))
    error = await failure(backend(fake))
    assert KEY not in str(error)
    assert "API key [redacted] is not valid" in str(error)


@pytest.mark.anyio
async def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = GoogleBackend(
        ModelSettings(backend="google", model=MODEL, base_url=f"http://127.0.0.1:{port}"),
        EnvCredentials({"google": KEY}),
    )
    error = await failure(model)
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach google at http://127.0.0.1:{port} (")
    assert str(error).endswith("check the network and model_settings.base_url")


@pytest.mark.anyio
async def test_a_stream_that_ends_without_a_finish_reason_is_a_retryable_connection_error(
    fake: FakeGemini,
) -> None:
    fake.queue(answer("Half an ans", finish_reason=None))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("connection", True)
    assert "ended before the answer was complete (no finishReason)" in str(error)


@pytest.mark.anyio
async def test_a_malformed_function_call_is_retryable_and_runs_nothing(fake: FakeGemini) -> None:
    fake.queue(answer("Let me look.", finish_reason="MALFORMED_FUNCTION_CALL"))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("other", True)
    assert "(finishReason MALFORMED_FUNCTION_CALL): try again" in str(error)


@pytest.mark.anyio
async def test_a_blocked_prompt_fails_with_the_block_reason(fake: FakeGemini) -> None:
    fake.queue(answer(prompt_feedback={"blockReason": "SAFETY"}))
    error = await failure(backend(fake))
    assert (error.reason, error.retryable) == ("bad_request", False)
    assert str(error) == (
        f"google blocked the prompt (blockReason SAFETY) for model {MODEL!r}: change the "
        "system prompt or the event payload"
    )


# --- the backend alone: the stream and the request --------------------------------------


@pytest.mark.anyio
async def test_usage_is_the_last_chunks_and_counts_thinking_and_cached_tokens(
    fake: FakeGemini,
) -> None:
    fake.queue(
        answer(
            "a",
            "b",
            "c",
            prompt_tokens=1500,
            cached_tokens=1000,
            output_tokens=40,
            thoughts_tokens=25,
        )
    )
    *_, end = await play(backend(fake))
    assert isinstance(end, TurnEnd)
    assert end.usage == Usage(tokens_in=1500, tokens_out=65, cache_read_tokens=1000)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("vendor", "normalised"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "other"),
        ("RECITATION", "other"),
    ],
)
async def test_finish_reasons_are_normalised(
    fake: FakeGemini, vendor: str, normalised: str
) -> None:
    fake.queue(answer("x", finish_reason=vendor, prompt_tokens=8, output_tokens=2))
    events = await play(backend(fake))
    assert events == [TextDelta("x"), TurnEnd(normalised, Usage(tokens_in=8, tokens_out=2))]


@pytest.mark.anyio
async def test_a_finish_reason_newer_than_the_sdk_is_other(fake: FakeGemini) -> None:
    fake.queue(answer("x", finish_reason="SOME_NEW_REASON", prompt_tokens=8, output_tokens=2))
    with pytest.warns(UserWarning, match="SOME_NEW_REASON is not a valid FinishReason"):
        events = await play(backend(fake))
    assert events == [TextDelta("x"), TurnEnd("other", Usage(tokens_in=8, tokens_out=2))]


@pytest.mark.anyio
async def test_calls_come_after_the_text_with_ids_and_thoughts_are_not_text(
    fake: FakeGemini,
) -> None:
    fake.queue(
        answer(
            thought("The user wants the time in two places."),
            "Two lookups.",
            call("clock_now", {"timezone": "Europe/Paris"}, signature=SIGNATURE),
            call("clock_now"),
        )
    )
    events = await play(backend(fake), turn=3)
    assert events[:3] == [
        TextDelta("Two lookups."),
        ToolCallRequest("gemini_call_3_0", "clock_now", {"timezone": "Europe/Paris"}),
        ToolCallRequest("gemini_call_3_1", "clock_now", {}),
    ]
    assert isinstance(events[3], TurnEnd) and events[3].stop_reason == "tool_use"


@pytest.mark.anyio
async def test_temperature_and_max_tokens_go_in_the_generation_config(fake: FakeGemini) -> None:
    fake.queue(answer("ok"))
    await play(backend(fake, temperature=0.3, max_tokens=256))
    (received,) = fake.received
    assert received.body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 256}
    assert received.body["systemInstruction"] == {"parts": [{"text": "Be brief."}], "role": "user"}
    assert "tools" not in received.body


@pytest.mark.anyio
async def test_a_history_from_elsewhere_keeps_real_ids_and_drops_made_up_ones(
    fake: FakeGemini,
) -> None:
    """A backend that did not see the calls (a fresh instance) still sends a valid history:
    Gemini's ids as they are, the ids Cairn made up not at all."""
    fake.queue(answer("ok"))
    made_up = ToolCallRequest("gemini_call_0_0", "clock_now", {})
    real = ToolCallRequest("fc-7", "clock_now", {"timezone": "UTC"})
    history = [
        Message("user", "hi"),
        Message("assistant", "", (made_up, real)),
        Message(
            "tool",
            tool_results=(
                ToolResultMessage("gemini_call_0_0", "clock_now", {"iso": "2026-01-01T00:00Z"}),
                ToolResultMessage("fc-7", "clock_now", "bad zone", is_error=True),
            ),
        ),
        Message("assistant", ""),  # an empty turn is left out: the API refuses it
    ]
    await play(backend(fake), messages=history)
    (received,) = fake.received
    assert received.body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "clock_now", "args": {}}},
                {"functionCall": {"id": "fc-7", "name": "clock_now", "args": {"timezone": "UTC"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "clock_now",
                        "response": {"output": {"iso": "2026-01-01T00:00Z"}},
                    }
                },
                {
                    "functionResponse": {
                        "id": "fc-7",
                        "name": "clock_now",
                        "response": {"error": "bad zone"},
                    }
                },
            ],
        },
    ]


@pytest.mark.anyio
async def test_a_base_url_that_names_a_version_uses_that_version(fake: FakeGemini) -> None:
    fake.queue(answer("ok"))
    await play(backend(fake, base_url=f"{fake.url}/v1/"))
    assert fake.received[0].path == f"/v1/models/{MODEL}:streamGenerateContent"


def test_base_urls_split_into_url_and_version() -> None:
    assert split_version(None) == (None, "v1beta")
    assert split_version("http://h:1") == ("http://h:1", "v1beta")
    assert split_version("http://h:1/proxy/") == ("http://h:1/proxy/", "v1beta")
    assert split_version("http://h:1/proxy/v1alpha") == ("http://h:1/proxy", "v1alpha")
    assert split_version("https://h/v1beta") == ("https://h/", "v1beta")


def test_where_names_the_host_without_credentials() -> None:
    provider = GoogleProvider(KEY, base_url="http://user:secret@127.0.0.1:9/v1beta", timeout_s=1)
    assert provider.where() == "http://127.0.0.1:9"


def test_retry_after_reads_the_header_then_the_retry_info() -> None:
    assert retry_after_s({"retry-after": "4"}, [retry_info("9s")]) == 4.0
    assert retry_after_s({}, [retry_info("0.25s")]) == 0.25
    assert retry_after_s(None, [retry_info("soon")]) is None
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_the_registry_finds_the_backend_under_its_name() -> None:
    assert model_backends.get("google") is GoogleBackend
