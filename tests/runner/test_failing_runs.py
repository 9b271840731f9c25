"""Runs that fail still end with a complete row: final status, finish time, duration, a
helpful error message, and an ``error`` event last."""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from cairn.models.backends import model_backends
from cairn.services.app import App
from cairn.services.runs import fire_agent
from tests.runner import helpers
from tests.runner.helpers import (
    SANDBOX,
    add_source,
    assert_failed,
    kinds,
    make_agent,
    stored,
)


@pytest.mark.anyio
async def test_a_tool_that_raises_fails_the_run_and_records_the_call_error(app: App) -> None:
    source = add_source(app, ["explode"], label="disk tools")
    script = [
        {"text": "Trying.", "tool_calls": [{"name": "explode", "arguments": {"disk": "sda"}}]},
        "Never reached.",
    ]
    await make_agent(app, script, tool_sources=[source.source_id])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="tool_failure")
    assert "'explode'" in message
    assert "call_0_0" in message
    assert "disk on fire" in message
    (call,) = run.tool_calls
    assert (call.name, call.arguments, call.result) == ("explode", {"disk": "sda"}, None)
    assert call.error == "RuntimeError: disk on fire"
    assert run.outcome == "tool_errors"
    assert run.output_text == "Trying."
    assert kinds(events) == ["text", "tool_call", "tool_result", "error"]
    assert events[2].data["error"] == "RuntimeError: disk on fire"


@pytest.mark.anyio
async def test_a_model_error_fails_the_run_and_keeps_what_happened_before(app: App) -> None:
    script = [
        {"tool_calls": [{"name": "clock_now"}]},
        {"error": "upstream 529: the vendor is overloaded"},
    ]
    await make_agent(app, script)
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="model_error")
    assert "upstream 529: the vendor is overloaded" in message
    assert [c.name for c in run.tool_calls] == ["clock_now"]
    assert kinds(events) == ["tool_call", "tool_result", "error"]


@pytest.mark.anyio
async def test_a_model_error_on_the_first_turn_is_interrupted(app: App) -> None:
    await make_agent(app, [{"error": "invalid API key"}])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)
    message = assert_failed(run, events, error_type="model_error")
    assert "invalid API key" in message
    assert run.outcome == "interrupted"
    assert kinds(events) == ["error"]


@pytest.mark.anyio
async def test_a_backend_that_raises_an_unexpected_exception_is_a_model_error(app: App) -> None:
    await make_agent(app, None, backend="test-broken", model="value-error")
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="model_error")
    assert message == (
        "model backend 'test-broken' raised ValueError: vendor sent a malformed chunk"
    )
    assert kinds(events) == ["text", "error"]
    assert run.model == "test-broken:value-error"


@pytest.mark.anyio
async def test_a_timeout_error_raised_by_the_backend_is_a_model_error_not_a_run_timeout(
    app: App,
) -> None:
    await make_agent(app, None, backend="test-broken", model="timeout-error", timeout_s=600)
    with anyio.fail_after(5):
        fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    # The run lasted milliseconds; blaming timeout_s=600 would send the operator the wrong way.
    message = assert_failed(run, events, error_type="model_error")
    assert "read from the vendor timed out" in message


@pytest.mark.anyio
async def test_exceeding_max_turns_fails_the_run_saying_which_limit(app: App) -> None:
    script = {
        "turns": [{"text": "Again. ", "tool_calls": [{"name": "clock_now"}]}],
        "then": "repeat_last",
    }
    await make_agent(app, script, max_turns=3)
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="max_turns_exceeded")
    assert "max_turns=3" in message
    assert [c.call_id for c in run.tool_calls] == ["call_0_0", "call_1_0", "call_2_0"]
    assert all(c.error is None for c in run.tool_calls)
    assert kinds(events).count("tool_call") == 3


@pytest.mark.anyio
async def test_exceeding_timeout_fails_the_run_quickly_as_a_timeout(app: App) -> None:
    await make_agent(app, [{"text": "Too late.", "delay_s": 30}], timeout_s=0.2)
    with anyio.fail_after(5):
        fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=0.2" in message
    assert run.duration_ms is not None and 200 <= run.duration_ms < 5000
    assert run.outcome == "interrupted"
    assert run.output_text == ""
    assert kinds(events) == ["error"]


@pytest.mark.anyio
async def test_a_tool_call_cut_off_by_the_timeout_is_recorded_as_unfinished(app: App) -> None:
    helpers.hooks.gate_entered = anyio.Event()
    helpers.hooks.gate_open = anyio.Event()  # never opened: the tool hangs
    source = add_source(app, ["wait_for_gate"])
    script = [{"tool_calls": [{"name": "wait_for_gate"}]}, "Done."]
    await make_agent(app, script, tool_sources=[source.source_id], timeout_s=0.3)
    with anyio.fail_after(5):
        fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    message = assert_failed(run, events, error_type="timeout")
    assert "timeout_s=0.3" in message
    assert helpers.hooks.gate_entered.is_set()
    (call,) = run.tool_calls
    assert call.result is None
    # The call never returned, so the row must not claim it did (outcome "acted" means
    # "every call returned a result").
    assert call.error is not None
    assert run.outcome != "acted"


@pytest.mark.anyio
async def test_a_backend_that_is_not_installed_fails_the_run_naming_the_installed_ones(
    app: App,
) -> None:
    agent = await make_agent(app, "hi")
    missing = replace(agent, model_settings=replace(agent.model_settings, backend="nonesuch"))
    with anyio.fail_after(5):
        run = await app.runner.fire(missing, {}, [], kind="test")
    stored_run, events = stored(app, run.run_id)
    message = assert_failed(stored_run, events, error_type="model_error")
    assert "'nonesuch'" in message
    assert "scripted" in model_backends.names()
    assert "scripted" in message  # the installed backends are listed


@pytest.mark.anyio
async def test_a_plugin_bug_in_the_run_still_leaves_a_complete_row(app: App) -> None:
    source = add_source(app, ["off_protocol"])
    await make_agent(
        app, [{"tool_calls": [{"name": "off_protocol"}]}, "x"], tool_sources=[source.source_id]
    )
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)
    message = assert_failed(run, events, error_type="internal_error")
    assert message.startswith("internal error: AttributeError")
    assert kinds(events) == ["tool_call", "error"]
