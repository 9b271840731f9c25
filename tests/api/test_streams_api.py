"""Server-Sent Events over a real socket: a run's events in order with their seq as the SSE
id, resuming with ``Last-Event-ID`` with no gap and no duplicate, finished runs replayed,
and the per-agent tail of runs starting and finishing."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import cast

import anyio
import httpx
import pytest

import cairn
from cairn import errors, wire
from tests.api.conftest import Deployment
from tests.api.helpers import (
    FINAL,
    Bounded,
    Frame,
    problem_of,
    quick_settings,
    slow_settings,
    sse_frames,
)


@contextmanager
def sse(
    deployment: Deployment, path: str, *, token: str | None = None, last_event_id: str | None = None
) -> Iterator[tuple[httpx.Response, Iterator[Frame]]]:
    """A raw SSE connection to ``/api/v1/sandboxes/default{path}``."""
    headers = {"Authorization": f"Bearer {token or deployment.keys.owner}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with (
        httpx.Client(base_url=deployment.url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"/api/v1/sandboxes/default{path}", headers=headers) as response,
    ):
        yield response, sse_frames(response.iter_lines())


def _run_events(frames: list[Frame]) -> list[Frame]:
    return [frame for frame in frames if frame.event != "end"]


def test_a_run_stream_sends_every_event_in_order_with_its_seq_as_id_then_end(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.1))
    fired = client.agents.fire(slug, event_payload={"title": "live"})
    with sse(deployment, f"/runs/{fired.run_id}/stream") as (response, frames):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        received = list(frames)

    end = received[-1]
    assert end.event == "end"
    assert end.id is None, "the end marker is not an event to resume after"
    assert end.data == {"run_id": fired.run_id, "status": "succeeded", "outcome": "acted"}
    events = _run_events(received)
    assert [frame.id for frame in events] == [str(n) for n in range(1, len(events) + 1)]
    assert all(frame.event == frame.data["kind"] for frame in events)
    assert [frame.data["seq"] for frame in events] == list(range(1, len(events) + 1))
    stored = [event.model_dump() for event in client.runs.events(fired.run_id)]
    assert [(f.data["seq"], f.data["kind"], f.data["data"]) for f in events] == [
        (e["seq"], e["kind"], e["data"]) for e in stored
    ]
    assert [f.event for f in events].count("tool_call") == 2
    assert events[-1].event == "finish"


def test_reconnecting_with_last_event_id_mid_run_gets_exactly_what_was_missed(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=4, delay_s=0.2))
    fired = client.agents.fire(slug, event_payload={"title": "resume"})
    first: list[Frame] = []
    with sse(deployment, f"/runs/{fired.run_id}/stream") as (_, frames):
        for frame in frames:
            first.append(frame)
            if frame.event == "tool_result":
                break  # drop the connection after the first turn
    assert client.runs.get(fired.run_id).status == "running", "the reconnect is mid-run"
    last_seen = first[-1].id
    assert last_seen is not None
    with sse(deployment, f"/runs/{fired.run_id}/stream", last_event_id=last_seen) as (_, frames):
        rest = list(frames)

    assert rest[0].id == str(int(last_seen) + 1), "no gap"
    combined = first + _run_events(rest)
    seqs = [int(frame.id or 0) for frame in combined]
    assert seqs == list(range(1, len(combined) + 1)), "no gap and no duplicate"
    assert rest[-1].event == "end"
    assert rest[-1].data["status"] == "succeeded"
    stored = client.runs.events(fired.run_id)
    assert [(f.data["seq"], f.data["kind"], f.data["data"]) for f in combined] == [
        (e.seq, e.kind, e.data) for e in stored
    ]


def test_the_after_parameter_resumes_like_last_event_id(deployment: Deployment, slug: str) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=1, delay_s=0))
    run = client.agents.test(slug, event_payload={"title": "after"})
    total = len(client.runs.events(run.run_id))
    with sse(deployment, f"/runs/{run.run_id}/stream?after=2") as (_, frames):
        tail = [int(f.id) for f in frames if f.id is not None]
    assert tail == list(range(3, total + 1))
    with sse(deployment, f"/runs/{run.run_id}/stream?after=2", last_event_id="4") as (_, frames):
        tail = [int(f.id) for f in frames if f.id is not None]
    assert tail == list(range(5, total + 1)), "Last-Event-ID wins over ?after"


def test_the_stream_of_a_finished_run_replays_it_and_closes(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0))
    run = client.agents.test(slug, event_payload={"title": "done"})
    with sse(deployment, f"/runs/{run.run_id}/stream") as (_, frames):
        replayed = list(frames)  # ends by itself (else the 10 s read timeout fails the test)
    assert replayed[-1].event == "end"
    assert replayed[-1].data["status"] == "succeeded"
    stored = client.runs.events(run.run_id)
    assert [int(f.id or 0) for f in replayed[:-1]] == [e.seq for e in stored]
    with sse(deployment, f"/runs/{run.run_id}/stream", last_event_id=str(len(stored))) as (
        _,
        frames,
    ):
        assert [f.event for f in frames] == ["end"], "nothing left to replay, just the end"


def test_the_sdk_stream_yields_each_event_once_and_stops_at_the_end(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.1))
    fired = client.agents.fire(slug)
    events = list(Bounded(client.runs.stream(fired.run_id)))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events == client.runs.events(fired.run_id)
    assert list(Bounded(client.runs.stream(fired.run_id, after=len(events) - 2))) == events[-2:]


@pytest.mark.anyio
async def test_the_async_sdk_stream_resumes_after_a_given_seq(
    deployment: Deployment, slug: str
) -> None:
    async with deployment.async_client() as client:
        await client.agents.create(
            slug, "You help.", model_settings=slow_settings(turns=3, delay_s=0.1)
        )
        fired = await client.agents.fire(slug)
        with anyio.fail_after(10):
            head: list[wire.RunEvent] = []
            async for event in client.runs.stream(fired.run_id):
                head.append(event)
                if event.kind == "tool_result":
                    break
            tail = [event async for event in client.runs.stream(fired.run_id, after=head[-1].seq)]
    combined = head + tail
    assert [e.seq for e in combined] == list(range(1, len(combined) + 1))
    assert combined[-1].kind == "finish"


@pytest.mark.anyio
async def test_the_agent_tail_shows_runs_as_they_are_queued_start_and_finish(
    deployment: Deployment, slug: str
) -> None:
    async with deployment.async_client() as client:
        await client.agents.create(
            slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.15)
        )
        already_live = await client.agents.fire(slug)
        seen: list[wire.RunSummary] = []
        with anyio.fail_after(10):
            tail = cast(AsyncGenerator[wire.RunSummary], client.agents.runs.follow(slug))
            # On connect the tail shows the runs still live: proof it is subscribed.
            first = await anext(tail)
            assert first.run_id == already_live.run_id
            assert first.status in ("queued", "running")
            later = await client.agents.fire(slug, event_payload={"title": "later"})
            async for summary in tail:
                seen.append(summary)
                if summary.run_id == later.run_id and summary.status == "succeeded":
                    break
            await tail.aclose()
    by_run: dict[str, list[str]] = {}
    for summary in seen:
        by_run.setdefault(summary.run_id, []).append(summary.status)
        assert summary.agent_slug == slug
    assert by_run[later.run_id] == ["queued", "running", "succeeded"]
    assert by_run[already_live.run_id][-1] == "succeeded"
    done = next(s for s in seen if s.run_id == later.run_id and s.status == "succeeded")
    assert done.outcome == "acted"
    assert done.tool_calls == 2
    assert done.tokens_in > 0
    assert done.duration_ms is not None


def test_the_sync_sdk_follows_the_agent_tail(deployment: Deployment, slug: str) -> None:
    owner = deployment.client()
    owner.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.15))
    live = owner.agents.fire(slug)
    follower = cairn.Client(deployment.url, api_key=deployment.keys.viewer)
    try:
        tail = Bounded(follower.agents.runs.follow(slug))
        assert next(tail).run_id == live.run_id, "connected: the live run shows first"
        later = owner.agents.fire(slug)
        statuses = []
        for summary in tail:
            if summary.run_id == later.run_id:
                statuses.append(summary.status)
                if summary.status in FINAL:
                    break
    finally:
        follower.close()  # ends the endless tail
    assert statuses == ["queued", "running", "succeeded"]


def test_the_agent_tail_after_a_reconnect_sends_the_runs_made_since_the_last_one_seen(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    seen = client.agents.test(slug).run_id
    missed = [client.agents.test(slug).run_id, client.agents.test(slug).run_id]
    with sse(deployment, f"/agents/{slug}/runs/stream", last_event_id=seen) as (response, frames):
        assert response.status_code == 200
        got = [next(frames), next(frames)]
    assert [frame.id for frame in got] == missed, "oldest first, each with its run id as SSE id"
    assert [frame.data["status"] for frame in got] == ["succeeded", "succeeded"]
    assert all(frame.event == "run" for frame in got)


def test_streams_of_unknown_runs_and_agents_are_404_problems_before_streaming(
    deployment: Deployment,
) -> None:
    for path in ("/runs/run_00000000000000000000000000/stream", "/agents/nobody/runs/stream"):
        with sse(deployment, path) as (response, _):
            response.read()
            assert response.status_code == 404
            assert problem_of(response)["error"] == "NotFound"
    client = deployment.client()
    with pytest.raises(errors.NotFound):
        list(Bounded(client.runs.stream("run_00000000000000000000000000")))
