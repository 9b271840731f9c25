"""A run's life in the ledger: written when accepted, kept current by the heartbeat while it
runs, and ended by cancellation with its events kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest
from sqlalchemy import Connection

from cairn.domain.runs import Run
from cairn.runner.engine import Runner
from cairn.services.agents import get_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent, get_run
from cairn.services.sources import available_sources
from cairn.store import Store
from tests.runner import helpers
from tests.runner.helpers import (
    SANDBOX,
    add_source,
    assert_complete,
    assert_failed,
    kinds,
    make_agent,
    stored,
)


class ObservedStore(Store):
    """The test's real ledger, announcing each committed transaction (so a test can wait
    for the heartbeat's write instead of sleeping)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.url, store.engine)
        self.committed = anyio.Event()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with super().begin() as conn:
            yield conn
        self.committed.set()


@pytest.mark.anyio
async def test_an_accepted_fire_is_written_as_running_before_anything_runs(app: App) -> None:
    agent = await make_agent(app, "hello")
    run = app.runner.accept(agent, {"n": 1}, kind="manual")
    live = get_run(app, SANDBOX, run.run_id)
    assert live.status == "running"
    assert live.started_at is not None and live.finished_at is None
    assert live.event_payload == {"n": 1}
    assert live.outcome is None


@pytest.mark.anyio
async def test_a_queued_run_gets_its_start_time_when_it_executes(app: App) -> None:
    agent = await make_agent(app, "hello")
    run = app.runner.accept(agent, {}, kind="manual", start_now=False)
    queued = get_run(app, SANDBOX, run.run_id)
    assert (queued.status, queued.started_at) == ("queued", None)

    await app.runner.execute(run, agent, available_sources(app, SANDBOX))
    done, events = stored(app, run.run_id)
    assert_complete(done, events)
    assert done.status == "succeeded"
    assert done.created_at is not None and done.started_at is not None
    assert done.started_at >= done.created_at


@pytest.mark.anyio
async def test_cancelling_a_run_that_is_not_live_here_returns_false(app: App) -> None:
    await make_agent(app, "hello")
    finished = await fire_agent(app, SANDBOX, "tester", {})
    assert app.runner.cancel("run_unknown") is False
    assert app.runner.cancel(finished.run_id) is False


@pytest.mark.anyio
async def test_cancelling_while_the_model_waits_ends_the_run_cancelled_with_events_kept(
    app: App,
) -> None:
    helpers.hooks.pinged = anyio.Event()
    pinger = add_source(app, ["ping"])
    script = [
        {"text": "Checking first.", "tool_calls": [{"name": "ping"}]},
        {"text": "Too slow.", "delay_s": 30},
    ]
    agent = await make_agent(app, script, tool_sources=[pinger.source_id])
    accepted = app.runner.accept(agent, {}, kind="test")
    finished: list[Run] = []

    async def execute() -> None:
        finished.append(await app.runner.execute(accepted, agent, available_sources(app, SANDBOX)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(execute)
            # After the tool returns, the next thing the run does is the delayed turn.
            await helpers.hooks.pinged.wait()
            assert get_run(app, SANDBOX, accepted.run_id).status == "running"
            assert app.runner.cancel(accepted.run_id) is True

    assert finished[0].status == "cancelled"
    run, events = stored(app, accepted.run_id)
    message = assert_failed(run, events, status="cancelled", error_type="cancelled")
    assert "cancelled" in message
    assert kinds(events) == ["text", "tool_call", "tool_result", "error"]
    assert [c.result for c in run.tool_calls] == ["pong"]
    assert run.output_text == "Checking first."
    assert app.runner.cancel(accepted.run_id) is False


@pytest.mark.anyio
async def test_the_heartbeat_shows_a_hung_tool_call_in_the_live_row(app: App) -> None:
    helpers.hooks.gate_entered = anyio.Event()
    helpers.hooks.gate_open = anyio.Event()
    gate = add_source(app, ["wait_for_gate"])
    script = [{"text": "Waiting.", "tool_calls": [{"name": "wait_for_gate"}]}, "Through."]
    await make_agent(app, script, tool_sources=[gate.source_id])
    agent = get_agent(app, SANDBOX, "tester")
    observed = ObservedStore(app.store)
    runner = Runner(observed, app.tool_context, heartbeat_s=0.02)
    accepted = runner.accept(agent, {}, kind="test")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(runner.execute, accepted, agent, available_sources(app, SANDBOX))
            await helpers.hooks.gate_entered.wait()
            observed.committed = anyio.Event()
            await observed.committed.wait()  # a heartbeat written while the tool hangs

            live, live_events = stored(app, accepted.run_id)
            assert live.status == "running"
            assert [(c.name, c.result) for c in live.tool_calls] == [("wait_for_gate", None)]
            assert kinds(live_events) == ["text", "tool_call"]
            assert live.heartbeat_at is not None and live.started_at is not None
            assert live.heartbeat_at > live.started_at
            assert live.tool_resolution_trace is not None

            helpers.hooks.gate_open.set()

    run, events = stored(app, accepted.run_id)
    assert_complete(run, events)
    assert (run.status, run.output_text) == ("succeeded", "Through.")
    assert kinds(events) == ["text", "tool_call", "tool_result", "text", "finish"]
