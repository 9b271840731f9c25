"""``cairn ask``, ``POST /ask`` and ``client.ask``: the same Concierge over each transport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import cairn
from cairn.client.local import LocalTransport
from cairn.services.app import App
from cairn.services.runs import RunQuery, get_run, list_runs
from tests.api.conftest import OTHER, Deployment
from tests.cli.conftest import Cli
from tests.concierge.helpers import ACTING_SCRIPT, SANDBOX, TRIAGE_SCRIPT
from tests.test_docs import ROOT, json_blocks

QUESTION = "Show me the last 20 runs for the support agent"


def make_support(cli: Cli) -> list[str]:
    """A support agent with two test runs, made through the CLI; their ids, newest first."""
    made = cli(
        "agent",
        "create",
        "support",
        "--prompt",
        "You help.",
        "--tool-sources",
        '["builtin"]',
        "--script",
        json.dumps(ACTING_SCRIPT),
    )
    assert made.exit_code == 0, made.stderr
    ids = [cli("agent", "test", "support", "--json").json()["run_id"] for _ in range(2)]
    return list(reversed(ids))


def test_cairn_ask_answers_in_plain_text_and_as_json(cli: Cli) -> None:
    newest_first = make_support(cli)

    shown = cli("ask", QUESTION)
    assert shown.exit_code == 0, shown.stderr
    assert all(run_id in shown.stdout for run_id in newest_first)
    assert "Commands:\n  cairn agent runs support --limit 20" in shown.stdout
    assert "answered by the offline interpreter" in shown.stderr

    as_json = cli("ask", "--json", *QUESTION.split())
    assert as_json.exit_code == 0, as_json.stderr
    answer = as_json.json()
    assert answer["run_ids"] == newest_first
    assert answer["mode"] == "offline"
    assert answer["intent"] == "list_runs"
    assert answer["concierge_run_id"] is None


def test_cairn_ask_test_fires_with_the_payload_in_the_question(cli: Cli) -> None:
    make_support(cli)

    result = cli(
        "ask", "--yes", 'Test the support agent with this fake event: {"title": "broken checkout"}'
    )

    assert result.exit_code == 0, result.stderr
    assert "Test-fired support with" in result.stdout
    assert "outcome acted" in result.stdout


def test_cairn_ask_without_a_question_is_a_one_line_error(cli: Cli) -> None:
    result = cli("ask", "  ")

    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ask a question")


def test_cairn_ask_prints_the_default_concierge_prompt(cli: Cli) -> None:
    from cairn.services.concierge.prompt import DEFAULT_PROMPT

    result = cli("ask", "--print-prompt")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == DEFAULT_PROMPT and "cairn_why_not_fired" in result.stdout


def test_the_in_process_sdk_asks_the_same_concierge(app: App) -> None:
    client = cairn.Client(transport=LocalTransport(app))
    client.agents.create(
        "support", "You help.", tool_sources=["builtin"], model_settings={"script": ACTING_SCRIPT}
    )
    runs = [client.agents.test("support", {"ticket": n}) for n in range(2)]

    answer = client.ask(QUESTION)

    assert answer.run_ids == [run.run_id for run in reversed(runs)]
    assert answer.mode == "offline"
    assert client.ask("What is the meaning of life?", offline=True).intent == "help"


def test_the_api_answers_every_role_and_scopes_answers_to_the_key_sandbox(
    served: Deployment,
) -> None:
    owner = served.client()
    owner.agents.create(
        "support",
        "You help.",
        tool_sources=["builtin"],
        model_settings={"script": ACTING_SCRIPT},
    )
    run = owner.agents.test("support", {"ticket": 1})

    for token in (served.keys.owner, served.keys.editor, served.keys.viewer):
        answer = served.client(token).ask(QUESTION)
        assert answer.run_ids == [run.run_id]
        assert answer.mode == "offline"

    elsewhere = served.client(served.keys.other_owner, sandbox=OTHER).ask(QUESTION)
    assert elsewhere.run_ids == []
    assert run.run_id not in elsewhere.text


def test_a_viewer_key_cannot_make_the_concierge_pause_a_trigger(served: Deployment) -> None:
    owner = served.client()
    owner.agents.create("triage", "t", tool_sources=[], model_settings={"script": TRIAGE_SCRIPT})
    owner.transport.call("add_webhook", body={"label": "github"})
    trigger = owner.transport.call(
        "create_trigger", {"slug": "triage"}, {"data_source_id": "github"}
    )
    question = f"pause trigger {trigger['trigger_id']}"

    refused = served.client(served.keys.viewer).ask(question)
    assert "editor key" in refused.text
    assert owner.transport.call("get_trigger", {"trigger_id": trigger["trigger_id"]})["status"] == (
        "active"
    )

    served.client(served.keys.editor).ask(question)
    assert owner.transport.call("get_trigger", {"trigger_id": trigger["trigger_id"]})["status"] == (
        "paused"
    )


def test_an_empty_question_is_a_problem(served: Deployment) -> None:
    response = httpx.post(
        f"{served.url}/api/v1/sandboxes/default/ask",
        json={"question": ""},
        headers={"Authorization": f"Bearer {served.keys.owner}"},
        timeout=10,
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.anyio
async def test_the_served_concierge_agent_test_fires_through_the_worker_pool(
    served: Deployment,
) -> None:
    owner = served.client()
    owner.agents.create("triage", "t", tool_sources=[], model_settings={"script": TRIAGE_SCRIPT})
    owner.agents.create(
        "concierge",
        "You answer questions about Cairn with its own tools.",
        tool_sources=["cairn"],
        model_settings={
            "script": {
                "turns": [
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
                    {"text": "Fired {{results.0.run_id}}: {{results.0.output_text}}"},
                ]
            }
        },
    )

    async with served.async_client() as client:
        answer = await client.ask('Test the triage agent with {"title": "broken checkout"}')

    assert answer.mode == "agent"
    (fired,) = answer.run_ids
    assert answer.text == f"Fired {fired}: Triaging broken checkout"
    assert answer.concierge_run_id is not None
    concierge_run = get_run(served.app, SANDBOX, answer.concierge_run_id)
    assert concierge_run.status == "succeeded"
    assert [c.name for c in concierge_run.tool_calls] == ["cairn_test_fire"]
    assert get_run(served.app, SANDBOX, fired).kind == "test"
    assert [r.run_id for r in list_runs(served.app, SANDBOX, RunQuery(agent_slug="concierge"))] == [
        answer.concierge_run_id
    ]


def test_cairn_ask_fires_the_concierge_agent_made_as_the_docs_say(cli: Cli, tmp_path: Path) -> None:
    (script,) = json_blocks(ROOT / "docs" / "concierge.md")
    script_file = tmp_path / "concierge-script.json"
    script_file.write_text(json.dumps(script))
    newest = make_support(cli)[0]
    made = cli(
        "agent",
        "create",
        "concierge",
        "--prompt",
        "Answer from Cairn's tools.",
        "--tool-sources",
        '["cairn"]',
        "--script-file",
        str(script_file),
    )
    assert made.exit_code == 0, made.stderr

    result = cli("ask", "--json", "Why didn't the support agent's last run use any tools?")

    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert answer["mode"] == "agent"
    assert answer["run_ids"] == [newest]
    concierge_run = cli("runs", "show", answer["concierge_run_id"], "--json").json()
    assert [c["name"] for c in concierge_run["tool_calls"]] == [
        "cairn_list_runs",
        "cairn_explain_run",
    ]
    offline = cli("ask", "--offline", "--json", "What is the meaning of life?").json()
    assert offline["mode"] == "offline"
