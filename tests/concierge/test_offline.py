"""The offline Concierge answers each example question from real ledger data: runs fired
first, real sources (a stdio MCP server, one that was stopped), a webhook source with a
trigger and an event it filtered out."""

from __future__ import annotations

import sys

import pytest

from cairn.services.agents import agent_catalog
from cairn.services.app import App
from cairn.services.concierge import ask
from cairn.services.ingest import ingest
from cairn.services.runs import RunQuery, get_run, list_runs
from cairn.services.sources import McpSourceSpec, add_mcp_source, get_source
from cairn.services.triggers import create_trigger, get_trigger
from cairn.services.webhooks import add_webhook_source
from tests.concierge.helpers import ACTING_SCRIPT, SANDBOX, TRIAGE_SCRIPT, fire, scripted_agent
from tests.mcp_servers import ORDERS_SERVER, serve_http

pytestmark = pytest.mark.anyio


async def test_the_last_runs_of_an_agent_are_listed_newest_first_with_status_and_outcome(
    app: App,
) -> None:
    await scripted_agent(app, "support", ACTING_SCRIPT, tool_sources=["builtin"])
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    acted = await fire(app, "support", {"ticket": 1}, count=2)
    await scripted_agent(app, "broken", {"turns": [{"error": "upstream exploded"}]})
    await fire(app, "triage", {"title": "elsewhere"})

    answer = await ask(app, SANDBOX, "Show me the last 20 runs for the support agent")

    assert answer.mode == "offline"
    assert answer.intent == "list_runs"
    assert answer.run_ids == [run.run_id for run in reversed(acted)]
    for run in acted:
        line = next(line for line in answer.text.splitlines() if run.run_id in line)
        assert "succeeded" in line and "acted" in line and "1 tool call" in line
    assert "triage" not in answer.text
    assert answer.commands == ["cairn agent runs support --limit 20"]

    fewer = await ask(app, SANDBOX, "show me the last 1 runs for the support agent")
    assert fewer.run_ids == [acted[-1].run_id]


async def test_failed_runs_are_listed_with_their_error(app: App) -> None:
    await scripted_agent(app, "broken", {"turns": [{"error": "upstream exploded"}]})
    (failed,) = await fire(app, "broken", {})

    answer = await ask(app, SANDBOX, "Show me the failed runs of the broken agent")

    assert answer.run_ids == [failed.run_id]
    assert "failed" in answer.text and "upstream exploded" in answer.text
    assert answer.commands == ["cairn agent runs broken --limit 20 --status failed"]


async def test_a_run_that_used_no_tools_is_explained_with_the_cause_and_the_fix(
    app: App,
) -> None:
    await scripted_agent(
        app, "support", "I looked into it.", tool_sources=["builtin"], tool_allowlist=["clock"]
    )
    (run,) = await fire(app, "support", {"ticket": 7})
    assert run.outcome == "no_tools_available"

    answer = await ask(app, SANDBOX, f"Why didn't run {run.run_id} use any tools?")

    assert answer.intent == "explain_run"
    assert answer.run_ids[0] == run.run_id
    assert "'clock'" in answer.text  # the stale allowlist entry
    assert "clock_now" in answer.text  # the closest real tool name, as the fix
    assert "allowlist_missing_entries" in answer.text  # the trace field it rests on
    assert any("--tool-allowlist" in command for command in answer.commands)
    assert f"cairn runs explain {run.run_id}" in answer.commands


async def test_a_run_id_that_does_not_exist_is_answered_not_raised(app: App) -> None:
    answer = await ask(app, SANDBOX, "Why didn't run run_abc123 use any tools?")

    assert answer.intent == "explain_run"
    assert "There is no run run_abc123" in answer.text
    assert answer.run_ids == []


async def test_the_last_run_of_an_agent_is_explained_without_its_id(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    first, last = await fire(app, "triage", {"title": "x"}, count=2)

    answer = await ask(app, SANDBOX, "Why didn't the triage agent's last run use any tools?")

    assert answer.run_ids[0] == last.run_id
    assert first.run_id not in answer.text
    assert "tool_sources is []" in answer.text
    assert "cairn agent update triage --tool-sources default" in answer.commands


async def test_a_test_fire_of_an_agent_whose_tools_may_act_asks_for_confirmation_first(
    app: App,
) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=["builtin"])
    await scripted_agent(app, "clock", TRIAGE_SCRIPT, tool_sources=["builtin"],
                         tool_allowlist=["clock_now"])  # fmt: skip
    question = 'Test the triage agent with this fake event: {"title": "broken checkout"}'

    asked = await ask(app, SANDBOX, question)
    read_only = await ask(app, SANDBOX, 'test the clock agent with {"x": 1}')

    assert asked.intent == "test_fire" and asked.run_ids == []
    assert "http_request" in asked.text and "Nothing was run" in asked.text
    assert 'with {"title": "broken checkout"}' in asked.text
    assert asked.commands[0].startswith("cairn ask --yes ")
    assert list_runs(app, SANDBOX, RunQuery(agent_slug="triage")) == []
    assert len(read_only.run_ids) == 1  # only read-only tools: fired at once


async def test_a_fake_event_test_fires_the_agent_and_reports_the_run(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=["builtin"])

    answer = await ask(
        app,
        SANDBOX,
        'Test the triage agent with this fake event: {"title": "broken checkout"}',
        confirmed=True,
    )

    assert answer.intent == "test_fire"
    (run_id,) = answer.run_ids
    run = get_run(app, SANDBOX, run_id)
    assert run.kind == "test"
    assert run.event_payload == {"title": "broken checkout"}
    assert run.status == "succeeded"
    assert f"run {run_id} succeeded" in answer.text
    assert "Output: Triaging broken checkout" in answer.text
    assert "outcome answered" in answer.text
    assert f"cairn runs show {run_id}" in answer.commands


async def test_a_failing_test_fire_says_why(app: App) -> None:
    await scripted_agent(app, "broken", {"turns": [{"error": "upstream exploded"}]})

    answer = await ask(app, SANDBOX, "Test the broken agent with {}", confirmed=True)

    (run_id,) = answer.run_ids
    assert get_run(app, SANDBOX, run_id).status == "failed"
    assert f"run {run_id} failed" in answer.text
    assert "upstream exploded" in answer.text
    assert "Why:" in answer.text


async def test_the_tools_answer_is_copied_from_the_live_catalog_with_skipped_sources(
    app: App,
) -> None:
    await add_mcp_source(
        app,
        SANDBOX,
        McpSourceSpec(
            "orders",
            "stdio",
            command=sys.executable,
            args=[str(ORDERS_SERVER)],
            namespace="orders",
        ),
    )
    with serve_http("s3cret") as server:
        await add_mcp_source(
            app,
            SANDBOX,
            McpSourceSpec(
                "crm", "http", url=server.url, auth="bearer", token="s3cret", namespace="crm"
            ),
        )
    # The crm server is stopped now: resolving it fails, so it is skipped.
    await scripted_agent(
        app,
        "support",
        ACTING_SCRIPT,
        tool_sources=["builtin", "orders", "crm"],
        tool_allowlist=["orders_lookup_order", "orders_add", "clock_now", "crm_search"],
    )
    catalog = await agent_catalog(app, SANDBOX, "support")
    live_names = [tool["name"] for tool in catalog.tools]
    assert live_names  # the orders server and builtin resolved

    answer = await ask(app, SANDBOX, "What tools does my support agent have right now?")

    assert answer.intent == "agent_tools"
    first_line = answer.text.splitlines()[0]
    assert first_line == (
        f"support can use {len(live_names)} tools right now: {', '.join(live_names)}."
    )
    assert "Skipped: crm (user_mcp): unreachable" in answer.text
    assert "crm_search" in answer.text  # the allowlist entry its skipped source would serve
    assert "http_request" in answer.text  # filtered out by the allowlist
    assert answer.commands == ["cairn agent tools support"]


async def test_why_an_agent_did_not_fire_names_the_filter_and_the_fix(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    hook = add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github", event_type_filter="issue.opened")
    result = await ingest(app, hook.source, "issue.closed", {"title": "closed one"})
    assert [d.decision for d in result.decisions] == ["filtered_out"]

    answer = await ask(app, SANDBOX, "Why didn't the triage agent fire on the last event?")

    assert answer.intent == "why_not_fired"
    assert trigger.trigger_id in answer.text
    assert "event_type_filter" in answer.text
    assert "'issue.opened'" in answer.text and "'issue.closed'" in answer.text
    assert (
        f"cairn agent trigger update {trigger.trigger_id} --event-type issue.closed"
        in answer.commands
    )
    assert f"cairn events explain {result.event_id}" in answer.commands


async def test_an_agent_with_no_trigger_is_told_so(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])

    answer = await ask(app, SANDBOX, "Why didn't my triage agent fire?")

    assert answer.intent == "why_not_fired"
    assert "trigger" in answer.text
    assert any(command.startswith("cairn agent trigger create") for command in answer.commands)


async def test_the_agent_that_used_the_most_tokens_today_is_named_with_the_window(
    app: App,
) -> None:
    heavy = {"turns": [{"text": "long", "usage": {"tokens_in": 5000, "tokens_out": 700}}]}
    light = {"turns": [{"text": "short", "usage": {"tokens_in": 100, "tokens_out": 20}}]}
    await scripted_agent(app, "support", heavy, tool_sources=[])
    await scripted_agent(app, "triage", light, tool_sources=[])
    await fire(app, "support", {}, count=2)
    await fire(app, "triage", {}, count=3)

    answer = await ask(app, SANDBOX, "Which agent used the most tokens today?")

    assert answer.intent == "usage"
    first = answer.text.splitlines()[0]
    assert first.startswith("Since midnight (")
    assert "the agent that used the most tokens is support: 11,400 tokens" in first
    assert "(10,000 in, 1,400 out) over 2 runs" in first
    assert "- triage: 360 tokens over 3 runs" in answer.text
    assert "Total: 11,760 tokens over 5 runs" in answer.text

    day = await ask(app, SANDBOX, "Which agent used the most tokens in the last 24 hours?")
    assert day.text.startswith("In the last 24 hours, the agent that used the most tokens")
    assert day.commands == ["cairn usage --since 1d --by agent"]


async def test_no_usage_is_said_plainly(app: App) -> None:
    answer = await ask(app, SANDBOX, "Which agent used the most tokens today?")

    assert answer.text.startswith("No runs since midnight")


async def test_pausing_a_trigger_is_done_and_can_be_undone(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")

    paused = await ask(app, SANDBOX, f"pause trigger {trigger.trigger_id}")

    assert paused.intent == "pause_trigger"
    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "paused"
    assert f"Paused trigger {trigger.trigger_id}" in paused.text
    assert paused.commands == [f"cairn agent trigger resume {trigger.trigger_id}"]

    again = await ask(app, SANDBOX, f"Pause trigger {trigger.trigger_id}")
    assert "already paused" in again.text

    resumed = await ask(app, SANDBOX, f"resume trigger {trigger.trigger_id}")
    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "active"
    assert resumed.commands == [f"cairn agent trigger pause {trigger.trigger_id}"]


async def test_a_viewer_cannot_pause_a_trigger_through_the_concierge(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")

    answer = await ask(app, SANDBOX, f"pause trigger {trigger.trigger_id}", role="viewer")

    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "active"
    assert "editor key" in answer.text
    assert answer.commands == [f"cairn agent trigger pause {trigger.trigger_id}"]


async def test_destroying_is_never_done_the_command_is_printed_instead(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")

    answer = await ask(app, SANDBOX, f"Delete trigger {trigger.trigger_id}")

    assert answer.intent == "destructive"
    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "active"
    assert answer.commands == [f"cairn agent trigger destroy {trigger.trigger_id} --yes"]
    assert "never destroy" in answer.text

    source = await ask(app, SANDBOX, "destroy the github source")
    assert get_source(app, SANDBOX, "github").status == "active"
    assert source.commands == ["cairn source revoke github"]

    agent = await ask(app, SANDBOX, "remove the triage agent")
    assert agent.commands == ["cairn agent archive triage"]


async def test_unknown_questions_list_what_the_concierge_can_do(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])

    answer = await ask(app, SANDBOX, "What is the meaning of life?")

    assert answer.intent == "help"
    assert "Show me the last 20 runs" in answer.text
    assert "Which agent used the most tokens today?" in answer.text
    assert "Agents here: triage." in answer.text


async def test_an_unknown_agent_is_named_with_the_ones_there_are(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])

    answer = await ask(app, SANDBOX, "What tools does the billing agent have?")

    assert "There is no agent 'billing'" in answer.text
    assert "Agents here: triage." in answer.text


async def test_what_needs_fixing_reports_what_doctor_finds(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")
    await ask(app, SANDBOX, f"pause trigger {trigger.trigger_id}")

    answer = await ask(app, SANDBOX, "What needs fixing?")

    assert answer.intent == "doctor"
    assert trigger.trigger_id in answer.text
    assert f"cairn agent trigger resume {trigger.trigger_id}" in answer.commands
