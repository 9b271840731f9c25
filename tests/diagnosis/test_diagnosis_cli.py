"""The commands: ``cairn runs explain``, ``cairn events explain``, ``cairn agent
why-not-fired`` and ``cairn doctor`` (exit 1 when something needs fixing), through the real
entry point in-process."""

from __future__ import annotations

import json

import anyio

from cairn.services.app import App
from cairn.services.ingest import ingest
from cairn.services.webhooks import add_webhook_source
from tests.cli.conftest import Cli

NO_OP = json.dumps([{"text": ""}])
ACTS = json.dumps([{"tool_calls": [{"name": "clock_now"}]}, "Done."])


def _agent(cli: Cli, slug: str, script: str, *extra: str) -> None:
    made = cli("agent", "create", slug, "--prompt", "You help.", "--script", script, *extra)
    assert made.exit_code == 0, made.stderr


def test_runs_explain_prints_the_cause_the_fix_and_the_evidence(cli: Cli) -> None:
    _agent(cli, "support", NO_OP)
    run = cli("agent", "test", "support", "--json").json()
    shown = cli("runs", "explain", run["run_id"])
    assert shown.exit_code == 0
    assert f"Run {run['run_id']} of support (succeeded, model_chose_no_tool)" in shown.stdout
    assert "! warning  model_chose_no_tool" in shown.stdout
    assert "fix: Make the system prompt say when to call which tool" in shown.stdout
    assert f"cairn runs replay {run['run_id']}" in shown.stdout
    assert "    stop_reason: end_turn" in shown.stdout
    data = cli("runs", "explain", run["run_id"], "--json").json()
    assert data["kind"] == "run"
    assert data["subject"] == run["run_id"]
    assert data["findings"][0]["code"] == "model_chose_no_tool"
    assert data["findings"][0]["evidence"]["tool_names_advertised"][0] == "clock_now"


def test_runs_explain_shows_json_lists_in_commands_as_typed(cli: Cli) -> None:
    _agent(cli, "support", NO_OP, "--tool-allowlist", '["clock_nw"]')
    run = cli("agent", "test", "support", "--json").json()
    shown = cli("runs", "explain", run["run_id"])
    assert """cairn agent update support --tool-allowlist '["clock_now"]'""" in shown.stdout


def test_runs_explain_of_an_unknown_run_is_a_one_line_error(cli: Cli) -> None:
    result = cli("runs", "explain", "run_nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_events_explain_and_why_not_fired(cli: Cli, app: App) -> None:
    _agent(cli, "triage", ACTS)
    source = add_webhook_source(app, "default", "github").source
    made = cli(
        "agent",
        "trigger",
        "create",
        "triage",
        "--source",
        "github",
        "--event-type",
        "issue.opened",
        "--json",
    ).json()
    result = anyio.run(ingest, app, source, "issue.closed", {"title": "x"})
    shown = cli("events", "explain", result.event_id)
    assert shown.exit_code == 0
    assert "filtered_out" in shown.stdout
    assert f"cairn agent trigger update {made['trigger_id']} --event-type issue.closed" in (
        shown.stdout
    )
    data = cli("events", "explain", result.event_id, "--json").json()
    assert data["findings"][0]["evidence"]["actual"] == "issue.closed"
    why = cli("agent", "why-not-fired", "triage", "--json").json()
    assert why["kind"] == "agent"
    assert why["summary"].startswith(f"triage did not fire on its last event, {result.event_id}")


def test_doctor_exits_0_when_all_is_well_and_1_when_something_needs_fixing(cli: Cli) -> None:
    _agent(cli, "support", ACTS, "--tool-allowlist", '["clock_now"]')
    healthy = cli("doctor")
    assert healthy.exit_code == 0, healthy.stdout
    assert (
        "✓ nothing needs fixing (checked 1 agent, 0 triggers, 1 source, 0 runs)" in healthy.stdout
    )
    _agent(cli, "billing", ACTS, "--tool-allowlist", '["clock_nw"]')
    sick = cli("doctor")
    assert sick.exit_code == 1
    assert "1 thing to fix" in sick.stdout
    assert "✗ error  stale_allowlist  [billing]" in sick.stdout
    report = cli("doctor", "--json")
    assert report.exit_code == 1
    data = report.json()
    assert data["ok"] is False
    assert [(f["code"], f["subject"]) for f in data["findings"]] == [("stale_allowlist", "billing")]
    assert cli("doctor", "--agent", "support").exit_code == 0


def test_doctor_quiet_days_is_passed_through(cli: Cli, app: App) -> None:
    _agent(cli, "triage", ACTS)
    add_webhook_source(app, "default", "github")
    cli("agent", "trigger", "create", "triage", "--source", "github")
    assert cli("doctor").exit_code == 0
    quiet = cli("doctor", "--quiet-days", "0", "--json")
    assert quiet.exit_code == 1
    assert [f["code"] for f in quiet.json()["findings"]] == ["trigger_quiet"]
    assert cli("doctor", "--quiet-days", "-1").exit_code == 2
