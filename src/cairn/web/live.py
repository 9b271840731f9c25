"""The runs page's live tail: every agent's runs of a sandbox on one SSE connection.

The API streams one agent's runs (``…/agents/{slug}/runs/stream``); a browser holds at most
six connections to a host, so a page of many agents cannot open one each. This stream
follows every agent of the sandbox on the in-process bus, picks up agents created while it
is open, and merges their run summaries into ``run`` events. It is an ASGI response of its
own rather than a generator because the merge needs a task group, and a task group must not
straddle a generator's ``yield``.

On connect it first sends what the page may have missed between rendering and connecting:
the runs newer than the newest one on the page (``after``), and the current state of the
runs the page shows as live (``watch``). Duplicates are harmless: the page upserts by id.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import Receive, Scope, Send

from cairn.errors import NotFound
from cairn.services.app import App

RESCAN_S = 5.0
"""How often the stream looks for new agents (and sends a keep-alive comment)."""
BUFFER = 1000


def _frame(summary: dict[str, Any]) -> bytes:
    data = json.dumps(summary, default=str)
    return f"id: {summary['run_id']}\nevent: run\ndata: {data}\n\n".encode()


def catch_up(app: App, sandbox: str, after: str | None, watch: list[str]) -> list[dict[str, Any]]:
    """Summaries of the runs made after ``after`` (oldest first) and of the ``watch`` runs."""
    from cairn.runner.bus import run_summary
    from cairn.services import runs as run_service

    found: dict[str, dict[str, Any]] = {}
    if after:
        newest = run_service.list_runs(app, sandbox, run_service.RunQuery(limit=100))
        for run in reversed(newest):
            if run.run_id > after:
                found[run.run_id] = run_summary(run)
    for run_id in watch[:100]:
        try:
            run = run_service.get_run(app, sandbox, run_id)
        except NotFound:
            continue
        found[run.run_id] = run_summary(run)
    return list(found.values())


class SandboxRunStream:
    """``text/event-stream`` of every run summary of ``sandbox`` from now on."""

    def __init__(self, app: App, sandbox: str, after: str | None, watch: list[str]) -> None:
        self.app = app
        self.sandbox = sandbox
        self.after = after
        self.watch = watch
        self.followed: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        merged_send, merged = anyio.create_memory_object_stream[dict[str, Any]](BUFFER)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._until_disconnect, receive, group.cancel_scope)
                await self._follow_new_agents(group, merged_send)
                missed = await anyio.to_thread.run_sync(
                    catch_up, self.app, self.sandbox, self.after, self.watch
                )
                for summary in missed:
                    await send(
                        {"type": "http.response.body", "body": _frame(summary), "more_body": True}
                    )
                await self._pump(group, merged, merged_send, send)
        finally:
            merged_send.close()
            merged.close()
            self._forget()

    async def _pump(
        self,
        group: anyio.abc.TaskGroup,
        merged: MemoryObjectReceiveStream[dict[str, Any]],
        merged_send: MemoryObjectSendStream[dict[str, Any]],
        send: Send,
    ) -> None:
        while True:
            with anyio.move_on_after(RESCAN_S) as idle:
                summary = await merged.receive()
            if idle.cancelled_caught:
                await self._follow_new_agents(group, merged_send)
                body = b": keep-alive\n\n"
            else:
                body = _frame(summary)
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _follow_new_agents(
        self, group: anyio.abc.TaskGroup, merged_send: MemoryObjectSendStream[dict[str, Any]]
    ) -> None:
        from cairn.services.agents import list_agents

        bus = self.app.bus
        if bus is None:
            return
        agents = await anyio.to_thread.run_sync(list_agents, self.app, self.sandbox)
        for agent in agents:
            if agent.agent_id in self.followed:
                continue
            self.followed.add(agent.agent_id)
            group.start_soon(_forward, bus.follow_agent(self.sandbox, agent.agent_id), merged_send)

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    def _forget(self) -> None:
        forget = getattr(self.app.bus, "forget_agent_followers", None)
        if forget is not None:
            for agent_id in self.followed:
                forget(self.sandbox, agent_id)


async def _forward(
    source: MemoryObjectReceiveStream[dict[str, Any]],
    merged_send: MemoryObjectSendStream[dict[str, Any]],
) -> None:
    with source:
        async for summary in source:
            try:
                merged_send.send_nowait(summary)
            except anyio.WouldBlock:
                pass  # a browser that cannot keep up misses a summary, never slows a run
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
