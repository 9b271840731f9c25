"""Trigger, event, webhook, schedule and one-shot commands."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from cairn.config import Settings
from cairn.services.app import App
from cairn.services.ingest import ingest
from cairn.services.sources import get_source
from tests.cli.conftest import Cli


def make_webhook_agent(cli: Cli) -> tuple[str, str]:
    assert (
        cli(
            "agent",
            "create",
            "triage",
            "--prompt",
            "t",
            "--tool-sources",
            "[]",
            "--script",
            '["Triaging {{event.title}}"]',
        ).exit_code
        == 0
    )
    hook = cli("source", "webhook", "add", "gh", "--json")
    assert hook.exit_code == 0, hook.stderr
    made = cli(
        "agent",
        "trigger",
        "create",
        "triage",
        "--source",
        "gh",
        "--event-type",
        "issue.opened",
        "--filter",
        '{"labels": "bug"}',
        "--rate-limit",
        "5",
        "--json",
    )
    assert made.exit_code == 0, made.stderr
    return hook.json()["source"]["source_id"], made.json()["trigger_id"]


def deliver(database_url: str, home: Path, source_id: str, event_type: str, payload: object) -> str:
    app = App(Settings(home=home, database_url=database_url))
    try:
        source = get_source(app, "default", source_id)

        async def go() -> str:
            return (await ingest(app, source, event_type, payload)).event_id

        return anyio.run(go)
    finally:
        app.close()


def test_webhook_add_prints_the_url_and_the_secret_once(cli: Cli) -> None:
    human = cli("source", "webhook", "add", "gh")
    assert human.exit_code == 0
    assert "/hooks/src_" in human.stdout and "whsec_" in human.stdout
    shown = cli("source", "show", "gh", "--json").json()
    assert "whsec_" not in json.dumps(shown)
    assert shown["config"]["secret_fields"] == ["signing_secret"]


def test_trigger_lifecycle_and_why_an_event_did_not_fire(
    cli: Cli, database_url: str, cairn_home: Path
) -> None:
    source_id, trigger_id = make_webhook_agent(cli)
    listed = cli("agent", "trigger", "list", "triage", "--json").json()
    assert [t["trigger_id"] for t in listed] == [trigger_id]
    assert listed[0]["filter_config"] == {"labels": "bug"}

    fired = deliver(
        database_url, cairn_home, source_id, "issue.opened", {"title": "broken", "labels": ["bug"]}
    )
    ignored = deliver(
        database_url, cairn_home, source_id, "issue.opened", {"title": "typo", "labels": ["docs"]}
    )
    shown = cli("events", "show", ignored)
    assert "filtered out: labels was ['docs'], wanted 'bug'" in shown.stdout
    event = cli("events", "show", fired, "--json").json()
    (decision,) = event["decisions"]
    run_id = decision["run_id"]
    assert decision["decision"] == "fired" and run_id
    audit = cli("agent", "runs", "triage", "--trigger", trigger_id, "--json").json()
    assert [r["run_id"] for r in audit] == [run_id]
    assert audit[0]["output_text"] == "Triaging broken"

    assert "paused" in cli("agent", "trigger", "pause", trigger_id).stdout
    paused = deliver(database_url, cairn_home, source_id, "issue.opened", {"labels": ["bug"]})
    assert "paused" in cli("events", "show", paused).stdout
    cli("agent", "trigger", "resume", trigger_id)
    updated = cli("agent", "trigger", "update", trigger_id, "--rate-limit", "none", "--json")
    assert updated.json()["rate_limit_per_hour"] is None
    assert cli("agent", "trigger", "show", trigger_id, "--json").json()["fire_count"] == 1
    listing = cli("events", "list", "--source", "gh")
    assert listing.stdout.count("evt_") == 3

    refused = cli("agent", "trigger", "destroy", trigger_id)  # no --yes and no terminal
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert cli("agent", "trigger", "destroy", trigger_id, "--yes").exit_code == 0
    gone = cli("agent", "trigger", "show", trigger_id)
    assert gone.exit_code == 2 and "no trigger" in gone.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent", "trigger", "create", "triage", "--source", "builtin"], "no source 'builtin'"),
        (
            ["agent", "trigger", "create", "triage", "--source", "gh", "--filter", "[1]"],
            "--filter must be a JSON object",
        ),
        (
            ["agent", "trigger", "create", "triage", "--source", "gh", "--rate-limit", "0"],
            "at least 1",
        ),
        (["agent", "trigger", "update", "trg_nope", "--rate-limit", "lots"], "--rate-limit"),
        (["source", "schedule", "add", "s", "--cron", "nope"], "invalid cron expression"),
        (["events", "show", "evt_nope"], "no event 'evt_nope'"),
    ],
)
def test_bad_trigger_input_is_one_line(cli: Cli, args: list[str], message: str) -> None:
    make_webhook_agent(cli)
    result = cli(*args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_trigger_on_a_tool_source_is_refused(cli: Cli) -> None:
    make_webhook_agent(cli)
    cli("source", "add", "crm", "--url", "http://127.0.0.1:9/mcp")
    result = cli("agent", "trigger", "create", "triage", "--source", "crm")
    assert result.exit_code == 2 and "emits no events" in result.stderr


def test_schedule_source_add(cli: Cli) -> None:
    made = cli(
        "source",
        "schedule",
        "add",
        "nightly",
        "--cron",
        "0 2 * * *",
        "--timezone",
        "Europe/Paris",
        "--json",
    )
    assert made.exit_code == 0, made.stderr
    assert made.json()["config"]["cron"] == "0 2 * * *"
    assert made.json()["kind"] == "schedule"


def test_run_streams_a_one_shot_turn_and_leaves_a_oneshot_row(cli: Cli) -> None:
    script = json.dumps(
        {
            "turns": [
                {
                    "text": "Checking. ",
                    "tool_calls": [
                        {
                            "name": "regex_find",
                            "arguments": {"text": "{{event}}", "pattern": "[0-9]+"},
                        }
                    ],
                },
                {"text": "Numbers: {{results.0}}"},
            ]
        }
    )
    result = cli("run", "order 42 and 7", "--sources", '["builtin"]', "--script", script)
    assert result.exit_code == 0, result.stderr
    assert "regex_find" in result.stdout and 'Numbers: ["42", "7"]' in result.stdout
    runs = cli("agent", "runs", "oneshot", "--json").json()
    assert runs[0]["kind"] == "oneshot" and runs[0]["event_payload"] == "order 42 and 7"
    assert cli("agent", "show", "oneshot", "--json").json()["status"] == "archived"
    with_agent = cli("agent", "create", "helper", "--prompt", "h", "--script", '["Hi {{event}}"]')
    assert with_agent.exit_code == 0
    again = cli("run", "there", "--agent", "helper", "--json")
    assert again.exit_code == 0
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert lines[-1]["event"] == "end" and lines[-1]["data"]["status"] == "succeeded"
