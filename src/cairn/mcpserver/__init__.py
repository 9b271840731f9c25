"""Cairn as an MCP server: the fourth transport over the operation table.

Any MCP client (Claude Desktop, Cursor, VS Code, an agent) can ask Cairn about its agents
and runs. Each tool runs one operation of ``cairn.api.table`` (two for ``show_run``), so
nothing here repeats what an operation does: ``tools`` says which operations are offered,
with what input schema and which role; ``server`` answers the protocol (tools, the
``cairn://runs/{run_id}`` resources, the "debug this agent" prompt) and turns
``cairn.errors`` into MCP tool errors in one place; ``backend`` runs operations as a
caller; ``http`` serves it as streamable HTTP at ``/mcp`` on ``cairn serve``, behind the
API's bearer keys. ``cairn mcp`` (``cairn.cli.mcp_server``) serves it on stdio.

Only the CLI and the serve wiring import this package; it imports the table and services.
"""
