"""In-process: a worker gives a waiting sandbox a slot before another sandbox's flood
drains; ``cairn status`` (CLI and API route, in-process) shows the backlog and workers."""

from __future__ import annotations

import json

import anyio
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Run
from cairn.execution.embedded import EmbeddedBackend
from cairn.services import runs as run_service
from cairn.services.access import create_sandbox
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App

pytestmark = pytest.mark.anyio

SLOW = {"turns": [{"delay_s": 0.2, "text": "done"}]}


async def _agent(app: App, sandbox: str, slug: str) -> None:
    await create_agent(
        app,
        sandbox,
        AgentSpec(slug=slug, system_prompt="x", model_settings=ModelSettings(script=SLOW)),
    )


async def _flood(app: App) -> tuple[EmbeddedBackend, list[Run]]:
    """Twelve slow runs queued in ``default``; an agent ready to fire in ``small``."""
    create_sandbox(app, "small", "Small tenant")
    await _agent(app, "default", "flood")
    await _agent(app, "small", "single")
    backend = EmbeddedBackend(app)
    app.executor = backend
    flood = [
        run_service.start_fire(app, "default", "flood", {"n": n}, kind="manual").run
        for n in range(12)
    ]
    return backend, flood


async def test_a_waiting_sandbox_gets_a_slot_before_another_sandboxs_flood_drains(
    app: App,
) -> None:
    backend, flood = await _flood(app)
    late = run_service.start_fire(app, "small", "single", {}, kind="manual").run
    worker = backend.worker(concurrency=2)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            await group.start(worker.run)
            done = await app.completions.wait(app, late)
            await worker.stop(10)
    flood_rows = [run_service.get_run(app, "default", run.run_id) for run in flood]
    before = [
        r for r in flood_rows if r.started_at and done.started_at and r.started_at < done.started_at
    ]
    assert done.status == "succeeded"
    assert len(before) <= 3, (
        f"the small sandbox's run waited for {len(before)} flood runs, not for one slot to free"
    )


async def test_a_sandbox_arriving_mid_flood_gets_the_next_free_slot(app: App) -> None:
    """The worker trusts "only the flood waits" for ``idle_poll_s`` (60 s here); a run of
    another sandbox accepted in this process makes it look again at once."""
    from cairn.execution.worker import LedgerWorker

    backend, flood = await _flood(app)
    worker = LedgerWorker(app, concurrency=2, idle_poll_s=60)
    backend.local.append(worker)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            await group.start(worker.run)
            await app.completions.wait(app, flood[2])  # the flood holds both slots
            late = run_service.start_fire(app, "small", "single", {}, kind="manual").run
            done = await app.completions.wait(app, late)
            await worker.stop(10)
    assert done.status == "succeeded"
    assert done.started_at is not None and late.created_at is not None
    starts = [run_service.get_run(app, "default", run.run_id).started_at for run in flood]
    before_it = [s for s in starts if s and late.created_at < s < done.started_at]
    assert len(before_it) <= 1, f"{len(before_it)} flood runs took a slot before it"


def test_cairn_status_shows_the_backlog_and_the_oldest_queued_run(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    anyio.run(_agent, app, "default", "waiting")
    app.executor = EmbeddedBackend(app)
    first = run_service.start_fire(app, "default", "waiting", {}, kind="manual").run
    run_service.start_fire(app, "default", "waiting", {}, kind="manual")
    monkeypatch.delenv("CAIRN_URL", raising=False)
    result = CliRunner().invoke(
        cli, ["--db", app.settings.database_url, "status", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["queued"], shown["running"]) == (2, 0)
    assert shown["oldest_queued_run_id"] == first.run_id
    assert shown["executor"] == "embedded" and shown["lease_s"] == 30
    human = CliRunner().invoke(cli, ["--db", app.settings.database_url, "status"])
    assert "2 queued, 0 running" in human.output and first.run_id in human.output


async def test_on_postgresql_a_fire_in_another_process_wakes_an_idle_worker_at_once(
    app: App, database_url: str
) -> None:
    """The worker below would look at the ledger only once a minute on its own; the fire
    through a second ``App`` (another process, as far as the worker knows) reaches it
    through the fire transaction's NOTIFY."""
    if not database_url.startswith("postgres"):
        pytest.skip("NOTIFY is PostgreSQL's; on SQLite idle workers poll")
    from cairn.execution.worker import LedgerWorker
    from cairn.store.engine import open_store

    await _agent(app, "default", "woken")
    other = App(app.settings, open_store(app.settings.database_url))
    other.executor = EmbeddedBackend(other)
    worker = LedgerWorker(app, concurrency=1, idle_poll_s=60, listen=True)
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                await group.start(worker.run)
                for _ in range(400):  # until its connection has sent LISTEN
                    if _listening(app, worker.listener_name):
                        break
                    await anyio.sleep(0.05)
                fired = run_service.start_fire(other, "default", "woken", {}, kind="manual").run
                done = await app.completions.wait(app, fired)
                await worker.stop(10)
    finally:
        other.close()
    assert done.status == "succeeded"


def _listening(app: App, listener: str) -> bool:
    """Whether the worker's own connection has sent LISTEN (other tests' and sessions'
    listeners on the same server do not count)."""
    from sqlalchemy import text

    from cairn.store.notify import CHANNEL

    with app.store.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE query = :listen AND application_name = :listener"
        )
        params = {"listen": f"LISTEN {CHANNEL}", "listener": listener}
        return bool(conn.execute(text(query), params).scalar())
