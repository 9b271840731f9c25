"""``cairn agent …`` as a person or a script uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

TOOL_SCRIPT = json.dumps(
    {
        "turns": [
            {
                "text": "Extracting.",
                "tool_calls": [
                    {
                        "name": "json_extract",
                        "arguments": {"document": "{{event}}", "path": "ticket.title"},
                    }
                ],
            },
            {"text": "Title: {{results.0}}"},
        ]
    }
)


def create(cli: Cli, slug: str = "support", *extra: str) -> None:
    result = cli("agent", "create", slug, "--prompt", "You help.", *extra)
    assert result.exit_code == 0, result.stderr


def test_create_then_show_returns_every_field_as_json(cli: Cli, tmp_path: Path) -> None:
    prompt = tmp_path / "p.md"
    prompt.write_text("You triage bug reports.\n")
    result = cli(
        "agent",
        "create",
        "triage",
        "--prompt-file",
        str(prompt),
        "--name",
        "Triage",
        "--description",
        "Files bugs",
        "--backend",
        "scripted",
        "--model",
        "scripted-1",
        "--temperature",
        "0.2",
        "--max-tokens",
        "500",
        "--max-turns",
        "3",
        "--timeout-s",
        "30",
        "--tool-sources",
        '["builtin"]',
        "--tool-allowlist",
        '["clock_now"]',
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    shown = cli("agent", "show", "triage", "--json").json()
    assert shown["slug"] == "triage"
    assert shown["name"] == "Triage"
    assert shown["system_prompt"] == "You triage bug reports.\n"
    assert shown["tool_sources"] == ["builtin"]
    assert shown["tool_allowlist"] == ["clock_now"]
    assert shown["model_settings"] == {
        "backend": "scripted",
        "model": "scripted-1",
        "temperature": 0.2,
        "max_tokens": 500,
        "max_turns": 3,
        "timeout_s": 30.0,
    }
    assert shown["version"] == 1 and shown["status"] == "active"
    assert shown["agent_id"].startswith("agt_")


def test_every_change_that_alters_behaviour_bumps_the_version_and_runs_keep_it(cli: Cli) -> None:
    create(cli)
    version = 1
    for change in (
        ["--max-turns", "4"],
        ["--prompt", "You help, briefly."],
        ["--script", '{"turns": [{"text": "other"}]}'],
        ["--tool-allowlist", '["json_extract"]'],
        ["--tool-sources", '["builtin"]'],
    ):
        updated = cli("agent", "update", "support", *change, "--json").json()
        version += 1
        assert updated["version"] == version, change
        again = cli("agent", "update", "support", *change, "--json").json()
        assert again["version"] == version, f"the same value again is no change: {change}"
    assert updated["model_settings"]["max_turns"] == 4  # only the named fields changed
    renamed = cli("agent", "update", "support", "--name", "Support desk", "--json").json()
    assert renamed["version"] == version, "a new name does not change what a run does"
    run = cli("agent", "test", "support", "--json").json()
    assert run["agent_version"] == version


def test_archive_and_unarchive_are_reversible(cli: Cli) -> None:
    create(cli)
    cli("agent", "archive", "support")
    assert cli("agent", "show", "support", "--json").json()["status"] == "archived"
    cli("agent", "unarchive", "support")
    assert cli("agent", "show", "support", "--json").json()["status"] == "active"
    listed = cli("agent", "list", "--json").json()
    assert [a["slug"] for a in listed] == ["support"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent", "create", "Bad_Slug", "--prompt", "x"], "invalid slug 'Bad_Slug'"),
        (
            ["agent", "create", "ok", "--prompt", "x", "--tool-allowlist", "[clock"],
            "--tool-allowlist is not valid JSON",
        ),
        (
            ["agent", "create", "ok", "--prompt", "x", "--tool-allowlist", '{"a": 1}'],
            "must be a JSON list of strings",
        ),
        (
            ["agent", "create", "ok", "--prompt", "x", "--backend", "gpt5000"],
            "unknown model backend 'gpt5000'; known: anthropic, google, openai, scripted",
        ),
        (["agent", "create", "ok", "--prompt", "x", "--max-turns", "0"], "max_turns 0"),
        (["agent", "create", "ok"], "needs a system prompt"),
        (
            ["agent", "create", "ok", "--prompt", "x", "--script", '{"turns": [{"txt": "hi"}]}'],
            "unknown key 'txt'",
        ),
        (["agent", "show", "nobody"], "no agent 'nobody'"),
        (["agent", "test", "nobody"], "no agent 'nobody'"),
        (["agent", "runs", "nobody"], "no agent 'nobody'"),
        (["runs", "show", "run_doesnotexist"], "no run 'run_doesnotexist'"),
        (["agent", "runs", "nobody", "--since", "yesterday"], "invalid duration 'yesterday'"),
    ],
)
def test_bad_input_gets_one_line_error_and_exit_code_2(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_duplicate_slug_is_a_one_line_error(cli: Cli) -> None:
    create(cli)
    result = cli("agent", "create", "support", "--prompt", "again")
    assert result.exit_code == 2
    assert "already exists" in result.stderr and result.stderr.count("\n") == 1


def test_invalid_event_payload_is_refused_before_anything_runs(cli: Cli) -> None:
    create(cli)
    result = cli("agent", "test", "support", "--event-payload", "{not json")
    assert result.exit_code == 2
    assert "--event-payload is not valid JSON" in result.stderr
    assert cli("agent", "runs", "support", "--json").json() == []


def test_stale_allowlist_entry_warns_with_did_you_mean_but_is_saved(cli: Cli) -> None:
    result = cli(
        "agent",
        "create",
        "support",
        "--prompt",
        "x",
        "--tool-sources",
        '["builtin"]',
        "--tool-allowlist",
        '["clock_nwo", "json_extract"]',
        "--json",
    )
    assert result.exit_code == 0
    assert "allowlist entry 'clock_nwo' matches no tool" in result.stderr
    assert "did you mean: clock_now" in result.stderr
    assert result.json()["tool_allowlist"] == ["clock_nwo", "json_extract"]


def test_test_fire_prints_the_run_and_its_trace(cli: Cli) -> None:
    create(cli, "support", "--script", TOOL_SCRIPT, "--tool-allowlist", '["json_extract"]')
    result = cli(
        "agent", "test", "support", "--event-payload", '{"ticket": {"title": "broken checkout"}}'
    )
    assert result.exit_code == 0, result.stderr
    assert "succeeded" in result.stdout and "outcome acted" in result.stdout
    assert "json_extract" in result.stdout
    assert "Title: broken checkout" in result.stdout
    assert "filtered out by allowlist: clock_now, http_request, regex_find" in result.stdout


def test_test_fire_of_a_failing_run_exits_1_and_json_has_the_error(cli: Cli) -> None:
    create(cli, "support", "--script", '{"turns": [{"error": "upstream model exploded"}]}')
    result = cli("agent", "test", "support", "--event-payload", "{}", "--json")
    assert result.exit_code == 1
    row = result.json()
    assert row["status"] == "failed"
    assert row["error_type"] == "model_error"
    assert "upstream model exploded" in row["error_message"]


def test_runs_lists_newest_first_with_filters_and_a_cursor(cli: Cli) -> None:
    create(cli, "support", "--script", TOOL_SCRIPT)
    ids = [
        cli(
            "agent", "test", "support", "--event-payload", '{"ticket": {"title": "t"}}', "--json"
        ).json()["run_id"]
        for _ in range(3)
    ]
    cli("agent", "update", "support", "--script", '{"turns": [{"error": "boom"}]}')
    failed = cli("agent", "test", "support", "--json").json()["run_id"]
    listed = [r["run_id"] for r in cli("agent", "runs", "support", "--json").json()]
    assert listed == [failed, *reversed(ids)]
    only_failed = cli("agent", "runs", "support", "--status", "failed", "--json").json()
    assert [r["run_id"] for r in only_failed] == [failed]
    page = cli("agent", "runs", "support", "--limit", "2", "--json").json()
    rest = cli("agent", "runs", "support", "--before", page[-1]["run_id"], "--json").json()
    assert [r["run_id"] for r in page + rest] == listed
    assert cli("agent", "runs", "support", "--kind", "manual", "--json").json() == []
    assert len(cli("agent", "runs", "support", "--since", "1h", "--json").json()) == 4
    table = cli("agent", "runs", "support")
    assert failed in table.stdout and "failed" in table.stdout


def test_runs_show_json_has_the_whole_row_trace_and_events(cli: Cli) -> None:
    create(cli, "support", "--script", TOOL_SCRIPT, "--tool-sources", '["builtin"]')
    run_id = cli(
        "agent", "test", "support", "--event-payload", '{"ticket": {"title": "x"}}', "--json"
    ).json()["run_id"]
    row = cli("runs", "show", run_id, "--json").json()
    assert row["run_id"] == run_id
    assert row["tool_calls"][0]["name"] == "json_extract"
    assert row["tool_calls"][0]["result"] == "x"
    assert row["tool_resolution_trace"]["sources_resolved"][0]["label"] == "builtin"
    kinds = [e["kind"] for e in row["events"]]
    assert kinds[0] == "text" and kinds[-1] == "finish"
    assert "tool_call" in kinds and "tool_result" in kinds
    human = cli("runs", "show", run_id, "--events")
    assert "tool resolution" in human.stdout and "events (" in human.stdout


def test_agent_tools_shows_the_catalog_and_the_trace_without_running(cli: Cli) -> None:
    create(cli, "support", "--tool-allowlist", '["clock_now", "lookup_order"]')
    catalog = cli("agent", "tools", "support", "--json").json()
    assert [t["name"] for t in catalog["tools"]] == ["clock_now"]
    trace = catalog["trace"]
    assert trace["tool_names_advertised"] == ["clock_now"]
    assert [m["entry"] for m in trace["allowlist_missing_entries"]] == ["lookup_order"]
    assert cli("agent", "runs", "support", "--json").json() == []
    human = cli("agent", "tools", "support")
    assert "stale allowlist entry 'lookup_order'" in human.stdout


def test_prune_deletes_nothing_recent(cli: Cli) -> None:
    create(cli)
    cli("agent", "test", "support")
    assert cli("runs", "prune", "--older-than", "30d", "--json").json()["deleted"] == 0
    assert len(cli("agent", "runs", "support", "--json").json()) == 1
    bad = cli("runs", "prune", "--older-than", "soon")
    assert bad.exit_code == 2 and "invalid duration" in bad.stderr
