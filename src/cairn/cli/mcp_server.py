"""``cairn mcp``: Cairn as an MCP server on stdio, for MCP clients that start a command.

Like every command, it works in-process on the local ledger by default (as the local
operator, owner of ``--sandbox``), or with ``--url``/``CAIRN_URL`` talks to a Cairn
server with ``--api-key``/``CAIRN_API_KEY`` (then the key's sandbox and role apply).
``--read-only`` offers the changing tools to no one. The MCP SDK is imported when the
command runs, never by ``cairn mcp --help``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from cairn.cli.context import CliContext, pass_cli, run_async

if TYPE_CHECKING:
    from cairn.client.http import AsyncHttpTransport
    from cairn.domain.keys import Principal

CALL_TIMEOUT_S = 600.0
"""A test-fire answers when its run ends, which may take minutes."""


@click.command("mcp")
@click.option(
    "--api-key",
    envvar="CAIRN_API_KEY",
    help="With --url: the key to call the server with [default: CAIRN_API_KEY].",
)
@click.option(
    "--read-only",
    is_flag=True,
    help="Refuse test-fire, replay and pause/resume whatever the role.",
)
@pass_cli
def mcp(cli: CliContext, api_key: str | None, read_only: bool) -> None:
    """Serve Cairn to an MCP client on stdin/stdout: tools to list and explain runs, run
    doctor and usage, test-fire and replay (editor), pause and resume triggers (editor);
    runs as resources cairn://runs/{run_id}; a prompt to debug an agent.

    Without --url it serves the local ledger as its operator; with --url (or CAIRN_URL)
    it calls that server with --api-key (or CAIRN_API_KEY). `cairn serve` serves the same
    over HTTP at /mcp.

    \b
    Examples (the command an MCP client's config starts):
      cairn mcp
      cairn --sandbox demo mcp --read-only
      CAIRN_URL=http://cairn.internal:8765 CAIRN_API_KEY=key_... cairn mcp
    """
    if cli.url:
        from cairn.client.http import AsyncHttpTransport

        key = api_key or cli._api_key()
        transport = AsyncHttpTransport(cli.url, key, cli.sandbox, timeout=CALL_TIMEOUT_S)
        run_async(_serve_remote, transport, read_only)
        return
    from cairn.domain.keys import Principal
    from cairn.mcpserver.backend import TableBackend
    from cairn.mcpserver.server import serve_stdio

    principal = Principal(cli.sandbox, "viewer" if read_only else "owner")
    run_async(serve_stdio, TableBackend(cli.app, principal))


async def _serve_remote(transport: AsyncHttpTransport, read_only: bool) -> None:
    """Ask the server who the key is (a bad key fails here, before serving), then serve."""
    from cairn.domain.keys import Principal, Role
    from cairn.mcpserver.server import serve_stdio

    try:
        who = await transport.call("whoami")
        transport.sandbox = who["sandbox_id"]  # the key's sandbox, whatever --sandbox says
        role: Role = "viewer" if read_only else who["role"]
        principal = Principal(who["sandbox_id"], role, who["key_id"])
        await serve_stdio(RemoteBackend(transport, principal))
    finally:
        await transport.aclose()


@dataclass(frozen=True, slots=True)
class RemoteBackend:
    """The MCP server's backend over the SDK's HTTP transport: each operation of the table
    is sent to the server, which checks the key again. ``principal`` is the key's sandbox
    and role (capped by ``--read-only``)."""

    transport: AsyncHttpTransport
    principal: Principal

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The operation, over HTTP."""
        return await self.transport.call(operation, params, body)
