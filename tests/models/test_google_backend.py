"""The Google backend, with the real ``google-genai`` SDK pointed by base URL at a local
server that speaks the Gemini REST API (``tests.fakes.google_server``).

Runs go through the real runner and ledger (SQLite and PostgreSQL) and are checked twice:
on the row and its events, and on what the server received (the functions declared, the
calls and results sent back, the key header). The error table and the wire details are
checked on the backend alone, still through the SDK and the server.

Only what this vendor alone has is here (its wire mapping, its own error codes and
replies); what every backend does the same way is checked once, over the three vendors,
in ``test_vendor_backends.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cairn.domain.runs import Run, RunEvent, Usage
from cairn.models.base import (
    Message,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.models.google import GoogleBackend, GoogleProvider, retry_after_s, split_version
from cairn.runner.messages import render_event_message
from cairn.services.app import App
from tests.fakes.google_server import (
    MODEL,
    Error,
    FakeGemini,
    answer,
    call,
    error_info,
    retry_info,
    serve_google,
    thought,
)
from tests.models import vendors
from tests.models.vendors import GOOGLE, PAYLOAD, PROMPT, failure, play, reset_and_check
from tests.runner.helpers import (
    BUILTIN_NAMES,
    assert_complete,
    kinds,
)

KEY = GOOGLE.key


@pytest.fixture(scope="module")
def google_server() -> Iterator[FakeGemini]:
    """One server for the module (starting uvicorn is the slow part)."""
    with serve_google() as server:
        yield server


@pytest.fixture
def fake(google_server: FakeGemini) -> Iterator[FakeGemini]:
    yield from reset_and_check(google_server)


async def fire(
    app: App, fake: FakeGemini, runner_options: dict[str, Any] | None = None, **settings: Any
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh google agent; the row and events as the ledger holds them."""
    return await vendors.fire(app, GOOGLE, fake, runner_options, **settings)


def assert_key_never_leaked(run: Run, events: list[RunEvent]) -> None:
    vendors.assert_key_never_leaked(GOOGLE, run, events)


def backend(fake: FakeGemini, **settings: Any) -> GoogleBackend:
    model: GoogleBackend = vendors.backend(GOOGLE, fake.url, **settings)
    return model


SIGNATURE = b"\x8a\x01opaque-thought-signature"


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
    # The model that answered each turn, as the vendor named it (gen_ai.response.model).
    assert [t.get("model") for t in events[-1].data["turns"]] == [MODEL] * 3

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


# --- the backend alone: errors -------------------------------------------------------


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
