"""``cairn source …`` with real MCP servers, and agents that call their tools."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.mcp_servers import ORDERS_SERVER, HttpServer, serve_http

TOKEN = "s3cret-bearer-token-do-not-print"
LOOKUP_SCRIPT = json.dumps(
    {
        "turns": [
            {
                "text": "Looking it up. ",
                "tool_calls": [
                    {"name": "{ns}_lookup_order", "arguments": {"order_id": "{{event.id}}"}}
                ],
            },
            {"text": "Result: {{results.0}}"},
        ]
    }
)


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    with serve_http(TOKEN) as server:
        yield server


def add_stdio(cli: Cli, label: str = "orders") -> dict[str, object]:
    result = cli(
        "source",
        "add",
        label,
        "--command",
        sys.executable,
        "--arg",
        str(ORDERS_SERVER),
        "--namespace",
        label,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    report: dict[str, object] = result.json()
    return report


def agent_calling(cli: Cli, namespace: str, source: str) -> None:
    result = cli(
        "agent",
        "create",
        "support",
        "--prompt",
        "Look orders up.",
        "--tool-sources",
        json.dumps([source]),
        "--script",
        LOOKUP_SCRIPT.replace("{ns}", namespace),
    )
    assert result.exit_code == 0, result.stderr


def test_a_stdio_server_is_added_healthy_and_its_tool_is_called_by_an_agent(cli: Cli) -> None:
    report = add_stdio(cli)
    assert report["ok"] is True
    assert "lookup_order" in report["tool_names"]  # type: ignore[operator]
    agent_calling(cli, "orders", "orders")
    catalog = cli("agent", "tools", "support", "--json").json()
    assert "orders_lookup_order" in [t["name"] for t in catalog["tools"]]

    row = cli("agent", "test", "support", "--event-payload", '{"id": "A-7"}', "--json").json()
    assert row["status"] == "succeeded" and row["outcome"] == "acted"
    (call,) = row["tool_calls"]
    assert call["name"] == "orders_lookup_order"
    assert call["arguments"] == {"order_id": "A-7"}
    assert call["result"] == "order A-7: shipped"
    assert call["error"] is None and call["duration_ms"] > 0
    assert row["tokens_in"] > 0 and row["tokens_out"] > 0 and row["duration_ms"] > 0
    assert row["output_text"] == "Result: order A-7: shipped"


def test_an_http_server_with_a_bearer_token_works_and_the_token_never_shows(
    cli: Cli, http_server: HttpServer, database_url: str, cairn_home: Path
) -> None:
    added = cli(
        "source",
        "add",
        "crm",
        "--url",
        http_server.url,
        "--auth",
        "bearer",
        "--token",
        TOKEN,
        "--namespace",
        "crm",
        "--json",
    )
    assert added.exit_code == 0, added.stderr
    assert added.json()["ok"] is True
    agent_calling(cli, "crm", "crm")
    row = cli("agent", "test", "support", "--event-payload", '{"id": "B-2"}', "--json")
    assert row.json()["tool_calls"][0]["result"] == "order B-2: shipped"

    shown = cli("source", "show", "crm", "--json")
    listed = cli("source", "list", "--json")
    run_json = cli("runs", "show", row.json()["run_id"], "--json")
    for output in (added.stdout, shown.stdout, listed.stdout, run_json.stdout, row.stdout):
        assert TOKEN not in output
    assert shown.json()["config"]["secret_fields"] == ["token"]
    if database_url.startswith("sqlite"):
        raw = (
            sqlite3.connect(database_url.removeprefix("sqlite:///"))
            .execute("SELECT secret_ciphertext FROM sources WHERE label = 'crm'")
            .fetchone()[0]
        )
        assert raw and TOKEN not in raw  # encrypted at rest


def test_a_server_refusing_the_token_is_saved_with_status_error_and_the_reason(
    cli: Cli, http_server: HttpServer
) -> None:
    added = cli(
        "source",
        "add",
        "crm",
        "--url",
        http_server.url,
        "--auth",
        "bearer",
        "--token",
        "wrong-token",
        "--namespace",
        "crm",
    )
    assert added.exit_code == 0  # registered, but unhealthy
    assert "auth_refused" in added.stderr
    assert "wrong-token" not in added.stdout + added.stderr
    shown = cli("source", "show", "crm", "--json").json()
    assert shown["status"] == "error"
    assert "401" in shown["status_reason"]
    test = cli("source", "test", "crm")
    assert test.exit_code == 1


def test_a_dead_server_is_skipped_with_a_reason_and_the_run_still_completes(cli: Cli) -> None:
    added = cli("source", "add", "crm", "--url", "http://127.0.0.1:9/mcp", "--namespace", "crm")
    assert added.exit_code == 0
    cli(
        "agent",
        "create",
        "support",
        "--prompt",
        "x",
        "--tool-sources",
        '["builtin", "crm"]',
        "--tool-allowlist",
        '["crm_lookup_order", "clock_now"]',
    )
    row = cli("agent", "test", "support", "--json").json()
    assert row["status"] == "succeeded"
    trace = row["tool_resolution_trace"]
    (skip,) = trace["sources_skipped"]
    assert (skip["label"], skip["reason"]) == ("crm", "unreachable")
    assert trace["tool_names_advertised"] == ["clock_now"]
    (missing,) = trace["allowlist_missing_entries"]
    assert missing["entry"] == "crm_lookup_order"
    assert missing["possibly_from_skipped"] == "crm"


def test_revoke_forgets_the_secret_and_agents_naming_it_record_it_disabled(
    cli: Cli, http_server: HttpServer
) -> None:
    cli(
        "source",
        "add",
        "crm",
        "--url",
        http_server.url,
        "--auth",
        "bearer",
        "--token",
        TOKEN,
        "--namespace",
        "crm",
    )
    agent_calling(cli, "crm", "crm")
    revoked = cli("source", "revoke", "crm", "--yes")
    assert revoked.exit_code == 0
    shown = cli("source", "show", "crm", "--json").json()
    assert shown["status"] == "revoked"
    row = cli("agent", "test", "support", "--event-payload", '{"id": "1"}', "--json").json()
    (skip,) = row["tool_resolution_trace"]["sources_skipped"]
    assert skip["reason"] == "disabled"
    assert row["tool_calls"][0]["error"].startswith("tool 'crm_lookup_order' was not advertised")
    again = cli("source", "test", "crm")
    assert again.exit_code == 2 and "revoked" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["source", "add", "x"], "exactly one of --command"),
        (["source", "add", "x", "--url", "ftp://h/mcp"], "needs --url http(s)"),
        (["source", "add", "x", "--url", "http://h/mcp", "--auth", "bearer"], "needs --token"),
        (["source", "add", "x", "--command", "y", "--env", "NOEQUALS"], "--env takes NAME=VALUE"),
        (["source", "add", "x", "--command", "y", "--allowed-tools", "{"], "not valid JSON"),
        (["source", "show", "nope"], "no source 'nope'"),
        (["source", "test", "nope"], "no source 'nope'"),
    ],
)
def test_bad_source_input_gets_one_line_error(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_source_list_always_shows_builtin(cli: Cli) -> None:
    listed = cli("source", "list", "--json").json()
    assert [s["source_id"] for s in listed] == ["builtin"]
    assert "builtin" in cli("source", "list").stdout
