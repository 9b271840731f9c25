"""A small stdio MCP server for the warm-session tests: it says which process it is, counts
calls in flight, grows a tool at run time (announcing ``tools/list_changed``) and can freeze.

Run by file path in a fresh interpreter: ``python tests/mcp_servers/warm.py``.
"""

from __future__ import annotations

import os
import time

import anyio
from mcp.server.mcpserver import Context, MCPServer

_inflight = 0
_peak = 0


def build_server() -> MCPServer:
    """The server with its tools registered."""
    server: MCPServer = MCPServer("cairn-test-warm", version="1.0", log_level="WARNING")

    @server.tool()
    def pid() -> int:
        """The server's process id (a restarted server has a new one)."""
        return os.getpid()

    @server.tool()
    async def busy(seconds: float) -> int:
        """Stay busy for ``seconds``; return the most calls ever in flight at once."""
        global _inflight, _peak
        _inflight += 1
        _peak = max(_peak, _inflight)
        try:
            await anyio.sleep(seconds)
        finally:
            _inflight -= 1
        return _peak

    @server.tool()
    async def grow(name: str, ctx: Context) -> str:
        """Register a new tool ``name`` and tell listening clients the list changed."""

        def grown() -> str:
            return f"{name} says hi"

        server.add_tool(grown, name=name, description=f"grown at run time as {name}")
        await ctx.notify_tools_changed()
        return f"grew {name}"

    @server.tool()
    async def freeze(seconds: float, marker: str) -> str:
        """Block the whole server (it answers nothing) for ``seconds``, having first created
        the file ``marker`` so a test knows the freeze has begun."""
        with open(marker, "w") as flag:  # noqa: ASYNC230 - before the freeze, on purpose
            flag.write("frozen")
        time.sleep(seconds)  # noqa: ASYNC251 - blocks the event loop: nothing is answered
        return "thawed"

    return server


if __name__ == "__main__":
    build_server().run("stdio")
