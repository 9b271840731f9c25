"""The MCP server at ``/mcp`` on ``cairn serve``, driven by the official ``mcp`` client over
streamable HTTP: the same API keys and roles as the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
from mcp import MCPError

from cairn.mcpserver.tools import TOOLS
from tests.mcp_server.calls import CALLS
from tests.mcp_server.conftest import Scene, json_of, over_http, refusal_of

pytestmark = pytest.mark.anyio


async def test_tools_are_listed_with_schemas_and_roles(scene: Scene) -> None:
    async with over_http(scene.url, scene.deployment.keys.viewer) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == {tool.name for tool in TOOLS} == set(CALLS)
    runs = listed["list_runs"].input_schema
    assert runs["properties"]["status"]["enum"][:2] == ["queued", "running"]
    assert runs["properties"]["limit"] == {
        "type": "integer",
        "default": 20,
        "minimum": 1,
        "maximum": 1000,
    }
    assert listed["show_run"].input_schema["required"] == ["run_id"]
    assert "editor role" in (listed["test_fire"].description or "")
    assert listed["list_runs"].annotations and listed["list_runs"].annotations.read_only_hint
    pause = listed["pause_trigger"].annotations
    assert pause and not pause.read_only_hint and pause.destructive_hint is False


@pytest.mark.parametrize("name", list(CALLS))
async def test_each_tool_answers_through_its_operation(scene: Scene, name: str) -> None:
    arguments, check = CALLS[name]
    async with over_http(scene.url, scene.deployment.keys.editor) as client:
        result = await client.call_tool(name, arguments(scene))
    check(scene, json_of(result))


async def test_a_viewer_reads_but_is_refused_a_test_fire_and_a_pause(scene: Scene) -> None:
    owner = scene.deployment.client()
    before = owner.runs.list(agent=scene.slug, limit=100).runs
    async with over_http(scene.url, scene.deployment.keys.viewer) as client:
        assert json_of(await client.call_tool("show_run", {"run_id": scene.run_id}))
        refused = await client.call_tool("test_fire", {"slug": scene.slug})
        paused = await client.call_tool("pause_trigger", {"trigger_id": scene.trigger_id})
    assert refusal_of(refused) == (
        "forbidden: a viewer key cannot test-fire agents; it needs the editor role"
    )
    assert refusal_of(paused).startswith("forbidden: a viewer key cannot pause triggers")
    assert owner.runs.list(agent=scene.slug, limit=100).runs == before
    assert owner.agents.get(scene.slug).status == "active"


async def test_a_key_of_another_sandbox_sees_nothing_of_this_one(scene: Scene) -> None:
    async with over_http(scene.url, scene.deployment.keys.other_owner) as client:
        agents = json_of(await client.call_tool("list_agents", {}))
        runs = json_of(await client.call_tool("list_runs", {}))
        shown = await client.call_tool("show_run", {"run_id": scene.run_id})
        why = await client.call_tool("why_not_fired", {"slug": scene.slug})
        paused = await client.call_tool("pause_trigger", {"trigger_id": scene.trigger_id})
        resources = (await client.list_resources()).resources
        with pytest.raises(MCPError) as unread:
            await client.read_resource(f"cairn://runs/{scene.run_id}")
    assert agents == [] and runs["runs"] == [] and resources == []
    assert refusal_of(shown) == f"not found: no run {scene.run_id!r} in sandbox 'other'"
    assert refusal_of(why).startswith("not found:")
    assert refusal_of(paused).startswith("not found:")
    assert unread.value.code == -32002 and scene.run_id in unread.value.message


async def test_bad_input_is_a_clear_tool_error(scene: Scene) -> None:
    async with over_http(scene.url, scene.deployment.keys.editor) as client:
        unknown_run = await client.call_tool("explain_run", {"run_id": "run_nosuchrun"})
        unknown_arg = await client.call_tool("list_runs", {"colour": "red"})
        bad_value = await client.call_tool("list_runs", {"status": "exploded"})
        missing = await client.call_tool("show_run", {})
        flag = await client.call_tool("show_run", {"run_id": scene.run_id, "with_events": "no"})
        not_here = await client.call_tool("list_runs", {"with_events": True})
        unknown_tool = await client.call_tool("delete_everything", {})
    assert refusal_of(unknown_run) == "not found: no run 'run_nosuchrun' in sandbox 'default'"
    assert refusal_of(unknown_arg).startswith("bad input: list_runs takes no argument 'colour'")
    assert refusal_of(bad_value).startswith("bad input: list_runs: status: Input should be")
    assert refusal_of(missing) == (
        "bad input: show_run needs run_id: A run id, run_… (list_runs names them)."
    )
    assert refusal_of(flag).startswith("bad input: show_run: with_events must be true or false")
    assert refusal_of(not_here).startswith("bad input: list_runs takes no argument 'with_events'")
    assert refusal_of(unknown_tool).startswith("bad input: no tool 'delete_everything'")


async def test_a_run_is_a_resource(scene: Scene) -> None:
    uri = f"cairn://runs/{scene.run_id}"
    async with over_http(scene.url, scene.deployment.keys.viewer) as client:
        templates = (await client.list_resource_templates()).resource_templates
        listed = (await client.list_resources()).resources
        read = await client.read_resource(uri)
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("cairn://agents/x")
    assert [t.uri_template for t in templates] == ["cairn://runs/{run_id}"]
    assert uri in [str(resource.uri) for resource in listed]
    (contents,) = read.contents
    assert contents.mime_type == "application/json"
    run = json.loads(getattr(contents, "text", ""))
    assert (run["run_id"], run["agent_slug"]) == (scene.run_id, scene.slug)
    assert "runs are cairn://runs/{run_id}" in unknown.value.message


async def test_the_debug_prompt_names_the_agent_and_the_tools(scene: Scene) -> None:
    async with over_http(scene.url, scene.deployment.keys.viewer) as client:
        prompts = (await client.list_prompts()).prompts
        prompt = await client.get_prompt("debug_agent", {"agent": scene.slug})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("debug_agent", {"agent": "no-such-agent"})
    assert [p.name for p in prompts] == ["debug_agent"]
    (message,) = prompt.messages
    text = getattr(message.content, "text", "")
    assert f"`{scene.slug}` (Answers bug reports.)" in text
    for name in ("why_not_fired", "list_runs", "explain_run", "agent_tools", "doctor"):
        assert name in text
    assert unknown.value.message.startswith("not found: ")


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "missing API key"),
        ("Bearer not-a-key", "malformed API key"),
        ("Bearer key_0000000000.secret", "unknown or revoked API key"),
        ("Basic dXNlcjpwYXNz", "missing API key"),
    ],
)
def test_no_key_or_a_bad_key_gets_401(scene: Scene, authorization: str | None, detail: str) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(scene.url, json=ping, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"].startswith(detail)


async def test_a_revoked_key_stops_working_at_once(scene: Scene) -> None:
    owner = scene.deployment.client()
    made = owner.keys.create("mcp-short-lived", role="viewer")
    async with over_http(scene.url, made.token) as client:
        assert json_of(await client.call_tool("list_agents", {}))
        owner.keys.revoke(made.key.key_id)
        with pytest.raises(MCPError):  # the SDK reports the 401 as an error response
            await client.call_tool("list_agents", {})
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Authorization": f"Bearer {made.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(scene.url, json=ping, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked API key"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"p": "'
         + b"a" * (1 << 21) + b'"}}', 413, "byte limit"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": ' + b"[" * 64 + b"]" * 64 + b"}",
         400, "deep"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"n": NaN}}', 400, "NaN"),
    ],
    ids=["oversized", "too-deep", "nan"],
)  # fmt: skip
def test_mcp_bodies_are_held_to_the_api_intake_limits(
    scene: Scene, body: bytes, status: int, detail: str
) -> None:
    """The same size, depth and NaN limits as ``/api/`` (a test-fire may carry what the API
    takes: up to 1 MiB, not the dashboard forms' 64 KiB)."""
    headers = {
        "Authorization": f"Bearer {scene.deployment.keys.owner}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    response = httpx.post(scene.url, content=body, headers=headers, timeout=10)
    assert response.status_code == status
    assert detail.lower() in response.json()["detail"].lower()


def test_an_mcp_body_larger_than_a_form_but_within_the_api_limit_is_served(scene: Scene) -> None:
    headers = {
        "Authorization": f"Bearer {scene.deployment.keys.owner}",
        "Accept": "application/json, text/event-stream",
    }
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_": "a" * 200_000}}
    response = httpx.post(scene.url, json=call, headers=headers, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["result"]["tools"]
