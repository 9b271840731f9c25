"""Cairn's MCP server at ``/mcp`` beside the HTTP API it shares its operations with.

A scratch SQLite ledger of ``--runs`` runs (``bench._ledger``) and an owner key are built,
then ``cairn serve`` (the console script, its own process) serves it. This process calls
the same listing three ways, in alternating rounds: ``GET …/agents/support/runs?limit=20``
with httpx (the API), ``tools/call list_runs {agent: support, limit: 20}`` with the
official ``mcp`` client over streamable HTTP (one session; stateless, JSON answers), and
``tools/list``. Every answer is checked (20 runs of ``support``, newest first). Then the
server's CPU per call, each case alone. What MCP adds over the API is JSON-RPC framing,
authentication before the SDK, the SDK's dispatch and the JSON text of the result. No
target: figures only.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench._common import BenchError, Verdict, header, note, scratch_app, scratch_dir
from bench._ledger import SANDBOX, create_agents, populate
from bench.server import LIMIT, LISTED, PREFIX, Server, _cpu_s, _served, _spread
from cairn.services.access import create_key

NAME = "mcp"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the ledger (10000)")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per case (200)")
    parser.add_argument("--cpu-calls", type=int, default=200, help="calls per CPU block (200)")


def _build(home: Path, runs: int) -> str:
    with scratch_app(home) as app:
        agents = anyio.run(create_agents, app, None)
        summary = populate(app, agents, runs)
        _key, token = create_key(app, SANDBOX, "bench", "owner")
    note(f"ledger: {summary.runs:,} runs ({LISTED}: {summary.per_agent[LISTED]:,}); an owner key")
    return token


def _check(page: Any) -> None:
    runs = page["runs"]
    ids = [run["run_id"] for run in runs]
    if len(runs) != LIMIT or any(run["agent_slug"] != LISTED for run in runs):
        raise BenchError(f"expected {LIMIT} runs of {LISTED!r}, got {len(runs)}")
    if ids != sorted(ids, reverse=True):
        raise BenchError("the runs are not newest first")


def _tool_page(result: mcp_types.CallToolResult) -> Any:
    block = result.content[0]
    if result.is_error or not isinstance(block, mcp_types.TextContent):
        raise BenchError(f"list_runs over MCP failed: {result.content}")
    return json.loads(block.text)


async def _measure(server: Server, token: str, repeat: int, cpu_calls: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    listing = f"{PREFIX}/agents/{LISTED}/runs"
    arguments = {"agent": LISTED, "limit": LIMIT}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as api,
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
        Client(streamable_http_client(server.url + "/mcp", http_client=http)) as mcp,
    ):

        async def rest() -> None:
            response = await api.get(listing, params={"limit": LIMIT})
            if response.status_code != 200:
                raise BenchError(f"the API answered {response.status_code}")
            _check(response.json())

        async def tool() -> None:
            _check(_tool_page(await mcp.call_tool("list_runs", arguments)))

        async def tools() -> None:
            if len((await mcp.list_tools()).tools) < 10:
                raise BenchError("tools/list answered too few tools")

        cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (f"API  GET agents/{LISTED}/runs?limit=20", rest),
            ("MCP  tools/call list_runs (agent, limit=20)", tool),
            ("MCP  tools/list", tools),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _ in cases}
        for round_ in range(repeat + 10):
            for name, call in cases:
                started = time.perf_counter()
                await call()
                if round_ >= 10:
                    samples[name].append((time.perf_counter() - started) * 1000)
        cpu: dict[str, str] = {}
        for name, call in cases:
            before = _cpu_s(server.process.pid)
            for _ in range(cpu_calls):
                await call()
            after = _cpu_s(server.process.pid)
            used = None if before is None or after is None else (after - before) / cpu_calls
            cpu[name] = "n/a" if used is None else f"{used * 1000:.2f} ms"
    note("latency seen by this client, then the server's CPU per call (a block of calls alone):")
    for name, _ in cases:
        note(f"{name:<44} {_spread(samples[name])}  server CPU {cpu[name]}")


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger, serve it, measure, stop the server."""
    header(f"mcp: list runs over /mcp and over the API, a {options.runs:,}-run SQLite ledger")
    with scratch_dir("mcp") as home:
        token = _build(home, options.runs)
        with _served(home, workers=1) as server:
            anyio.run(_measure, server, token, options.repeat, options.cpu_calls)
            if server.process.poll() is not None:
                raise BenchError(f"cairn serve died during the benchmark:\n{server.log_tail()}")
    return []
