"""``cairn mcp``: the MCP server on stdio, started as a subprocess by the official ``mcp``
client, in-process on the ledger (as its operator) or bridging to a server with a key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import MCPError

from cairn.mcpserver.tools import TOOLS
from tests.mcp_server.calls import CALLS
from tests.mcp_server.conftest import (
    Scene,
    cairn_command,
    cli_env,
    json_of,
    over_stdio,
    refusal_of,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bridged", [False, True], ids=["in-process", "bridged"])
async def test_every_tool_over_stdio(scene: Scene, bridged: bool) -> None:
    """In-process on the ledger as its operator, or bridged to the server with an editor
    key: each tool answers as its operation does."""
    deployment = scene.deployment
    if bridged:
        args, env = ("--url", deployment.url, "mcp"), {"CAIRN_API_KEY": deployment.keys.editor}
    else:
        args, env = ("--db", deployment.database_url, "mcp"), {}
    async with over_stdio(deployment.home, *args, **env) as client:
        for name, (arguments, check) in CALLS.items():
            check(scene, json_of(await client.call_tool(name, arguments(scene))))


async def test_on_the_local_ledger_as_its_operator(scene: Scene) -> None:
    ledger, home = scene.deployment.database_url, scene.deployment.home  # its secret key
    async with over_stdio(home, "--db", ledger, "mcp") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        runs = json_of(await client.call_tool("list_runs", {"agent": scene.slug, "limit": 50}))
        shown = json_of(await client.call_tool("show_run", {"run_id": scene.run_id}))
        fired = json_of(
            await client.call_tool(
                "test_fire", {"slug": scene.slug, "event_payload": {"title": "stdio"}}
            )
        )
        read = await client.read_resource(f"cairn://runs/{scene.run_id}")
        prompt = await client.get_prompt("debug_agent", {"agent": scene.slug})
        unknown = await client.call_tool("show_run", {"run_id": "run_nosuchrun"})
    assert names == [tool.name for tool in TOOLS]
    assert scene.run_id in [run["run_id"] for run in runs["runs"]]
    assert shown["agent_slug"] == scene.slug
    assert (fired["kind"], fired["status"], fired["output_text"]) == (
        "test",
        "succeeded",
        "Seen stdio",
    )
    assert json.loads(getattr(read.contents[0], "text", ""))["run_id"] == scene.run_id
    assert scene.slug in getattr(prompt.messages[0].content, "text", "")
    assert refusal_of(unknown) == "not found: no run 'run_nosuchrun' in sandbox 'default'"


async def test_read_only_refuses_the_changing_tools(scene: Scene, tmp_path: Path) -> None:
    ledger = scene.deployment.database_url
    async with over_stdio(tmp_path, "--db", ledger, "mcp", "--read-only") as client:
        assert json_of(await client.call_tool("list_agents", {}))
        refused = await client.call_tool("replay_run", {"run_id": scene.run_id})
    assert (
        refusal_of(refused)
        == "forbidden: a viewer key cannot replay runs; it needs the editor role"
    )


async def test_bridging_to_a_server_a_viewer_key_reads_and_is_refused_a_test_fire(
    scene: Scene, tmp_path: Path
) -> None:
    url, viewer = scene.deployment.url, scene.deployment.keys.viewer
    async with over_stdio(tmp_path, "--url", url, "mcp", CAIRN_API_KEY=viewer) as client:
        shown = json_of(await client.call_tool("show_run", {"run_id": scene.run_id}))
        refused = await client.call_tool("test_fire", {"slug": scene.slug})
    assert shown["run_id"] == scene.run_id
    assert refusal_of(refused) == (
        "forbidden: a viewer key cannot test-fire agents; it needs the editor role"
    )


async def test_bridging_with_a_key_of_another_sandbox_sees_nothing(
    scene: Scene, tmp_path: Path
) -> None:
    url, other = scene.deployment.url, scene.deployment.keys.other_viewer
    async with over_stdio(tmp_path, "--url", url, "mcp", "--api-key", other) as client:
        agents = json_of(await client.call_tool("list_agents", {}))
        shown = await client.call_tool("show_run", {"run_id": scene.run_id})
        with pytest.raises(MCPError):
            await client.get_prompt("debug_agent", {"agent": scene.slug})
    assert agents == []
    assert refusal_of(shown) == f"not found: no run {scene.run_id!r} in sandbox 'other'"


def test_bridging_with_a_bad_key_fails_before_serving(scene: Scene, tmp_path: Path) -> None:
    done = subprocess.run(
        cairn_command("--url", scene.deployment.url, "mcp"),
        env=cli_env(tmp_path, CAIRN_API_KEY="key_0000000000.wrong"),
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == "error: unknown or revoked API key\n"
    assert done.stdout == ""


PROBE = """
import sys
from cairn.cli.main import main
try:
    main(["mcp", "--help"])
except SystemExit as done:
    assert not done.code, done.code
heavy = [m for m in ("mcp", "mcp_types", "pydantic", "sqlalchemy", "httpx", "anyio")
         if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def test_help_loads_no_mcp_sdk(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=cli_env(tmp_path),
        timeout=120,
    )
    assert "Serve Cairn to an MCP client on stdin/stdout" in done.stdout
    assert "HEAVY=\n" in done.stderr, done.stderr
