"""Server-Sent Events: one run's events, and an agent's runs as they start and finish.

A run stream sends every event with its sequence number as the SSE ``id``. A client that
reconnects with ``Last-Event-ID`` gets exactly what it missed, then the live tail
(``follow_run``, which the SDK's in-process transport follows too). A stream of a finished
run replays it and closes with an ``end`` event. Comments keep idle connections open through
proxies. A stream ends (``revoked``) within a second of its key's revocation
(``cairn.api.revocation``). sse-starlette writes the frames; on ``cairn serve``'s SIGTERM it
also ends every open stream at once, so that shutdown does not wait on endless tails.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from cairn.api.dependencies import CallerDep
from cairn.api.operations import Caller
from cairn.api.problems import problem_responses
from cairn.api.revocation import Revocable
from cairn.domain.keys import Principal
from cairn.domain.runs import FINAL_STATUSES
from cairn.services import runs as run_service
from cairn.services.app import App

streams = APIRouter(prefix="/api/v1/sandboxes/{sandbox}", tags=["streams"])

KEEPALIVE_S = 15.0
POLL_S = 0.2  # for runs executing in another process
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"},
    **problem_responses(),  # answered before the stream starts
}
Frame = tuple[str | None, str, Any]
"""One event to send: its SSE ``id`` (or ``None``), its name and its data (JSON)."""


def sse_event(event_id: str | None, event: str, data: Any) -> ServerSentEvent:
    """One SSE frame, its data as JSON, lines ending in ``\\n``."""
    return ServerSentEvent(json.dumps(data, default=str), event=event, id=event_id, sep="\n")


def sse_response(frames: AsyncIterator[Frame], app: App, principal: Principal) -> Response:
    """``frames`` as ``text/event-stream``, kept alive by comments, ended when ``principal``
    is revoked."""
    stream = EventSourceResponse(
        (sse_event(*frame) async for frame in frames),
        headers={"Cache-Control": "no-cache"},
        sep="\n",
        ping=KEEPALIVE_S,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive", sep="\n"),
    )
    return Revocable(stream, app, principal)


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
    frames = follow_run(caller.app, caller.sandbox, run_id, start)
    return sse_response(frames, caller.app, caller.principal)


async def follow_run(app: App, sandbox: str, run_id: str, last: int) -> AsyncIterator[Frame]:
    """The run's events after seq ``last`` as they happen, then ``end`` once it is final.

    While the run executes in this process its events come from the in-process bus (the
    ledger lags by up to a heartbeat), with no gap and no duplicate; otherwise from the
    ledger, polled while another process runs it. The ledger writes a run's final status
    with its last events, so events read after a final status are all of them."""
    while True:
        follow = app.bus.follow_run(run_id, last) if app.bus is not None else None
        if follow is not None:
            history, receive = follow
            with receive:
                for event in history:
                    yield str(event.seq), event.kind, event.to_dict()
                    last = event.seq
                async for event in receive:  # until the run finishes (or lags behind)
                    if event.seq > last:
                        yield str(event.seq), event.kind, event.to_dict()
                        last = event.seq
        run = run_service.get_run(app, sandbox, run_id)
        for event in run_service.get_run_events(app, sandbox, run_id, last):
            yield str(event.seq), event.kind, event.to_dict()
            last = event.seq
        if run.status in FINAL_STATUSES:
            yield None, "end", {"run_id": run_id, "status": run.status, "outcome": run.outcome}
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
    missed = partial(_missed_runs, caller, slug, last_event_id)
    frames = follow_runs(caller.app, caller.sandbox, agent.agent_id, missed)
    return sse_response(frames, caller.app, caller.principal)


async def follow_runs(
    app: App, sandbox: str, agent_id: str | None, missed: Callable[[], list[dict[str, Any]]]
) -> AsyncIterator[Frame]:
    """``run`` frames of the agent's runs (every agent's, for ``None``) as they are queued,
    start and finish, after the summaries of ``missed()``: what the client may have missed,
    read once following has begun, so that no run falls in between."""
    bus = app.bus
    assert bus is not None, "live tails are served by `cairn serve` only"
    receive = bus.follow_agent(sandbox, agent_id)
    try:
        with receive:
            for summary in await anyio.to_thread.run_sync(missed):
                yield summary["run_id"], "run", summary
            async for summary in receive:
                yield summary["run_id"], "run", summary
    finally:
        bus.forget_agent_followers(sandbox, agent_id)


def _missed_runs(caller: Caller, slug: str, last_seen: str | None) -> list[dict[str, Any]]:
    """Live runs, plus (after a reconnect) the runs made since ``last_seen``, oldest first."""
    from cairn.runner.bus import run_summary

    query = run_service.RunQuery(agent_slug=slug, limit=200)
    recent = run_service.list_runs(caller.app, caller.sandbox, query)
    return [
        run_summary(run)
        for run in reversed(recent)
        if run.status not in FINAL_STATUSES or (last_seen is not None and run.run_id > last_seen)
    ]
