"""The three SDK backends as test subjects: how to serve each vendor's fake server, queue
each kind of reply on it, and what the backend must then say.

A ``Vendor`` is what the shared suite (``test_vendor_backends.py``) is parametrised over,
so one test states one behaviour for every vendor; the per-vendor files keep only the
wire details one vendor has. The helpers below (``fire``, ``backend``, ``play`` ...) are
shared by both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run, RunEvent
from cairn.domain.tools import ToolSpec
from cairn.errors import ModelError
from cairn.models.anthropic import AnthropicBackend
from cairn.models.base import EnvCredentials, Message, ModelEvent, ModelRequest
from cairn.models.google import GoogleBackend
from cairn.models.openai import OpenAIBackend
from cairn.runner.engine import Runner
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.sources import available_sources
from tests.fakes import anthropic_server as fa
from tests.fakes import google_server as fg
from tests.fakes import openai_server as fo
from tests.runner.helpers import SANDBOX, stored

PROMPT = "You look up orders and report what you found."
PAYLOAD = {"order": "A-17", "title": "broken checkout"}

Call = tuple[str, str, dict[str, Any], int]
"""A tool call to stream: (id, tool name, arguments, pieces its arguments arrive in)."""


@dataclass(frozen=True)
class Vendor:
    """One vendor: its fake server, its replies, and the words its backend uses."""

    name: str
    slug: str
    model: str
    key: str
    backend_class: Callable[..., Any]
    serve: Callable[[], AbstractContextManager[Any]]
    base_url: Callable[[str], str]
    """The agent's ``base_url`` for a server whose root is this URL."""
    # replies
    text: Callable[..., Any]
    """``text(*pieces, tokens_in=10, tokens_out=5, finish=None)``: a streamed answer; a
    ``finish`` is the vendor's own stop/finish reason."""
    stall: Callable[[str], Any]
    drop: Callable[[str], Any]
    unfinished: Callable[[str], Any]
    """The text, then the stream ends without the vendor's closing marker."""
    stream_error: Callable[[], Any]
    """Some text, then an "overloaded" error inside the 200 stream."""
    error: Callable[..., Any]
    """``error(status, message, headers={})``: an error response in the vendor's format."""
    hang: Callable[[], Any]
    calls: Callable[..., Any]
    """``calls(text, *calls)``: text, then these tool calls."""
    # what the backend says
    key_hint: str
    said: Callable[[int, str], str]
    """How a response's status and message are quoted inside an error text."""
    server: Callable[[Any], str]
    """How the server is named in an error text (given the fake)."""
    reject_key: Callable[[Any], str]
    """Make the fake refuse the key; the run's error message that must follow."""
    no_key_text: str
    unfinished_says: str
    stream_error_status: int | None
    stream_error_text: Callable[[Any], str]
    """The retry's message after ``stream_error`` (given the fake)."""
    unreachable_remedy: str
    stop_reasons: list[tuple[str, str]]
    call_id: Callable[[str, int], str] = lambda given, _index: given
    no_key_settings: dict[str, Any] = field(default_factory=dict)
    hang_headers: dict[str, str] = field(default_factory=dict)
    secrets: Callable[[str], tuple[str, ...]] = lambda key: (key,)


# --- Anthropic ---------------------------------------------------------------------------

_ANTHROPIC_TYPES = {401: "authentication_error", 429: "rate_limit_error", 500: "api_error"}
ANTHROPIC_KEY = "sk-ant-test-7f3a9c2e5b1d4f60"


def _anthropic_reject(fake: fa.FakeAnthropic) -> str:
    fake.queue(fa.Error(401, "authentication_error", "invalid x-api-key"))
    return (
        "anthropic rejected the API key (HTTP 401: invalid x-api-key): set ANTHROPIC_API_KEY "
        "or store a credential for 'anthropic'"
    )


ANTHROPIC = Vendor(
    name="anthropic",
    slug="claude",
    model=fa.MODEL,
    key=ANTHROPIC_KEY,
    backend_class=AnthropicBackend,
    serve=fa.serve_anthropic,
    base_url=lambda root: root,
    text=lambda *pieces, tokens_in=10, tokens_out=5, finish=None: fa.message(
        fa.text(*pieces), stop_reason=finish, input_tokens=tokens_in, output_tokens=tokens_out
    ),
    stall=lambda text: fa.message(fa.text(text), stall=True),
    drop=lambda text: fa.message(fa.text(text), drop=True),
    unfinished=lambda text: fa.message(fa.text(text), complete=False),
    stream_error=lambda: fa.message(
        fa.text("Partial "), error={"type": "overloaded_error", "message": "Overloaded"}
    ),
    error=lambda status, message, headers=None: fa.Error(
        status, _ANTHROPIC_TYPES.get(status, "api_error"), message, headers=headers or {}
    ),
    hang=fa.Hang,
    calls=lambda text, *calls: fa.message(
        fa.text(text), *(fa.tool_use(i, n, a, pieces=p) for i, n, a, p in calls)
    ),
    key_hint="set ANTHROPIC_API_KEY or store a credential for 'anthropic'",
    said=lambda status, message: f"HTTP {status}: {message}",
    server=lambda _fake: "anthropic",
    reject_key=_anthropic_reject,
    no_key_text=(
        "no API key for anthropic: set ANTHROPIC_API_KEY or store a credential for 'anthropic'"
    ),
    unfinished_says="ended before the message was complete (no message_stop)",
    stream_error_status=None,
    stream_error_text=lambda _fake: (
        "anthropic is overloaded (an error event mid-stream: Overloaded): try again later"
    ),
    unreachable_remedy="check the network and model_settings.base_url",
    stop_reasons=[
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("model_context_window_exceeded", "max_tokens"),
        ("refusal", "other"),
        ("pause_turn", "other"),
    ],
)

# --- OpenAI ------------------------------------------------------------------------------

_OPENAI_TYPES = {401: "authentication_error", 429: "requests", 500: "server_error"}
OPENAI_KEY = "sk-proj-test-9c41e07b2d5a4f38"


def _openai_reject(fake: fo.FakeOpenAI) -> str:
    fake.expected_key = "sk-proj-the-right-one-0000"
    return (
        f"the OpenAI-compatible server at {fake.url} rejected the API key (HTTP 401: Incorrect "
        "API key provided: [redacted]. You can find your API key at "
        "https://platform.openai.com/account/api-keys.): set OPENAI_API_KEY or store a "
        "credential for 'openai'"
    )


OPENAI = Vendor(
    name="openai",
    slug="gpt",
    model=fo.MODEL,
    key=OPENAI_KEY,
    backend_class=OpenAIBackend,
    serve=fo.serve_openai,
    base_url=lambda root: root if root.endswith("/v1") else f"{root}/v1",
    text=lambda *pieces, tokens_in=10, tokens_out=5, finish=None: fo.completion(
        fo.text(*pieces),
        finish_reason=finish,
        prompt_tokens=tokens_in,
        completion_tokens=tokens_out,
    ),
    stall=lambda text: fo.completion(fo.text(text), stall=True),
    drop=lambda text: fo.completion(fo.text(text), drop=True),
    unfinished=lambda text: fo.completion(fo.text(text), finish=False),
    stream_error=lambda: fo.completion(
        fo.text("Partial "),
        error={"message": "The model is overloaded.", "type": "server_error", "code": None},
    ),
    error=lambda status, message, headers=None: fo.Error(
        status, message, _OPENAI_TYPES.get(status, "server_error"), headers=headers or {}
    ),
    hang=fo.Hang,
    calls=lambda text, *calls: fo.completion(
        fo.text(text), *(fo.tool_call(i, n, a, pieces=p) for i, n, a, p in calls)
    ),
    key_hint="set OPENAI_API_KEY or store a credential for 'openai'",
    said=lambda status, message: f"HTTP {status}: {message}",
    server=lambda fake: f"the OpenAI-compatible server at {fake.url}",
    reject_key=_openai_reject,
    no_key_text=(
        "no API key for openai: set OPENAI_API_KEY or store a credential for 'openai' (or set "
        "model_settings.base_url to an OpenAI-compatible server that needs none)"
    ),
    no_key_settings={"base_url": None},
    unfinished_says="ended before the answer was complete (no finish_reason)",
    stream_error_status=None,
    stream_error_text=lambda fake: (
        f"the OpenAI-compatible server at {fake.url} had a server error (an error inside the "
        "stream: The model is overloaded.): try again later"
    ),
    unreachable_remedy="check that the server is running there and model_settings.base_url",
    stop_reasons=[
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "other"),
        ("something_new", "other"),
    ],
    secrets=lambda key: (key, fo.masked(key), key[-4:] + "."),
)

# --- Google ------------------------------------------------------------------------------

GOOGLE_KEY = "AIzaSy-test-4c1d9e7f2a6b8035"


def _google_reject(fake: fg.FakeGemini) -> str:
    fake.queue(fg.Error(401, message="Request had invalid authentication credentials."))
    return (
        "google rejected the API key (HTTP 401 UNAUTHENTICATED: Request had invalid "
        "authentication credentials.): set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a "
        "credential for 'google'"
    )


GOOGLE = Vendor(
    name="google",
    slug="gemini",
    model=fg.MODEL,
    key=GOOGLE_KEY,
    backend_class=GoogleBackend,
    serve=fg.serve_google,
    base_url=lambda root: root,
    text=lambda *pieces, tokens_in=10, tokens_out=5, finish="STOP": fg.answer(
        *pieces,
        finish_reason=finish or "STOP",
        prompt_tokens=tokens_in,
        output_tokens=tokens_out,
    ),
    stall=lambda text: fg.answer(text, stall=True),
    drop=lambda text: fg.answer(text, drop=True),
    unfinished=lambda text: fg.answer(text, finish_reason=None),
    stream_error=lambda: fg.answer(
        "Partial ",
        error=fg.Error(503, message="The model is overloaded. Please try again later.").body(),
    ),
    error=lambda status, message, headers=None: fg.Error(
        status, message=message, headers=headers or {}
    ),
    hang=fg.Hang,
    calls=lambda text, *calls: fg.answer(text, *(fg.call(n, a or None) for _i, n, a, _p in calls)),
    key_hint="set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a credential for 'google'",
    said=lambda status, message: f"HTTP {status} {fg.STATUS_NAMES[status]}: {message}",
    server=lambda _fake: "google",
    reject_key=_google_reject,
    no_key_text=(
        "no API key for google: set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a credential "
        "for 'google'"
    ),
    unfinished_says="ended before the answer was complete (no finishReason)",
    stream_error_status=503,
    stream_error_text=lambda _fake: (
        "google is overloaded or unavailable (an error frame mid-stream, 503 UNAVAILABLE: The "
        "model is overloaded. Please try again later.): try again later"
    ),
    unreachable_remedy="check the network and model_settings.base_url",
    stop_reasons=[
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "other"),
        ("RECITATION", "other"),
    ],
    call_id=lambda _given, index: f"gemini_call_0_{index}",
    hang_headers={"x-server-timeout": "1"},
)

VENDORS = [ANTHROPIC, OPENAI, GOOGLE]


def by_vendor(*values: Any) -> Any:
    """``pytest.param`` of a vendor, named after it."""
    return pytest.param(*values, id=values[0].name)


# --- the fake, fresh per test -------------------------------------------------------------


def reset_and_check(server: Any) -> Iterator[Any]:
    """The server, with nothing queued or received; every queued reply must be used."""
    server.reset()
    yield server
    assert server.pending == 0, "a queued reply was never requested"


class NoKey:
    """Credentials with nothing configured (not even in the environment)."""

    def api_key(self, backend: str) -> str | None:
        return None


# --- runs through the runner and the ledger ----------------------------------------------


def runner(app: App, vendor: Vendor, **options: Any) -> Runner:
    """A runner that gives the vendor's test key to every backend and retries fast."""
    keys = {vendor.name: vendor.key}
    options.setdefault("credentials", lambda _sandbox_id: EnvCredentials(keys))
    return Runner(app.store, app.tool_context, retry_base_s=0.01, **options)


async def make_agent(app: App, vendor: Vendor, fake: Any, **settings: Any) -> Agent:
    """An agent on the vendor's backend, talking to the fake, with the builtin tools."""
    settings.setdefault("backend", vendor.name)
    settings.setdefault("model", vendor.model)
    settings.setdefault("base_url", vendor.base_url(fake.url))
    agent, _warnings = await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug=vendor.slug,
            system_prompt=PROMPT,
            tool_sources=["builtin"],
            model_settings=ModelSettings(**settings),
        ),
    )
    return agent


async def fire(
    app: App,
    vendor: Vendor,
    fake: Any,
    runner_options: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[Run, list[RunEvent]]:
    """Fire a test run of a fresh agent; the row and events as the ledger holds them."""
    agent = await make_agent(app, vendor, fake, **settings)
    run = await runner(app, vendor, **(runner_options or {})).fire(
        agent, PAYLOAD, available_sources(app, SANDBOX), kind="test"
    )
    return stored(app, run.run_id)


def assert_key_never_leaked(vendor: Vendor, run: Run, events: list[RunEvent]) -> None:
    """The key (and any form the vendor quotes it in) appears nowhere a person or a log
    could read it."""
    for secret in vendor.secrets(vendor.key):
        assert secret not in (run.error_message or "")
        assert secret not in json.dumps([event.data for event in events], default=str)
        trace = run.tool_resolution_trace
        assert trace is None or secret not in json.dumps(trace.to_dict(), default=str)


# --- the backend alone --------------------------------------------------------------------


def backend(
    vendor: Vendor, url: str, *, options: dict[str, Any] | None = None, **settings: Any
) -> Any:
    """The vendor's backend with its test key, sending to ``url`` (a fake's, or any)."""
    settings.setdefault("base_url", vendor.base_url(url))
    return vendor.backend_class(
        ModelSettings(backend=vendor.name, model=vendor.model, **settings),
        EnvCredentials({vendor.name: vendor.key}),
        **(options or {}),
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


async def play(model: Any, **options: Any) -> list[ModelEvent]:
    """Every event of one turn."""
    return [event async for event in model.stream(request(model.settings, **options))]


async def failure(model: Any, received: list[ModelEvent] | None = None) -> ModelError:
    """The ``ModelError`` a turn ends with; events before it go to ``received``."""
    with pytest.raises(ModelError) as caught:
        async for event in model.stream(request(model.settings)):
            if received is not None:
                received.append(event)
    return caught.value
