"""Each outcome of the vocabulary, produced by a real run, so "did nothing" cannot hide
behind ``succeeded``; and calls the model was not offered are refused, not run."""

from __future__ import annotations

import anyio
import pytest

from cairn.services.app import App
from cairn.services.runs import fire_agent
from tests.runner import helpers
from tests.runner.helpers import (
    SANDBOX,
    add_source,
    assert_complete,
    kinds,
    make_agent,
    stored,
)


@pytest.mark.anyio
async def test_text_only_with_tools_available_is_answered(app: App) -> None:
    await make_agent(app, "No tool needed: it is fine.")
    fired = await fire_agent(app, SANDBOX, "tester", {"q": "ok?"})
    run, events = stored(app, fired.run_id)
    assert_complete(run, events)
    assert (run.status, run.outcome) == ("succeeded", "answered")
    assert run.output_text == "No tool needed: it is fine."


@pytest.mark.anyio
async def test_no_call_and_empty_text_is_model_chose_no_tool(app: App) -> None:
    await make_agent(app, {"turns": [{"text": ""}]})
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)
    assert_complete(run, events)
    assert (run.status, run.outcome) == ("succeeded", "model_chose_no_tool")
    assert kinds(events) == ["finish"]


@pytest.mark.anyio
async def test_a_tool_less_agent_is_no_tools_available(app: App) -> None:
    await make_agent(app, "I can only talk.", tool_sources=[])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)
    assert_complete(run, events)
    assert (run.status, run.outcome) == ("succeeded", "no_tools_available")
    assert run.tool_resolution_trace is not None
    assert run.tool_resolution_trace.tool_names_advertised == []


@pytest.mark.anyio
async def test_an_allowlist_that_matches_nothing_shows_as_no_tools_available(app: App) -> None:
    await make_agent(app, "Nothing to call.", tool_allowlist=["send_slack_message"])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, _ = stored(app, fired.run_id)
    assert run.outcome == "no_tools_available"
    trace = run.tool_resolution_trace
    assert trace is not None
    assert [m.entry for m in trace.allowlist_missing_entries] == ["send_slack_message"]


@pytest.mark.anyio
async def test_calling_tools_that_all_return_is_acted(app: App) -> None:
    await make_agent(app, [{"tool_calls": [{"name": "clock_now"}]}, "It is late."])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, _ = stored(app, fired.run_id)
    assert (run.status, run.outcome) == ("succeeded", "acted")


@pytest.mark.anyio
async def test_a_tool_error_result_is_tool_errors_and_goes_back_to_the_model(app: App) -> None:
    script = [
        {
            "tool_calls": [
                {"name": "json_extract", "arguments": {"document": "{{event}}", "path": "nope"}}
            ]
        },
        "The tool said: {{results.-1}}",
    ]
    await make_agent(app, script)
    fired = await fire_agent(app, SANDBOX, "tester", {"a": 1})
    run, events = stored(app, fired.run_id)
    assert_complete(run, events)
    assert (run.status, run.outcome) == ("succeeded", "tool_errors")
    (call,) = run.tool_calls
    assert call.error == "path 'nope' has no 'nope'"
    assert run.output_text == "The tool said: path 'nope' has no 'nope'"


@pytest.mark.anyio
async def test_a_run_that_ends_before_any_call_is_interrupted(app: App) -> None:
    await make_agent(app, [{"delay_s": 30}], timeout_s=0.1)
    with anyio.fail_after(5):
        fired = await fire_agent(app, SANDBOX, "tester", {})
    run, _ = stored(app, fired.run_id)
    assert (run.status, run.outcome) == ("failed", "interrupted")


@pytest.mark.anyio
async def test_a_call_to_a_tool_the_allowlist_removed_is_refused_and_not_run(app: App) -> None:
    mailer = add_source(app, ["send_email"], label="mailer")
    script = [
        {"tool_calls": [{"name": "send_email", "arguments": {"to": "ceo@example.com"}}]},
        "I could not send it.",
    ]
    await make_agent(
        app, script, tool_sources=["builtin", mailer.source_id], tool_allowlist=["clock_now"]
    )
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, events = stored(app, fired.run_id)

    assert helpers.hooks.calls == []  # the email was not sent
    assert_complete(run, events)
    assert (run.status, run.outcome) == ("succeeded", "tool_errors")
    (call,) = run.tool_calls
    assert call.result is None
    assert call.error is not None
    assert "'send_email' was not advertised" in call.error
    assert "advertised: clock_now" in call.error
    assert events[kinds(events).index("tool_result")].data["error"] == call.error
    assert run.tool_resolution_trace is not None
    assert "send_email" in run.tool_resolution_trace.allowlist_filtered_out


@pytest.mark.anyio
async def test_the_same_call_runs_when_the_tool_is_advertised(app: App) -> None:
    mailer = add_source(app, ["send_email"], label="mailer")
    script = [
        {"tool_calls": [{"name": "send_email", "arguments": {"to": "ceo@example.com"}}]},
        "Sent.",
    ]
    await make_agent(app, script, tool_sources=[mailer.source_id], tool_allowlist=["send_email"])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, _ = stored(app, fired.run_id)

    assert helpers.hooks.calls == [("send_email", {"to": "ceo@example.com"})]
    assert run.outcome == "acted"
    assert run.tool_calls[0].result == {"sent": {"to": "ceo@example.com"}}


@pytest.mark.anyio
async def test_a_call_to_a_tool_no_source_has_is_refused_naming_what_was_advertised(
    app: App,
) -> None:
    await make_agent(app, [{"tool_calls": [{"name": "crm_lookup"}]}, "Hmm."], tool_sources=[])
    fired = await fire_agent(app, SANDBOX, "tester", {})
    run, _ = stored(app, fired.run_id)
    assert run.outcome == "tool_errors"
    assert run.tool_calls[0].error is not None
    assert run.tool_calls[0].error.endswith("advertised: none")
