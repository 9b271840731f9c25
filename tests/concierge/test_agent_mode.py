"""The Concierge as a Cairn agent: the scripted backend stands in for an LLM whose turns
call Cairn's own operations (the ``cairn`` tool source); its runs land in the ledger."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.domain.agents import ModelSettings
from cairn.errors import UsageError
from cairn.services.access import create_sandbox
from cairn.services.agents import AgentChanges, AgentSpec, agent_catalog, create_agent, update_agent
from cairn.services.app import App
from cairn.services.concierge import ask
from cairn.services.concierge.source import ensure_cairn_source
from cairn.services.runs import RunQuery, fire_agent, get_run, list_runs
from cairn.services.triggers import create_trigger, get_trigger
from cairn.services.webhooks import add_webhook_source
from cairn.tools.cairn_ops import NO_GRANT
from tests.concierge.helpers import SANDBOX, TRIAGE_SCRIPT, fire, scripted_agent
from tests.test_docs import ROOT, json_blocks

pytestmark = pytest.mark.anyio


async def live_tool_names(app: App, slug: str = "concierge") -> dict[str, str]:
    """The Concierge's advertised tools by operation, copied from its live catalog."""
    catalog = await agent_catalog(app, SANDBOX, slug)
    return {tool["name"].removeprefix("cairn_"): tool["name"] for tool in catalog.tools}


async def concierge(app: App, turns: list[dict[str, Any]], slug: str = "concierge") -> None:
    """A scripted Concierge agent: Cairn's own tool source and nothing else."""
    ensure_cairn_source(app, SANDBOX)
    await scripted_agent(app, slug, {"turns": turns}, tool_sources=["cairn"])


async def rescript(app: App, turns: list[dict[str, Any]]) -> None:
    """Give the Concierge a new script."""
    changes = AgentChanges(model_settings={"script": {"turns": turns}})
    await update_agent(app, SANDBOX, "concierge", changes)


async def test_the_concierge_agent_calls_cairn_tools_and_its_run_lands_in_the_ledger(
    app: App,
) -> None:
    await scripted_agent(app, "support", "I looked into it.", tool_sources=[])
    older, latest = await fire(app, "support", {"ticket": 1}, count=2)
    await concierge(app, [])
    tools = await live_tool_names(app)
    assert set(tools) >= {
        "list_runs",
        "explain_run",
        "test_fire",
        "agent_tools",
        "usage",
        "pause_trigger",
        "why_not_fired",
    }
    # The script names the tools as the live catalog lists them, never invented.
    await rescript(
        app,
        [
            {
                "text": "Looking at the runs. ",
                "tool_calls": [
                    {
                        "name": tools["list_runs"],
                        "arguments": {"agent": "{{event.agents.0}}", "limit": 5},
                    }
                ],
            },
            {
                "tool_calls": [
                    {
                        "name": tools["explain_run"],
                        "arguments": {"run_id": "{{results.0.runs.0.run_id}}"},
                    }
                ]
            },
            {"text": "The last run is {{results.0.runs.0.run_id}}: {{results.1.summary}}"},
        ],
    )

    answer = await ask(app, SANDBOX, "Why didn't the support agent's last run use any tools?")

    assert answer.mode == "agent"
    assert answer.run_ids == [latest.run_id]
    assert older.run_id not in answer.text
    assert "tool_sources is []" in answer.text
    assert answer.concierge_run_id is not None
    run = get_run(app, SANDBOX, answer.concierge_run_id)
    assert run.agent_slug == "concierge"
    assert run.kind == "manual"
    assert run.status == "succeeded"
    assert run.outcome == "acted"
    assert run.event_payload["question"].startswith("Why didn't the support agent")
    assert [call.name for call in run.tool_calls] == [tools["list_runs"], tools["explain_run"]]
    assert all(call.error is None for call in run.tool_calls)
    listed = run.tool_calls[0].result["runs"]
    assert [r["run_id"] for r in listed] == [latest.run_id, older.run_id]
    assert run.tool_calls[1].arguments == {"run_id": latest.run_id}
    assert run.tool_calls[1].result["findings"][0]["code"] == "tool_less_by_choice"
    ledger = list_runs(app, SANDBOX, RunQuery(agent_slug="concierge"))
    assert [r.run_id for r in ledger] == [answer.concierge_run_id]


async def test_the_concierge_agent_test_fires_an_agent_and_cites_the_new_run(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    await concierge(
        app,
        [
            {
                "tool_calls": [
                    {
                        "name": "cairn_test_fire",
                        "arguments": {
                            "agent": "{{event.agents.0}}",
                            "event_payload": "{{event.payload}}",
                        },
                    }
                ]
            },
            {"text": "Fired {{results.0.run_id}}: {{results.0.status}}, {{results.0.output_text}}"},
        ],
    )

    answer = await ask(
        app, SANDBOX, 'Test the triage agent with this fake event: {"title": "broken checkout"}'
    )

    assert answer.mode == "agent"
    (fired,) = answer.run_ids
    assert answer.text == f"Fired {fired}: succeeded, Triaging broken checkout"
    test_run = get_run(app, SANDBOX, fired)
    assert test_run.agent_slug == "triage"
    assert test_run.kind == "test"
    assert test_run.event_payload == {"title": "broken checkout"}


async def test_the_concierge_agent_pauses_a_trigger_only_for_an_editor(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")
    pause = {
        "tool_calls": [
            {"name": "cairn_pause_trigger", "arguments": {"trigger_id": "{{event.trigger_ids.0}}"}}
        ]
    }
    await concierge(app, [pause, {"text": "Result: {{results.0}}"}])
    question = f"Pause trigger {trigger.trigger_id} please"

    refused = await ask(app, SANDBOX, question, role="viewer")

    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "active"
    assert refused.concierge_run_id is not None
    call = get_run(app, SANDBOX, refused.concierge_run_id).tool_calls[0]
    assert call.error is not None and "editor" in call.error

    done = await ask(app, SANDBOX, question, role="editor")

    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "paused"
    assert done.concierge_run_id is not None
    call = get_run(app, SANDBOX, done.concierge_run_id).tool_calls[0]
    assert call.error is None
    assert call.result["resume_command"] == f"cairn agent trigger resume {trigger.trigger_id}"


async def test_destroying_skips_the_agent_and_prints_the_command(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", "github")
    await concierge(app, [{"text": "ok"}])

    answer = await ask(app, SANDBOX, f"destroy trigger {trigger.trigger_id}")

    assert answer.mode == "offline"
    assert answer.commands == [f"cairn agent trigger destroy {trigger.trigger_id} --yes"]
    assert list_runs(app, SANDBOX, RunQuery(agent_slug="concierge")) == []
    assert get_trigger(app, SANDBOX, trigger.trigger_id).status == "active"


async def test_a_concierge_run_that_fails_is_answered_offline_saying_so(app: App) -> None:
    await scripted_agent(app, "triage", TRIAGE_SCRIPT, tool_sources=[])
    await concierge(app, [{"error": {"message": "model overloaded", "reason": "overloaded"}}])

    answer = await ask(app, SANDBOX, "What tools does the triage agent have right now?")

    assert answer.mode == "offline"
    assert answer.concierge_run_id is not None
    assert get_run(app, SANDBOX, answer.concierge_run_id).status == "failed"
    assert f"The Concierge agent's run {answer.concierge_run_id} did not answer" in answer.text
    assert "model overloaded" in answer.text
    assert "triage has no tools right now" in answer.text
    assert f"cairn runs explain {answer.concierge_run_id}" in answer.commands


async def test_offline_is_chosen_on_request_even_with_a_concierge(app: App) -> None:
    await concierge(app, [{"text": "from the agent"}])

    answer = await ask(app, SANDBOX, "What is the meaning of life?", offline=True)

    assert answer.mode == "offline"
    assert answer.concierge_run_id is None


async def test_the_environment_names_the_concierge_agent(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    await concierge(app, [{"text": "helper here"}], slug="helper")
    monkeypatch.setenv("CAIRN_CONCIERGE_AGENT", "helper")

    answer = await ask(app, SANDBOX, "hello?")

    assert (answer.mode, answer.text) == ("agent", "helper here")
    monkeypatch.setenv("CAIRN_CONCIERGE_AGENT", "nobody")
    with pytest.raises(UsageError, match="CAIRN_CONCIERGE_AGENT names agent 'nobody'"):
        await ask(app, SANDBOX, "hello?")


async def test_an_agent_slugged_concierge_without_cairn_tools_is_not_the_concierge(
    app: App,
) -> None:
    await scripted_agent(app, "concierge", "I am just an agent", tool_sources=[])

    answer = await ask(app, SANDBOX, "What is the meaning of life?")

    assert answer.mode == "offline"


async def test_cairn_tools_refuse_runs_the_concierge_did_not_start(app: App) -> None:
    await concierge(
        app,
        [{"tool_calls": [{"name": "cairn_list_agents", "arguments": {}}]}, {"text": "done"}],
    )

    run = await fire_agent(app, SANDBOX, "concierge", "list the agents")

    assert run.outcome == "tool_errors"
    assert run.tool_calls[0].error == NO_GRANT
    # The catalog still tells the truth: the tools are there.
    assert "cairn_list_agents" in (await live_tool_names(app)).values()


async def test_the_concierge_does_not_test_fire_a_concierge(app: App) -> None:
    await concierge(
        app,
        [
            {
                "tool_calls": [
                    {"name": "cairn_test_fire", "arguments": {"agent": "concierge"}},
                ]
            },
            {"text": "{{results.0}}"},
        ],
    )

    answer = await ask(app, SANDBOX, "test yourself")

    assert "does not test-fire a Concierge" in answer.text
    assert len(list_runs(app, SANDBOX, RunQuery(agent_slug="concierge"))) == 1


async def test_the_cairn_source_is_registered_once_per_sandbox(app: App) -> None:
    first = ensure_cairn_source(app, SANDBOX)
    again = ensure_cairn_source(app, SANDBOX)

    assert first.source_id == again.source_id
    assert (first.kind, first.label, first.config) == ("cairn", "cairn", {"namespace": "cairn"})


async def test_cairn_tools_act_in_the_concierge_sandbox_only(app: App) -> None:
    create_sandbox(app, "other", "Another tenant")
    await scripted_agent(app, "support", "theirs", tool_sources=[], sandbox="other")
    theirs = await fire_agent(app, "other", "support", {})
    await scripted_agent(app, "support", "ours", tool_sources=[])
    (ours,) = await fire(app, "support", {})
    await concierge(
        app,
        [
            {"tool_calls": [{"name": "cairn_list_runs", "arguments": {}}]},
            {"text": "{{results.0}}"},
        ],
    )

    answer = await ask(app, SANDBOX, "list every run")

    assert ours.run_id in answer.run_ids
    assert theirs.run_id not in answer.text


async def test_the_scripted_concierge_of_the_docs_runs_as_documented(app: App) -> None:
    (script,) = json_blocks(ROOT / "docs" / "concierge.md")
    await scripted_agent(app, "support", "I looked into it.", tool_sources=[])
    (run,) = await fire(app, "support", {"ticket": 3})
    ensure_cairn_source(app, SANDBOX)
    await scripted_agent(app, "concierge", script, tool_sources=["cairn"])

    answer = await ask(app, SANDBOX, "Why didn't the support agent's last run use any tools?")

    assert answer.mode == "agent"
    assert answer.run_ids == [run.run_id]
    assert answer.text.startswith(f"The latest run is {run.run_id}: ")


async def test_a_new_concierge_lists_its_cairn_tools_before_the_first_question(
    app: App,
) -> None:
    from cairn.services.concierge.prompt import DEFAULT_PROMPT
    from cairn.services.diagnosis import doctor

    # Made as the docs say, with the default prompt: no question has been asked yet.
    await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug="concierge",
            system_prompt=DEFAULT_PROMPT,
            tool_sources=["cairn"],
            model_settings=ModelSettings(script=TRIAGE_SCRIPT),
        ),
    )

    catalog = await agent_catalog(app, SANDBOX, "concierge")
    report = await doctor(app, SANDBOX)

    names = {tool["name"] for tool in catalog.tools}
    assert {"cairn_list_runs", "cairn_explain_run", "cairn_why_not_fired"} <= names
    assert catalog.trace.sources_skipped == []
    assert all(name in DEFAULT_PROMPT for name in ("cairn_explain_run", "cairn_agent_tools"))
    assert [f.code for f in report.findings if f.code == "source_skipped"] == []
