"""What every SDK backend does the same way, checked once over the three vendors.

Each backend talks through its official SDK to its fake server (``tests.fakes``, real
wire format), described by a ``Vendor`` in ``tests.models.vendors``: how to queue a text
answer, a stall, a cut stream, an error, and the words the backend must then use. Runs go
through the real runner and ledger (SQLite and PostgreSQL); the rest drives the backend
alone. What only one vendor has (its wire mapping, its own error codes) is in the
per-vendor files.

A lost connection is classified by what had arrived, never by how an SDK nests its
exceptions: "dropped mid-answer" once part of the answer arrived, "could not reach" before
any byte; both retryable ``connection`` errors.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import anyio
import pytest

from cairn.domain.runs import Run, Usage
from cairn.models.backends import model_backends
from cairn.models.base import ModelEvent, TextDelta, ToolCallRequest, TurnEnd
from cairn.services.app import App
from cairn.services.sources import available_sources
from tests.models.vendors import (
    PAYLOAD,
    VENDORS,
    NoKey,
    Vendor,
    assert_key_never_leaked,
    backend,
    failure,
    fire,
    make_agent,
    play,
    reset_and_check,
    runner,
)
from tests.runner.helpers import SANDBOX, assert_complete, assert_failed, kinds, stored

SHORT_TIMEOUT_BACKEND = "vendor-short-timeout"


@pytest.fixture(scope="module", params=VENDORS, ids=lambda v: v.name)
def vendor(request: pytest.FixtureRequest) -> Vendor:
    vendor: Vendor = request.param
    return vendor


@pytest.fixture(scope="module")
def served(vendor: Vendor) -> Iterator[Any]:
    """One fake server per vendor for the module (starting uvicorn is the slow part)."""
    with vendor.serve() as server:
        yield server


@pytest.fixture
def fake(served: Any) -> Iterator[Any]:
    yield from reset_and_check(served)


@pytest.fixture
def short_timeout_backend(vendor: Vendor) -> Iterator[str]:
    """The vendor's backend with a 0.2 s request timeout, registered as a plugin would be,
    so a run can hit the SDK's timeout well before its own deadline."""
    model_backends.register(
        SHORT_TIMEOUT_BACKEND, partial(vendor.backend_class, request_timeout_s=0.2)
    )
    yield SHORT_TIMEOUT_BACKEND
    model_backends.unregister(SHORT_TIMEOUT_BACKEND)


def stop_reason_cases() -> list[Any]:
    return [
        pytest.param(v, raw, normalised, id=f"{v.name}-{raw}")
        for v in VENDORS
        for raw, normalised in v.stop_reasons
    ]


# --- runs ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_streamed_text_arrives_as_several_text_events(
    app: App, vendor: Vendor, fake: Any
) -> None:
    pieces = ["The checkout ", "is broken ", "for orders ", "over $100."]
    fake.queue(vendor.text(*pieces, tokens_in=42, tokens_out=17))
    run, events = await fire(app, vendor, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.outcome == "answered"
    assert [e.data["delta"] for e in events if e.kind == "text"] == pieces
    assert all(e.data["turn"] == 0 for e in events if e.kind == "text")
    assert run.output_text == "".join(pieces)
    # Google repeats the running usage on every chunk: the last one counts, not their sum.
    assert (run.usage.tokens_in, run.usage.tokens_out) == (42, 17)
    assert (run.usage.cache_read_tokens, run.usage.cache_write_tokens) == (0, 0)


@pytest.mark.anyio
async def test_a_rejected_api_key_fails_the_run_saying_which_variable_to_set(
    app: App, vendor: Vendor, fake: Any
) -> None:
    expected = vendor.reject_key(fake)
    run, events = await fire(app, vendor, fake)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == expected
    assert kinds(events) == ["error"], "a bad key is not retried"
    assert run.outcome == "interrupted"
    assert len(fake.received) == 1
    assert_key_never_leaked(vendor, run, events)


@pytest.mark.anyio
async def test_a_missing_key_fails_the_run_before_any_request(
    app: App, vendor: Vendor, fake: Any
) -> None:
    options = {"credentials": lambda _sandbox_id: NoKey()}
    run, events = await fire(app, vendor, fake, options, **vendor.no_key_settings)

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == vendor.no_key_text
    assert fake.received == []


@pytest.mark.anyio
async def test_a_rate_limit_is_retried_after_the_wait_the_api_asked_for(
    app: App, vendor: Vendor, fake: Any
) -> None:
    limit = "Rate limit reached for requests per minute. Please try again in 1s."
    fake.queue(
        vendor.error(429, limit, {"retry-after": "1"}),
        vendor.text("Done.", tokens_in=12, tokens_out=3),
    )
    run, events = await fire(app, vendor, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Done."
    assert kinds(events) == ["retry", "text", "finish"]
    retry = events[0].data
    assert (retry["attempt"], retry["reason"], retry["status_code"]) == (1, "rate_limited", 429)
    assert retry["wait_s"] == 1.0, "the API's retry-after wins over the runner's backoff"
    assert retry["message"] == (
        f"{vendor.server(fake)} rate-limited the request ({vendor.said(429, limit)}); it asked "
        "to wait 1 s"
    )
    assert run.duration_ms is not None and run.duration_ms >= 1000
    assert len(fake.received) == 2, "the SDK did not retry on its own"
    assert fake.received[0].body == fake.received[1].body, "the retry sends the same request"
    assert (run.usage.tokens_in, run.usage.tokens_out) == (12, 3), "the refused call cost nothing"


@pytest.mark.anyio
async def test_a_server_error_is_retried_then_fails_the_run_with_the_status(
    app: App, vendor: Vendor, fake: Any
) -> None:
    message = "An internal error has occurred."
    fake.queue(vendor.error(500, message), vendor.error(500, message))
    run, events = await fire(app, vendor, fake, {"max_model_retries": 1})

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"{vendor.server(fake)} had a server error ({vendor.said(500, message)}): try again later"
    )
    assert kinds(events) == ["retry", "error"]
    assert events[-1].data["retries"] == 1, "how many retries were spent, as data"
    assert (events[0].data["reason"], events[0].data["status_code"]) == ("server_error", 500)
    assert len(fake.received) == 2


@pytest.mark.anyio
async def test_an_overloaded_error_inside_the_stream_is_retried_and_the_retry_answers(
    app: App, vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.stream_error(), vendor.text("Complete answer.", tokens_in=20, tokens_out=4))
    run, events = await fire(app, vendor, fake)

    assert_complete(run, events)
    assert run.status == "succeeded"
    assert run.output_text == "Complete answer."
    assert kinds(events) == ["text", "retry", "text", "finish"]
    retry = events[1].data
    assert (retry["reason"], retry["status_code"]) == ("server_error", vendor.stream_error_status)
    assert retry["message"] == vendor.stream_error_text(fake)
    assert (run.usage.tokens_in, run.usage.tokens_out) == (20, 4)


@pytest.mark.anyio
async def test_a_request_that_gets_no_answer_times_out_and_fails_the_run(
    app: App, vendor: Vendor, fake: Any, short_timeout_backend: str
) -> None:
    fake.queue(vendor.hang(), vendor.hang())
    run, events = await fire(
        app, vendor, fake, {"max_model_retries": 1}, backend=short_timeout_backend
    )

    message_text = assert_failed(run, events, error_type="model_error")
    assert message_text == (
        f"{vendor.name} did not answer within 0.2 s (model {vendor.model!r} at "
        f"{vendor.base_url(fake.url)}): the service is slow or unreachable; try again later "
        "or raise timeout_s"
    )
    assert kinds(events) == ["retry", "error"]
    assert events[-1].data["retries"] == 1
    assert events[0].data["reason"] == "timeout"
    assert len(fake.received) == 2
    for header, value in vendor.hang_headers.items():
        assert fake.received[0].headers[header] == value
    assert await fake.wait(fake.disconnected), "the client hung up on the silent server"


@pytest.mark.anyio
async def test_a_model_that_stalls_past_timeout_s_fails_the_run_and_the_stream_is_closed(
    app: App, vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.stall("Thinking about it"))
    # Long enough for a loaded machine to send the request and read the first delta.
    run, events = await fire(app, vendor, fake, timeout_s=3)

    message_text = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=3 s while waiting for the model" in message_text
    assert [e.data["delta"] for e in events if e.kind == "text"] == ["Thinking about it"]
    assert await fake.wait(fake.disconnected), "the deadline closed the HTTP response"


@pytest.mark.anyio
async def test_cancelling_a_run_closes_the_provider_stream_at_once(
    app: App, vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.stall("Working on it"))
    agent = await make_agent(app, vendor, fake)
    engine = runner(app, vendor)
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


# --- the backend alone: errors ------------------------------------------------------------


@pytest.mark.anyio
async def test_an_error_that_quotes_the_key_is_redacted(vendor: Vendor, fake: Any) -> None:
    fake.queue(vendor.error(401, f"API key {vendor.key} is not valid"))
    error = await failure(backend(vendor, fake.url))
    assert (error.reason, error.retryable, error.status_code) == ("auth", False, 401)
    assert error.backend == vendor.name
    assert vendor.key not in str(error)
    assert "API key [redacted] is not valid" in str(error)


@pytest.mark.anyio
async def test_a_stream_that_goes_silent_mid_answer_times_out_and_is_closed(
    vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.stall("Let me"))
    model = backend(vendor, fake.url, options={"request_timeout_s": 0.2})
    error = await failure(model)
    assert (error.reason, error.retryable) == ("timeout", True)
    assert str(error).startswith(f"{vendor.name} did not answer within 0.2 s")
    assert await fake.wait(fake.disconnected)


@pytest.mark.anyio
async def test_a_stream_that_ends_without_its_closing_marker_is_a_retryable_connection_error(
    vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.unfinished("Half an ans"))
    error = await failure(backend(vendor, fake.url))
    assert (error.reason, error.retryable) == ("connection", True)
    assert vendor.unfinished_says in str(error)


@pytest.mark.anyio
async def test_a_stream_cut_after_the_first_text_delta_says_the_answer_was_cut(
    vendor: Vendor, fake: Any
) -> None:
    fake.queue(vendor.drop("Half an ans"))
    received: list[ModelEvent] = []
    error = await failure(backend(vendor, fake.url), received)
    assert [e.text for e in received if isinstance(e, TextDelta)] == ["Half an ans"]
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"the connection to {vendor.name} at ")
    assert "dropped mid-answer, after part of the answer had arrived" in str(error)
    assert "could not reach" not in str(error)
    assert vendor.key not in str(error)


def _free_port() -> int:
    with socket.socket() as probe:  # free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _closing_listener() -> Iterator[int]:
    """A port that accepts connections and closes each one before sending a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        sock.close()


@pytest.mark.anyio
async def test_a_refused_connection_says_the_server_could_not_be_reached(vendor: Vendor) -> None:
    root = f"http://127.0.0.1:{_free_port()}"
    received: list[ModelEvent] = []
    error = await failure(backend(vendor, root), received)
    assert received == []
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach {vendor.name} at {vendor.base_url(root)} (")
    assert str(error).endswith(vendor.unreachable_remedy)
    assert "mid-answer" not in str(error)


@pytest.mark.anyio
async def test_a_connection_closed_before_any_byte_says_the_server_could_not_be_reached(
    vendor: Vendor,
) -> None:
    with _closing_listener() as port:
        received: list[ModelEvent] = []
        error = await failure(backend(vendor, f"http://127.0.0.1:{port}"), received)
    assert received == []
    assert (error.reason, error.retryable) == ("connection", True)
    assert str(error).startswith(f"could not reach {vendor.name} at ")
    assert "mid-answer" not in str(error)


# --- the backend alone: the stream --------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("vendor", "raw", "normalised"), stop_reason_cases(), indirect=["vendor"])
async def test_stop_reasons_are_normalised(
    vendor: Vendor, fake: Any, raw: str, normalised: str
) -> None:
    fake.queue(vendor.text("x", finish=raw, tokens_in=8, tokens_out=2))
    events = await play(backend(vendor, fake.url))
    assert events == [TextDelta("x"), TurnEnd(normalised, Usage(tokens_in=8, tokens_out=2))]


@pytest.mark.anyio
async def test_tool_calls_come_after_the_text_and_before_the_turn_end(
    vendor: Vendor, fake: Any
) -> None:
    fake.queue(
        vendor.calls(
            "Two lookups.",
            ("call_a", "clock_now", {"timezone": "Europe/Paris"}, 3),
            ("call_b", "clock_now", {}, 1),
        )
    )
    events = await play(backend(vendor, fake.url))
    assert events[:3] == [
        TextDelta("Two lookups."),
        ToolCallRequest(vendor.call_id("call_a", 0), "clock_now", {"timezone": "Europe/Paris"}),
        ToolCallRequest(vendor.call_id("call_b", 1), "clock_now", {}),
    ]
    assert isinstance(events[3], TurnEnd) and events[3].stop_reason == "tool_use"
    assert len(events) == 4


def test_the_registry_finds_the_backend_under_its_name(vendor: Vendor) -> None:
    assert model_backends.get(vendor.name) is vendor.backend_class
