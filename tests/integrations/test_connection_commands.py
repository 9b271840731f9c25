"""``cairn connection …`` and ``cairn source integration add`` against the local provider."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli.conftest import Cli
from tests.fakes.provider_server import FakeProvider

POST_SCRIPT = json.dumps(
    {
        "turns": [
            {
                "tool_calls": [
                    {
                        "name": "pd_slack_post_message",
                        "arguments": {"channel": "#ops", "text": "{{event.title}}"},
                    }
                ]
            },
            {"text": "Done: {{results.0}}"},
        ]
    }
)


def add_source(cli: Cli, provider: FakeProvider) -> dict[str, object]:
    added = cli("source", "integration", "add", "slack", "--provider-url", provider.url, "--json")
    assert added.exit_code == 0, added.stderr
    made: dict[str, object] = added.json()
    return made


def create_agent(cli: Cli, *extra: str) -> None:
    made = cli("agent", "create", "notifier", "--prompt", "Tell the team.", *extra)
    assert made.exit_code == 0, made.stderr


def test_a_connected_app_is_called_by_an_agent_and_its_token_never_shows(
    cli: Cli, provider: FakeProvider, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = provider.issue("slack")
    monkeypatch.setenv("CAIRN_CONNECT_TOKEN", token)  # out of the shell history
    added = cli("connection", "add", "slack", "--expires-in", "3600", "--account", "ops@acme")
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("connected slack as ops@acme (conn_")
    source = add_source(cli, provider)
    assert source["kind"] == "integration"
    create_agent(cli, "--script", POST_SCRIPT)

    catalog = cli("agent", "tools", "notifier", "--json")
    row = cli("agent", "test", "notifier", "--event-payload", '{"title": "deploy done"}', "--json")
    listed = cli("connection", "list", "--json")
    shown = cli("runs", "show", row.json()["run_id"], "--json")
    sources = cli("source", "list", "--json")

    names = [tool["name"] for tool in catalog.json()["tools"]]
    assert {"pd_slack_list_channels", "pd_slack_post_message"} <= set(names)
    run = row.json()
    assert (run["status"], run["outcome"]) == ("succeeded", "acted")
    assert run["tool_calls"][0]["name"] == "pd_slack_post_message"
    assert run["tool_calls"][0]["result"]["channel"] == "#ops"
    (connection,) = listed.json()
    assert connection["app_slug"] == "slack" and connection["status"] == "active"
    assert connection["account_label"] == "ops@acme" and connection["expired"] is False
    outputs = [added, catalog, row, listed, shown, sources]
    for output in outputs:
        assert token not in output.stdout + output.stderr
    if database_url.startswith("sqlite"):
        (raw,) = (
            sqlite3.connect(database_url.removeprefix("sqlite:///"))
            .execute("SELECT token_ciphertext FROM connections")
            .fetchone()
        )
        assert raw and token not in raw  # encrypted at rest


def test_an_app_without_a_connection_is_skipped_and_the_agent_still_runs(
    cli: Cli, provider: FakeProvider
) -> None:
    add_source(cli, provider)
    create_agent(cli, "--tool-allowlist", '["pd_slack_post_message", "clock_now"]')

    row = cli("agent", "test", "notifier", "--json")

    run = row.json()
    assert run["status"] == "succeeded"
    trace = run["tool_resolution_trace"]
    (skip,) = trace["sources_skipped"]
    assert (skip["kind"], skip["label"], skip["reason"]) == (
        "integration",
        "slack",
        "oauth_missing",
    )
    assert "slack: no OAuth connection" in skip["message"]
    assert trace["tool_names_advertised"] == ["clock_now"]
    (missing,) = trace["allowlist_missing_entries"]
    assert (missing["entry"], missing["possibly_from_skipped"]) == (
        "pd_slack_post_message",
        "slack",
    )


def test_revoke_by_app_slug_makes_runs_skip_the_app(cli: Cli, provider: FakeProvider) -> None:
    cli("connection", "add", "slack", "--token", provider.issue("slack"))
    add_source(cli, provider)
    create_agent(cli)

    revoked = cli("connection", "revoke", "slack", "--yes")
    listed = cli("connection", "list")
    catalog = cli("agent", "tools", "notifier", "--json").json()

    assert revoked.exit_code == 0, revoked.stderr
    assert revoked.stdout.startswith("revoked connection conn_") and "(slack)" in revoked.stdout
    assert "\tslack\trevoked\tno expiry" in listed.stdout
    (skip,) = catalog["trace"]["sources_skipped"]
    assert skip["reason"] == "oauth_missing" and "revoked" in skip["message"]


def test_revoke_asks_first_and_an_unknown_connection_is_one_line_error(cli: Cli) -> None:
    unknown = cli("connection", "revoke", "github", "--yes")

    assert unknown.exit_code != 0
    assert unknown.stderr.startswith("error: no active connection 'github'")
    assert "Traceback" not in unknown.stderr


def test_connection_add_needs_a_token(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_CONNECT_TOKEN", raising=False)

    result = cli("connection", "add", "slack")

    assert result.exit_code == 2
    assert "CAIRN_CONNECT_TOKEN" in result.stderr


def test_an_empty_connection_list_says_how_to_add_one(cli: Cli) -> None:
    listed = cli("connection", "list")

    assert listed.exit_code == 0
    assert "cairn connection add" in listed.stdout


def test_integration_add_takes_the_provider_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_CONNECT_URL", "http://127.0.0.1:8765/mcp")

    added = cli("source", "integration", "add", "linear", "--label", "tickets")
    shown = cli("source", "show", "tickets", "--json").json()

    assert added.exit_code == 0, added.stderr
    assert "pd_linear_<tool>" in added.stdout
    assert shown["config"]["provider_url"] == "http://127.0.0.1:8765/mcp"
    assert shown["config"]["namespace"] == "pd_linear"


def test_integration_add_without_a_provider_says_how_to_set_one(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAIRN_CONNECT_URL", raising=False)

    added = cli("source", "integration", "add", "slack")

    assert added.exit_code == 2
    assert "--provider-url" in added.stderr and "CAIRN_CONNECT_URL" in added.stderr


def test_source_test_checks_an_integration_as_a_run_would_build_it(
    cli: Cli, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_source(cli, provider)
    unconnected = cli("source", "test", "slack")
    assert unconnected.exit_code == 1
    assert "oauth_missing" in unconnected.stderr and "no OAuth connection" in unconnected.stderr
    monkeypatch.setenv("CAIRN_CONNECT_TOKEN", provider.issue("slack"))
    assert cli("connection", "add", "slack").exit_code == 0
    healthy = cli("source", "test", "slack", "--json")
    assert healthy.exit_code == 0
    assert "pd_slack_post_message" in healthy.json()["tool_names"]
    assert cli("source", "show", "slack", "--json").json()["status"] == "active"


def test_the_plural_integrations_names_the_integration_kind(
    cli: Cli, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_CONNECT_TOKEN", provider.issue("slack"))
    cli("connection", "add", "slack")
    add_source(cli, provider)
    create_agent(cli, "--tool-sources", '["builtin", "integrations"]')
    trace = cli("agent", "tools", "notifier", "--json").json()["trace"]
    assert [s["label"] for s in trace["sources_resolved"]] == ["builtin", "slack"]
