"""The server as a process: a bounded backlog that answers 429 with Retry-After instead of
accepting fires it cannot queue, 200 fires at once, graceful shutdown that keeps queued
runs for the next start, and streams that survive a restart. Each test starts its own
server (``launch``) over the test's ledger."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any, cast

import anyio
import pytest
from sqlalchemy import func, select

import cairn
from cairn import errors, wire
from cairn.store.schema import runs as runs_table
from tests.api.conftest import Deployment, Launch, make_app
from tests.api.helpers import (
    FINAL,
    Bounded,
    hanging_settings,
    problem_of,
    quick_settings,
    slow_settings,
)


def _count_runs(deployment: Deployment) -> int:
    with deployment.app.store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(runs_table)).scalar_one())


def _ledger_statuses(deployment: Deployment) -> dict[str, str]:
    """Every run's status, read from the ledger by a fresh process's eyes."""
    app = make_app(deployment.database_url, deployment.home)
    try:
        with app.store.connect() as conn:
            rows = conn.execute(select(runs_table.c.run_id, runs_table.c.status)).all()
        return {row.run_id: row.status for row in rows}
    finally:
        app.close()


def _wait_running(client: cairn.Client, run_id: str) -> Iterator[wire.RunEvent]:
    """The run's stream, after its first event arrived (so it is running)."""
    stream = Bounded(client.runs.stream(run_id))
    first = next(stream)
    assert first.seq == 1
    return stream


def test_a_full_backlog_answers_429_with_retry_after_and_fires_nothing(
    launch: Launch, slug: str
) -> None:
    deployment = launch(workers=1, max_backlog=1)
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=hanging_settings(30))
    busy = client.agents.fire(slug, event_payload={"n": 1})
    _wait_running(client, busy.run_id)  # the only worker is taken
    waiting = client.agents.fire(slug, event_payload={"n": 2})
    assert client.runs.get(waiting.run_id).status == "queued"
    before = _count_runs(deployment)

    response = deployment.http.post(
        f"/api/v1/sandboxes/default/agents/{slug}/fire",
        json={"event_payload": {"n": 3}},
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    problem = problem_of(response)
    assert problem["error"] == "Busy"
    assert "backlog is full" in problem["detail"] and "nothing was accepted" in problem["detail"]
    for refused in (
        lambda: client.agents.fire(slug),
        lambda: client.agents.test(slug),
        lambda: client.runs.oneshot(slug, "hi"),
        lambda: client.runs.replay(busy.run_id),
    ):
        with pytest.raises(errors.Busy):
            refused()
    assert _count_runs(deployment) == before, "a refused fire writes no row"

    cancelled = client.runs.cancel(waiting.run_id)
    assert cancelled.status == "cancelled", "a queued run ends before it starts"
    client.runs.cancel(busy.run_id)
    assert list(Bounded(client.runs.stream(busy.run_id)))[-1].kind == "error"
    client.agents.update(slug, model_settings=quick_settings())
    assert client.agents.test(slug).status == "succeeded", "room again: fires are accepted"
    statuses = _ledger_statuses(deployment)
    assert statuses[busy.run_id] == statuses[waiting.run_id] == "cancelled"


def test_graceful_shutdown_finishes_or_cancels_running_runs_and_keeps_queued_ones(
    launch: Launch, slug: str
) -> None:
    deployment = launch(workers=2, shutdown_grace_s=2.0, graceful_timeout_s=0)
    client = deployment.client()
    # Still running when the shutdown begins, done well within the grace period.
    client.agents.create(f"{slug}-short", "x", model_settings=slow_settings(turns=5, delay_s=0.25))
    client.agents.create(slug, "x", model_settings=hanging_settings(60))
    hanging = client.agents.fire(slug).run_id
    _wait_running(client, hanging)
    short = client.agents.fire(f"{slug}-short").run_id
    _wait_running(client, short)
    queued = [client.agents.fire(slug).run_id for _ in range(3)]
    assert {client.runs.get(run_id).status for run_id in queued} == {"queued"}

    deployment.server.stop()  # what SIGTERM does to `cairn serve`; bounded by LiveServer

    statuses = _ledger_statuses(deployment)
    assert statuses[short] == "succeeded", "a run that ends within the grace period finishes"
    assert statuses[hanging] == "cancelled"
    assert all(statuses[run_id] == "queued" for run_id in queued), "kept for the next start"
    restarted = launch(port=deployment.server.port, keys=deployment.keys, workers=3)
    again = restarted.client()
    cut = again.runs.get(hanging)
    assert cut.error_type == "cancelled"
    assert cut.error_message is not None and "shutdown" in cut.error_message
    assert [e.kind for e in again.runs.events(hanging)] == [
        "text",
        "tool_call",
        "tool_result",
        "error",
    ], "a cancelled run keeps the events it had"
    for run_id in queued:  # the next start takes them
        _wait_running(again, run_id)
        assert again.runs.get(run_id).status == "running"


def test_a_run_stream_resumes_across_a_server_restart_with_no_gap_or_duplicate(
    launch: Launch, slug: str
) -> None:
    first = launch(shutdown_grace_s=10.0, graceful_timeout_s=0)
    client = first.client()
    client.agents.create(slug, "x", model_settings=slow_settings(turns=6, delay_s=0.25))
    fired = client.agents.fire(slug, event_payload={"title": "restart"})
    follower = cairn.Client(first.url, api_key=first.keys.owner)
    try:
        stream = Bounded(follower.runs.stream(fired.run_id), within_s=20)
        seen: list[wire.RunEvent] = []
        for event in stream:
            seen.append(event)
            if event.kind == "tool_result":
                break
        # The old server cuts the stream, lets the run finish in its grace period and
        # exits; a new one comes up on the same port over the same ledger.
        first.server.stop()
        second = launch(port=first.server.port, keys=first.keys)
        seen.extend(stream)
    finally:
        follower.close()
    assert [event.seq for event in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].kind == "finish"
    stored = second.client().runs.events(fired.run_id)
    assert seen == stored
    assert second.client().runs.get(fired.run_id).status == "succeeded"


@pytest.mark.anyio
async def test_the_agent_tail_resumes_across_a_server_restart(launch: Launch, slug: str) -> None:
    first = launch(graceful_timeout_s=0)
    # Slow enough to be live when the tail connects: the tail shows live runs on connect.
    first.client().agents.create(slug, "x", model_settings=slow_settings(turns=2, delay_s=0.3))
    async with first.async_client() as client:
        before = await client.agents.fire(slug)
        seen: list[wire.RunSummary] = []
        with anyio.fail_after(30):
            tail = cast(AsyncGenerator[wire.RunSummary], client.agents.runs.follow(slug))
            # Connected (it shows the live run first), then it sees that run finish.
            async for summary in tail:
                seen.append(summary)
                if summary.run_id == before.run_id and summary.status == "succeeded":
                    break
            stopped = threading.Thread(target=first.server.stop)
            stopped.start()
            await anyio.to_thread.run_sync(stopped.join)
            second = await anyio.to_thread.run_sync(
                lambda: launch(port=first.server.port, keys=first.keys)
            )
            after = second.client().agents.fire(slug)
            async for summary in tail:
                seen.append(summary)
                if summary.run_id == after.run_id and summary.status == "succeeded":
                    break
            await tail.aclose()
    assert seen[-1].run_id == after.run_id
    assert [s.run_id for s in seen].count(before.run_id) >= 1


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_hundred_concurrent_fires_all_end_in_complete_rows(
    launch: Launch, slug: str
) -> None:
    deployment = launch(workers=8)
    deployment.client().agents.create(slug, "x", model_settings=quick_settings("Done {{event}}"))
    accepted: list[str] = []
    answered: list[wire.Run] = []
    async with deployment.async_client() as client:

        async def fire(n: int) -> None:
            if n % 2:
                accepted.append((await client.agents.fire(slug, event_payload={"n": n})).run_id)
            else:
                answered.append(await client.agents.test(slug, event_payload={"n": n}))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for n in range(200):
                    group.start_soon(fire, n)
            assert all(run.status == "succeeded" for run in answered)
            while True:  # bounded polling: the asynchronous half finishes on the workers
                page = await client.agents.runs.list(slug, limit=1000)
                if all(run.status in FINAL for run in page.runs):
                    break
                await anyio.sleep(0.05)
    rows = page.runs
    assert len(rows) == 200
    assert len({run.run_id for run in rows}) == 200
    assert {run.run_id for run in rows} == set(accepted) | {run.run_id for run in answered}
    assert {run.status for run in rows} == {"succeeded"}, "none stuck, none failed"
    assert sorted(run.event_payload["n"] for run in rows) == list(range(200))
    for run in rows:
        assert run.output_text == f'Done {{"n": {run.event_payload["n"]}}}'
        assert run.finished_at is not None and run.duration_ms is not None
        assert run.kind == ("manual" if run.run_id in accepted else "test")
    assert set(_ledger_statuses(deployment).values()) == {"succeeded"}


def test_sandboxes_and_keys_are_managed_over_the_api(launch: Launch) -> None:
    deployment = launch()
    admin = deployment.client()
    made: dict[str, Any] = admin.transport.call(
        "create_sandbox", body={"sandbox_id": "team-b", "name": "Team B"}
    )
    assert made == {"sandbox_id": "team-b", "name": "Team B"}
    with pytest.raises(errors.AlreadyExists):
        admin.transport.call("create_sandbox", body={"sandbox_id": "team-b"})
    with pytest.raises(errors.Forbidden):
        deployment.client(deployment.keys.other_owner, sandbox="other").transport.call(
            "create_sandbox", body={"sandbox_id": "team-c"}
        )
    listed = [s["sandbox_id"] for s in admin.transport.call("list_sandboxes")]
    assert "team-b" in listed
