"""Tool resolution with warm MCP sessions vs connecting per run (the path without a pool).

The agent has three real MCP sources, servers this benchmark starts: the test orders
server twice over stdio (``orders1``, ``orders2``) and once over streamable HTTP with a
bearer token (``web``), registered through the source service on a scratch ledger.

1. Cold: the first resolution after a pool is made (each source spawns or connects), and
   the resolution without a pool (what every run and catalog view paid before): wall time
   of ``resolve_tools`` entered and left, ``--cold`` samples each.
2. Warm: ``--warm`` resolutions through one pool: p50/p99 of the same wall time, with the
   trace built. Target (issue #13): p50 under 5 ms. Also the same with the sandbox's
   sources read from the ledger first (``available_sources``), as a run does.
3. A scripted run with one MCP tool call (``orders1_lookup_order``), fired through the
   runner in process: its duration with the pool warm beside the same run without a pool,
   alternating, ``--runs`` each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import anyio

from bench._common import BenchError, Verdict, header, note, scratch_app, scratch_dir
from cairn.domain.agents import ModelSettings
from cairn.domain.sources import DataSource
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent
from cairn.services.sources import McpSourceSpec, add_mcp_source, available_sources
from cairn.tools.pool import SessionPool
from cairn.tools.resolution import resolve_tools

NAME = "resolution"
SANDBOX = "default"
TARGET_WARM_P50_MS = 5.0
TOKEN = "bench-resolution-token"
SCRIPT = {
    "turns": [
        {
            "text": "Looking. ",
            "tool_calls": [{"name": "orders1_lookup_order", "arguments": {"order_id": "A-1"}}],
        },
        {"text": "It is {{results.0}}"},
    ]
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--cold", type=int, default=3, help="cold resolutions of each kind (3)")
    parser.add_argument("--warm", type=int, default=300, help="warm resolutions (300)")
    parser.add_argument("--runs", type=int, default=10, help="scripted runs of each kind (10)")


def _pct(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(label: str, ms: list[float]) -> str:
    return (
        f"{label:<44} p50 {statistics.median(ms):9.3f} ms  p99 {_pct(ms, 0.99):9.3f} ms  "
        f"(n={len(ms)})"
    )


async def _setup(app: App, http_url: str) -> list[str]:
    from tests.mcp_servers import ORDERS_SERVER

    ids = []
    for label in ("orders1", "orders2"):
        spec = McpSourceSpec(
            label,
            "stdio",
            command=_python(),
            args=[str(ORDERS_SERVER)],
            namespace=label,
        )
        report = await add_mcp_source(app, SANDBOX, spec)
        ids.append(report.source.source_id)
    web = McpSourceSpec("web", "http", url=http_url, auth="bearer", token=TOKEN, namespace="web")
    report = await add_mcp_source(app, SANDBOX, web)
    ids.append(report.source.source_id)
    await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug="support",
            system_prompt="Look the order up.",
            tool_sources=ids,
            tool_allowlist=["orders1_*", "orders2_lookup_order", "web_add"],
            model_settings=ModelSettings(script=SCRIPT),
        ),
    )
    return ids


def _python() -> str:
    import sys

    return sys.executable


async def _resolve(
    app: App, ids: list[str], available: list[DataSource], pool: SessionPool | None
) -> tuple[float, Any]:
    started = time.perf_counter()
    async with resolve_tools(
        selection=ids,
        allowlist=["orders1_*", "orders2_lookup_order", "web_add"],
        available=available,
        context=app.tool_context,
        pool=pool,
    ) as tools:
        trace = tools.trace
    elapsed = (time.perf_counter() - started) * 1000
    if trace.sources_skipped or len(trace.sources_resolved) != 3:
        raise BenchError(f"resolution skipped sources: {trace.to_dict()['sources_skipped']}")
    return elapsed, trace


async def _measure(app: App, ids: list[str], options: argparse.Namespace) -> list[Verdict]:
    available = available_sources(app, SANDBOX)
    cold_pool: list[float] = []
    cold_starts: list[float] = []
    no_pool: list[float] = []
    for _ in range(options.cold):
        async with SessionPool(app.tool_context, app.pool_settings) as pool:
            ms, trace = await _resolve(app, ids, available, pool)
            cold_pool.append(ms)
            cold_starts.extend(s.cold_start_ms for s in trace.sources_resolved if s.cold_start_ms)
        ms, _ = await _resolve(app, ids, available, None)
        no_pool.append(ms)
    note(_line("cold: first resolution with a new pool", cold_pool))
    note(_line("cold: resolution without a pool (before)", no_pool))
    note(_line("  cold_start_ms of each source in the trace", cold_starts))

    async with SessionPool(app.tool_context, app.pool_settings) as pool:
        await _resolve(app, ids, available, pool)
        warm = [(await _resolve(app, ids, available, pool))[0] for _ in range(options.warm)]
        with_lookup: list[float] = []
        for _ in range(max(1, options.warm // 3)):
            started = time.perf_counter()
            await _resolve(app, ids, available_sources(app, SANDBOX), pool)
            with_lookup.append((time.perf_counter() - started) * 1000)
        note(_line("warm: resolution through the pool", warm))
        note(_line("warm: + the sandbox's sources from the ledger", with_lookup))
        _, trace = await _resolve(app, ids, available, pool)
        note(f"  warm trace cold_start_ms: {[s.cold_start_ms for s in trace.sources_resolved]}")
        runs_warm, runs_cold = await _runs(app, pool, options.runs)
    note(_line("scripted run, one MCP tool call, warm pool", runs_warm))
    note(_line("scripted run, one MCP tool call, no pool (before)", runs_cold))
    warm_p50 = statistics.median(warm)
    note(
        f"warm vs before: resolution {statistics.median(no_pool) / warm_p50:.0f}x faster; run "
        f"{statistics.median(runs_cold) / statistics.median(runs_warm):.1f}x faster"
    )
    return [
        Verdict(
            NAME,
            f"warm resolution p50 {warm_p50:.3f} ms (target < {TARGET_WARM_P50_MS:g} ms)",
            warm_p50 / TARGET_WARM_P50_MS,
            1.0,
        )
    ]


async def _runs(app: App, pool: SessionPool, count: int) -> tuple[list[float], list[float]]:
    warm: list[float] = []
    cold: list[float] = []

    async def one(samples: list[float], with_pool: SessionPool | None) -> None:
        app.runner.tool_pool = with_pool
        started = time.perf_counter()
        run = await fire_agent(app, SANDBOX, "support", {"order_id": "A-1"})
        samples.append((time.perf_counter() - started) * 1000)
        if run.status != "succeeded" or not run.tool_calls or run.tool_calls[0].error:
            raise BenchError(f"run {run.run_id} did not call its tool: {run.error_message}")

    await one([], pool)  # warms the pool's sessions for the agent
    for _ in range(count):
        await one(warm, pool)
        await one(cold, None)
    app.runner.tool_pool = None
    return warm, cold


def run(options: argparse.Namespace) -> list[Verdict]:
    """Start the servers, register the sources, measure."""
    from tests.mcp_servers import serve_http

    header(f"{NAME}: an agent with two stdio MCP sources and one streamable-HTTP source")
    with serve_http(TOKEN) as http, scratch_dir("resolution") as home, scratch_app(home) as app:

        async def main() -> list[Verdict]:
            ids = await _setup(app, http.url)
            return await _measure(app, ids, options)

        result: list[Verdict] = anyio.run(main)
        return result
