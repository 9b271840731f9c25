"""Warm MCP sessions (``cairn.tools.pool``) against real stdio servers, through resolution.

Every wait is bounded by a deadline; nothing sleeps to let time pass. Cold starts are slow
on a loaded machine, so the resolution timeout here is generous.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from cairn.domain.sources import DataSource
from cairn.domain.trace import ToolResolutionTrace
from cairn.tools.base import ToolContext
from cairn.tools.pool import PoolSettings, SessionPool
from cairn.tools.resolution import ResolvedTools, resolve_tools
from tests.mcp_servers import stdio_config

pytestmark = pytest.mark.anyio

WARM_SERVER = Path(__file__).resolve().parent.parent / "mcp_servers" / "warm.py"
CONTEXT = ToolContext(resolve_timeout_s=60.0)
DEADLINE_S = 60.0


def warm_source(
    sandbox_id: str = "sbx_a", source_id: str = "src_warm", **config: Any
) -> DataSource:
    return DataSource(
        source_id=source_id,
        sandbox_id=sandbox_id,
        kind="user_mcp",
        label="warm",
        config={
            "transport": "stdio",
            "command": sys.executable,
            "args": [str(WARM_SERVER)],
            "namespace": "warm",
            **config,
        },
    )


@asynccontextmanager
async def resolved(pool: SessionPool, *records: DataSource) -> AsyncIterator[ResolvedTools]:
    async with resolve_tools(
        selection=[r.source_id for r in records],
        allowlist=[],
        available=list(records),
        context=CONTEXT,
        pool=pool,
    ) as tools:
        yield tools


async def server_pid(pool: SessionPool, record: DataSource) -> tuple[int, ToolResolutionTrace]:
    """The pid of the server a resolution of ``record`` reaches, and that resolution's trace."""
    async with resolved(pool, record) as tools:
        assert not tools.trace.sources_skipped, tools.trace.sources_skipped
        output = await tools.call("warm_pid", {})
        assert output.error is None, output.error
        return int(output.result), tools.trace


async def until(check: Callable[[], Any], what: str) -> None:
    """Poll ``check`` (sync or async) until it is true, within the deadline."""
    with anyio.fail_after(DEADLINE_S):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await anyio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - fail_after raises first


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes: it answers nothing.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


async def test_a_warm_source_is_resolved_without_spawning_and_says_when_it_was_cold() -> None:
    record = warm_source()
    async with SessionPool(CONTEXT) as pool:
        first_pid, first = await server_pid(pool, record)
        second_pid, second = await server_pid(pool, record)

    assert first_pid == second_pid
    assert first.sources_resolved[0].cold_start_ms is not None
    assert first.sources_resolved[0].cold_start_ms > 0
    assert second.sources_resolved[0].cold_start_ms is None
    assert second.to_dict()["sources_resolved"][0]["cold_start_ms"] is None
    assert "warm_pid" in second.tool_names_advertised
    await until(lambda: gone(first_pid), "the pool closed the server on exit")


async def test_a_warm_server_killed_from_outside_is_skipped_with_a_reason_then_restarted() -> None:
    record = warm_source()
    settings = PoolSettings(restart_delay_s=3600.0)  # the next run, not a timer, restarts it
    async with SessionPool(CONTEXT, settings) as pool:
        old_pid, _ = await server_pid(pool, record)
        os.kill(old_pid, signal.SIGKILL)
        await until(lambda: [s.state for s in pool.sessions()] == ["dead"], "the death is detected")

        async with resolved(pool, record) as tools:
            skipped = tools.trace.sources_skipped
        new_pid, trace = await server_pid(pool, record)

    assert [(s.source_id, s.reason) for s in skipped] == [("src_warm", "unreachable")]
    assert "closed the connection" in skipped[0].message
    assert "restarting" in skipped[0].message
    assert new_pid != old_pid
    assert trace.sources_resolved[0].cold_start_ms is not None


async def test_a_dead_server_is_restarted_eagerly_after_the_restart_delay() -> None:
    record = warm_source()
    async with SessionPool(CONTEXT, PoolSettings(restart_delay_s=0.0)) as pool:
        old_pid, _ = await server_pid(pool, record)
        os.kill(old_pid, signal.SIGKILL)
        await until(
            lambda: [(s.state, s.starts) for s in pool.sessions()] == [("ready", 2)],
            "restarted without any run asking",
        )
        new_pid, trace = await server_pid(pool, record)

    assert new_pid != old_pid
    assert trace.sources_resolved[0].cold_start_ms is None  # the restart was not this run's


async def test_sessions_of_one_sandbox_are_never_used_for_another() -> None:
    in_a = warm_source("sbx_a")
    in_b = warm_source("sbx_b")  # same id and config, another tenant
    async with SessionPool(CONTEXT) as pool:
        pid_a, _ = await server_pid(pool, in_a)
        pid_b, trace_b = await server_pid(pool, in_b)
        again_a, _ = await server_pid(pool, in_a)
        sandboxes = sorted(s.sandbox_id for s in pool.sessions())

    assert pid_a != pid_b
    assert again_a == pid_a
    assert trace_b.sources_resolved[0].cold_start_ms is not None
    assert sandboxes == ["sbx_a", "sbx_b"]


async def test_idle_sessions_are_closed() -> None:
    record = warm_source()
    async with SessionPool(CONTEXT, PoolSettings(idle_close_s=0.2)) as pool:
        pid, _ = await server_pid(pool, record)
        await until(lambda: not pool.sessions() and gone(pid), "the idle server stopped")
        again, trace = await server_pid(pool, record)

    assert again != pid
    assert trace.sources_resolved[0].cold_start_ms is not None


async def test_a_source_whose_secret_changed_gets_a_new_session_never_the_old_one() -> None:
    def orders(value: str) -> DataSource:
        return DataSource(
            "src_orders",
            "sbx_a",
            "user_mcp",
            "orders",
            stdio_config(namespace="orders"),
            secret={"env:GREETING": value},
        )

    async def greeting(pool: SessionPool, record: DataSource) -> Any:
        async with resolved(pool, record) as tools:
            return (await tools.call("orders_read_env", {"name": "GREETING"})).result

    async with SessionPool(CONTEXT) as pool:
        before = await greeting(pool, orders("old-secret"))
        after = await greeting(pool, orders("new-secret"))
        again = await greeting(pool, orders("new-secret"))

    assert (before, after, again) == ("old-secret", "new-secret", "new-secret")


async def test_the_tool_list_is_refreshed_when_the_server_says_it_changed() -> None:
    record = warm_source()
    async with SessionPool(CONTEXT, PoolSettings(tools_ttl_s=3600.0)) as pool:
        async with resolved(pool, record) as tools:
            assert "warm_late" not in tools.trace.tool_names_advertised
            grown = await tools.call("warm_grow", {"name": "late"})
            assert grown.error is None, grown.error

        async def listed() -> bool:
            async with resolved(pool, record) as tools:
                return "warm_late" in tools.trace.tool_names_advertised

        await until(listed, "the new tool is listed")
        async with resolved(pool, record) as tools:
            said = await tools.call("warm_late", {})

    assert said.result == "late says hi"


async def test_calls_to_one_source_are_capped_at_its_concurrency_limit() -> None:
    record = warm_source(max_concurrent_calls=2)
    peaks: list[int] = []
    async with SessionPool(CONTEXT) as pool, resolved(pool, record) as tools:

        async def call() -> None:
            output = await tools.call("warm_busy", {"seconds": 0.3})
            assert output.error is None, output.error
            peaks.append(int(output.result))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(call)

    assert len(peaks) == 5
    assert max(peaks) <= 2


async def test_a_hung_server_is_skipped_as_timeout_and_restarted(tmp_path: Path) -> None:
    record = warm_source()
    context = ToolContext(resolve_timeout_s=60.0)
    settings = PoolSettings(tools_ttl_s=0.0, restart_delay_s=3600.0)  # every lease re-lists
    marker = tmp_path / "frozen"
    async with SessionPool(context, settings) as pool:
        old_pid, _ = await server_pid(pool, record)
        async with resolved(pool, record) as tools, anyio.create_task_group() as group:
            arguments = {"seconds": 30, "marker": str(marker)}
            group.start_soon(tools.call, "warm_freeze", arguments)
            await until(marker.exists, "the server is frozen")
            with anyio.fail_after(DEADLINE_S):
                # The freeze holds the server's event loop: its refresh cannot answer.
                short = ToolContext(resolve_timeout_s=1.0)
                pool.context = short
                async with resolve_tools(
                    selection=[record.source_id],
                    allowlist=[],
                    available=[record],
                    context=short,
                    pool=pool,
                ) as frozen:
                    skipped = frozen.trace.sources_skipped
            group.cancel_scope.cancel()
        await until(lambda: pool.sessions()[0].state == "dead", "found hung")
        pool.context = context
        async with resolved(pool, record) as tools:
            still = tools.trace.sources_skipped
        new_pid, _ = await server_pid(pool, record)

    assert [s.reason for s in skipped] == ["timeout"]
    assert [s.reason for s in still] == ["timeout"]
    assert "did not answer tools/list" in still[0].message
    assert new_pid != old_pid


async def test_a_discarded_source_stops_its_warm_server() -> None:
    record = warm_source()
    async with SessionPool(CONTEXT) as pool:
        pid, _ = await server_pid(pool, record)
        pool.discard(record.source_id)  # what revoking the source does
        await until(lambda: not pool.sessions() and gone(pid), "the revoked server stopped")
