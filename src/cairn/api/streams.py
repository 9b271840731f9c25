"""Server-Sent Events: one run's events, and an agent's runs as they start and finish.

A run stream sends every event with its sequence number as the SSE ``id``. A client that
reconnects with ``Last-Event-ID`` gets exactly what it missed, then the live tail: events
of a run live in this process come from the in-process bus (no database lag), anything
else from the ledger. A stream of a finished run replays it and closes with an ``end``
event. Comments keep idle connections open through proxies. A stream ends (``revoked``) within a
second of its key's revocation (``cairn.api.revocation``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse

from cairn.api.dependencies import CallerDep
from cairn.api.operations import Caller
from cairn.api.problems import problem_responses
from cairn.api.revocation import Revocable
from cairn.domain.runs import FINAL_STATUSES, RunEvent
from cairn.services import runs as run_service

streams = APIRouter(prefix="/api/v1/sandboxes/{sandbox}", tags=["streams"])

KEEPALIVE_S = 15.0
POLL_S = 0.2  # for runs executing in another process
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"},
    **problem_responses(),  # answered before the stream starts
}


def _frame(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def _event_frame(event: RunEvent) -> str:
    return _frame(event.kind, event.to_dict(), str(event.seq))


MAX_SEQ = 2**31 - 1
"""The largest sequence number a run's events can have (the ledger's ``seq`` column)."""


def _resume_point(last_event_id: str | None, after: int) -> int:
    """Where to resume: ``Last-Event-ID`` when it is a sequence number (as sent by a
    reconnecting client), else ``after``. Anything else in the header is ignored."""
    value = (last_event_id or "").strip()
    if value.isascii() and value.isdigit() and int(value) <= MAX_SEQ:
        return int(value)
    return after


@streams.get("/runs/{run_id}/stream", responses=SSE_DOC, response_class=StreamingResponse)
async def stream_run(
    caller: CallerDep,
    run_id: str,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="resume after this seq")] = 0,
) -> Response:
    """Every event of the run in order (SSE ``id`` = seq), then ``end`` when it is final."""
    run_service.get_run(caller.app, caller.sandbox, run_id)  # 404 before streaming starts
    start = _resume_point(last_event_id, after)
    stream = StreamingResponse(
        _run_frames(caller, run_id, start), media_type="text/event-stream", headers=SSE_HEADERS
    )
    return Revocable(stream, caller.app, caller.principal)


async def _run_frames(caller: Caller, run_id: str, last: int) -> AsyncIterator[str]:
    bus = caller.app.bus
    while True:
        follow = bus.follow_run(run_id, last) if bus is not None else None
        if follow is not None:
            history, receive = follow
            for event in history:
                yield _event_frame(event)
                last = event.seq
            with receive:
                while True:
                    with anyio.move_on_after(KEEPALIVE_S) as idle:
                        try:
                            event = await receive.receive()
                        except anyio.EndOfStream:
                            break
                    if idle.cancelled_caught:
                        yield ": keep-alive\n\n"
                        continue
                    if event.seq > last:
                        yield _event_frame(event)
                        last = event.seq
        for event in run_service.get_run_events(caller.app, caller.sandbox, run_id, last):
            yield _event_frame(event)
            last = event.seq
        run = run_service.get_run(caller.app, caller.sandbox, run_id)
        if run.status in FINAL_STATUSES:
            for event in run_service.get_run_events(caller.app, caller.sandbox, run_id, last):
                yield _event_frame(event)
                last = event.seq
            yield _frame("end", {"run_id": run_id, "status": run.status, "outcome": run.outcome})
            return
        if follow is None:
            await anyio.sleep(POLL_S)


@streams.get("/agents/{slug}/runs/stream", responses=SSE_DOC, response_class=StreamingResponse)
async def stream_agent_runs(
    caller: CallerDep,
    slug: str,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The agent's runs as they are queued, start and finish (``run`` events whose ``id`` is
    the run id). On connect: the runs still live; after a reconnect, also every run made
    since the last one seen."""
    from cairn.services.agents import get_agent

    agent = get_agent(caller.app, caller.sandbox, slug)
    bus = caller.app.bus
    assert bus is not None, "agent streams are served by `cairn serve` only"
    receive = bus.follow_agent(caller.sandbox, agent.agent_id)
    missed = _missed_runs(caller, slug, last_event_id)

    async def frames() -> AsyncIterator[str]:
        from cairn.runner.bus import run_summary

        try:
            with receive:
                for run in missed:
                    yield _frame("run", run_summary(run), run.run_id)
                while True:
                    with anyio.move_on_after(KEEPALIVE_S) as idle:
                        summary = await receive.receive()
                    if idle.cancelled_caught:
                        yield ": keep-alive\n\n"
                        continue
                    yield _frame("run", summary, summary["run_id"])
        finally:
            bus.forget_agent_followers(caller.sandbox, agent.agent_id)

    stream = StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)
    return Revocable(stream, caller.app, caller.principal)


def _missed_runs(caller: Caller, slug: str, last_seen: str | None) -> list[Any]:
    """Live runs, plus (after a reconnect) the runs made since ``last_seen``, oldest first."""
    query = run_service.RunQuery(agent_slug=slug, limit=200)
    recent = run_service.list_runs(caller.app, caller.sandbox, query)
    chosen = [
        run
        for run in recent
        if run.status not in FINAL_STATUSES or (last_seen is not None and run.run_id > last_seen)
    ]
    return list(reversed(chosen))
