"""The MCP server: tools, run resources and the "debug this agent" prompt, over a backend.

``build_server(backend_of)`` is the SDK's low-level ``Server`` with its handlers; each
request asks ``backend_of(ctx)`` who calls (stdio: the one backend of the process; HTTP:
the request's key, see ``cairn.mcpserver.http``). Every ``cairn.errors`` error becomes an
MCP error here and only here: a tool answers ``isError`` with one line (``forbidden: a
viewer key cannot test-fire agents; it needs the editor role``), a resource or prompt a
JSON-RPC error with that line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp import MCPError
from mcp.server import Server, ServerRequestContext

from cairn import __version__
from cairn.errors import CairnError, NotFound, UsageError
from cairn.mcpserver.backend import Backend
from cairn.mcpserver.tools import TOOLS, tool

logger = logging.getLogger(__name__)

Context = ServerRequestContext[Any, Any]
BackendOf = Callable[[Context], Backend]

RUN_PREFIX = "cairn://runs/"
RUN_TEMPLATE = RUN_PREFIX + "{run_id}"
RECENT_RUNS = 20
"""How many of the newest runs ``resources/list`` names (the template reaches any run)."""
RESOURCE_NOT_FOUND = -32002
"""The MCP specification's code for an unknown resource."""

INSTRUCTIONS = (
    "Cairn runs event-driven AI agents and records every run in a ledger. Use these tools "
    "to find out what an agent did and why: list_runs and show_run for what happened, "
    "explain_run and why_not_fired for why, doctor for what needs fixing, usage for cost. "
    "Runs are also resources at cairn://runs/{run_id}. Changing tools (test_fire, "
    "replay_run, pause_trigger, resume_trigger) need an editor key."
)

_KINDS: dict[int, str] = {
    400: "bad input",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    409: "conflict",
    413: "too large",
    429: "busy",
    503: "unavailable",
}


def reason(error: CairnError) -> str:
    """One line for a refused call: its kind, then what the error says."""
    kind = _KINDS.get(error.http_status, "error")
    text = " ".join(str(error).split())
    return f"{kind}: {text}"


def tool_error(text: str) -> types.CallToolResult:
    """A tool's refusal or failure, as the client's model should see it."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def protocol_error(error: CairnError) -> MCPError:
    """A resource's or a prompt's refusal, as a JSON-RPC error."""
    code = RESOURCE_NOT_FOUND if isinstance(error, NotFound) else types.INVALID_PARAMS
    return MCPError(code=code, message=reason(error))


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def build_server(backend_of: BackendOf) -> Server[Any]:
    """The server; ``backend_of`` gives each request's backend (who calls, and how)."""

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_describe(each) for each in TOOLS])

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            result = await tool(params.name).run(backend_of(ctx), params.arguments)
        except CairnError as error:
            return tool_error(reason(error))
        except Exception:
            logger.exception("MCP tool %s failed", params.name)
            return tool_error("internal error: see the Cairn server's log")
        return types.CallToolResult(content=[types.TextContent(text=_json(result))])

    async def list_resources(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        try:
            page = await backend_of(ctx).call("list_runs", {"limit": RECENT_RUNS})
        except CairnError as error:
            raise protocol_error(error) from None
        return types.ListResourcesResult(resources=[_run_resource(run) for run in page["runs"]])

    async def list_templates(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            uri_template=RUN_TEMPLATE,
            name="run",
            title="A run of the ledger",
            description="One run as JSON: status, output, tool calls and its trace.",
            mime_type="application/json",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(
        ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            run_id = uri.removeprefix(RUN_PREFIX) if uri.startswith(RUN_PREFIX) else ""
            if not run_id or "/" in run_id:
                raise UsageError(f"no resource {uri!r}: runs are {RUN_TEMPLATE}")
            run = await backend_of(ctx).call("get_run", {"run_id": run_id})
        except CairnError as error:
            raise protocol_error(error) from None
        contents = types.TextResourceContents(
            uri=uri, mime_type="application/json", text=_json(run)
        )
        return types.ReadResourceResult(contents=[contents])

    async def list_prompts(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[DEBUG_PROMPT])

    async def get_prompt(
        ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        try:
            if params.name != DEBUG_PROMPT.name:
                raise NotFound(f"no prompt {params.name!r}: the prompt is {DEBUG_PROMPT.name}")
            slug = (params.arguments or {}).get("agent", "").strip()
            if not slug:
                raise UsageError(f"{DEBUG_PROMPT.name} needs the argument agent (a slug)")
            agent = await backend_of(ctx).call("get_agent", {"slug": slug})
        except CairnError as error:
            raise protocol_error(error) from None
        text = debug_text(agent)
        message = types.PromptMessage(role="user", content=types.TextContent(text=text))
        return types.GetPromptResult(description=f"Debug the agent {slug}", messages=[message])

    return Server(
        "cairn",
        version=__version__,
        title="Cairn",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


def _describe(each: Any) -> types.Tool:
    hints = types.ToolAnnotations(
        title=each.title,
        read_only_hint=each.read_only,
        destructive_hint=False,
        idempotent_hint=each.read_only or each.body is not None,
        open_world_hint=False,
    )
    return types.Tool(
        name=each.name,
        title=each.title,
        description=each.doc,
        input_schema=each.input_schema(),
        annotations=hints,
    )


def _run_resource(run: dict[str, Any]) -> types.Resource:
    return types.Resource(
        uri=RUN_PREFIX + run["run_id"],
        name=run["run_id"],
        title=f"{run['agent_slug']}: {run['status']} ({run['kind']})",
        description=f"Created {run['created_at']}; outcome {run['outcome'] or '-'}.",
        mime_type="application/json",
    )


DEBUG_PROMPT = types.Prompt(
    name="debug_agent",
    title="Debug this agent",
    description="Find out why an agent misbehaves (did not fire, failed, used no tools) and "
    "what to change, from its runs, triggers and tools.",
    arguments=[types.PromptArgument(name="agent", description="The agent's slug.", required=True)],
)


def debug_text(agent: dict[str, Any]) -> str:
    """The prompt's message: how to investigate ``agent`` with this server's tools."""
    slug = agent["slug"]
    state = " It is archived, so no trigger fires it." if agent["status"] == "archived" else ""
    about = f" ({agent['description']})" if agent.get("description") else ""
    return (
        f"Debug the Cairn agent `{slug}`{about}, version {agent['version']}.{state}\n\n"
        "Use the Cairn tools, in this order, and stop when the cause is clear:\n"
        f"1. why_not_fired with slug={slug}: did its last event fire it, and if not, why.\n"
        f"2. list_runs with agent={slug} (then status=failed): its recent runs.\n"
        "3. explain_run on the newest failed or surprising run: the cause and the fix, "
        "citing the run's fields; show_run for its output and tool calls.\n"
        f"4. agent_tools with slug={slug}: the tools it would see now, and any source "
        "skipped with its reason.\n"
        f"5. doctor with agent={slug}: stale allowlists, paused or quiet triggers, runaway "
        "usage.\n\n"
        "Then answer in a few lines: what went wrong, the evidence (run, event or trigger "
        "ids), and the change that fixes it. Do not test-fire, replay or pause anything "
        "unless the user asks."
    )


async def serve_stdio(backend: Backend) -> None:
    """Serve one client on this process's stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    server = build_server(lambda ctx: backend)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
