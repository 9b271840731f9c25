"""Run operations: fire an agent, read the ledger, keep it bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from cairn.domain.runs import LIVE_STATUSES, Run, RunEvent, RunFilter, RunKind, RunStatus
from cairn.errors import UsageError
from cairn.services.app import App

if TYPE_CHECKING:
    from cairn.domain.agents import Agent
    from cairn.domain.sources import DataSource
    from cairn.runner.engine import FireOptions

# Store modules are imported inside the functions: ``list_runs`` on the embedded ledger
# must not import SQLAlchemy (see ``cairn.store.sqlite_reader``).


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A listing as a person asks for it: by slug, with a relative window."""

    agent_slug: str | None = None
    status: RunStatus | None = None
    trigger_id: str | None = None
    kind: RunKind | None = None
    before: str | None = None
    since_s: float | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class AcceptedFire:
    """A fire whose row is written: ``queued`` for the workers, or (``queued`` false, no
    workers in this process) accepted ``running`` for the caller to execute at once."""

    run: Run
    agent: Agent
    available: list[DataSource]
    queued: bool


async def fire_agent(
    app: App,
    sandbox_id: str,
    slug: str,
    event_payload: Any,
    *,
    kind: RunKind = "test",
    trigger_id: str | None = None,
    replay_of: str | None = None,
    traceparent: str | None = None,
) -> Run:
    """Fire an agent and wait for its run to finish (a test fire, a manual fire). In the
    server it is queued for the workers like every other fire."""
    fire = start_fire(
        app,
        sandbox_id,
        slug,
        event_payload,
        kind=kind,
        trigger_id=trigger_id,
        replay_of=replay_of,
        traceparent=traceparent,
    )
    if not fire.queued:
        return await app.runner.execute(fire.run, fire.agent, fire.available)
    return await app.completions.wait(app, fire.run)


async def start_run(
    app: App, sandbox_id: str, slug: str, event_payload: Any, **options: Unpack[FireOptions]
) -> Run:
    """Accept a fire (``start_fire``) and return its run without waiting for it; with no
    workers in this process (the CLI in-process) it executes here before this returns."""
    fire = start_fire(app, sandbox_id, slug, event_payload, **options)
    if not fire.queued:
        await app.runner.execute(fire.run, fire.agent, fire.available)
    return fire.run


def start_fire(
    app: App, sandbox_id: str, slug: str, event_payload: Any, **options: Unpack[FireOptions]
) -> AcceptedFire:
    """Accept a fire. With workers (``app.executor``): past the backlog limit ``Busy``
    before anything is written, else the row is committed ``queued`` and the backend told,
    in one transaction. Without (the CLI in-process): accepted ``running``, for the caller
    to execute. ``traceparent``: the caller's trace context (already validated), kept on
    the run."""
    from cairn.store import runs as run_store

    executor = app.executor
    if executor is None:
        agent, available = _agent_and_sources(app, sandbox_id, slug)
        run = app.runner.accept(agent, event_payload, **options)
        return AcceptedFire(run, agent, available, queued=False)
    app.gate.check()
    agent = _agent(app, sandbox_id, slug)
    run = app.runner.new_run(agent, event_payload, start_now=False, **options)
    with app.store.begin() as conn:
        run_store.create_run(conn, run)
        executor.enqueue(conn, [run])
    executor.accepted([run])
    if app.bus is not None:
        app.bus.summary(run)
    return AcceptedFire(run, agent, [], queued=True)


def _agent(app: App, sandbox_id: str, slug: str) -> Agent:
    from cairn.store import agents as agent_store

    with app.store.connect() as conn:
        return agent_store.get_agent(conn, sandbox_id, slug)


def _agent_and_sources(app: App, sandbox_id: str, slug: str) -> tuple[Agent, list[DataSource]]:
    from cairn.services.sources import available_sources
    from cairn.store import agents as agent_store

    with app.store.connect() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        return agent, available_sources(app, sandbox_id, conn)


async def replay_run(app: App, sandbox_id: str, run_id: str, event_payload: Any = None) -> Run:
    """Fire the run's agent again with the run's payload (or an edited one) as a test run
    that points back at the original, so a fix is checked against the exact failing event."""
    original = get_run(app, sandbox_id, run_id)
    payload = original.event_payload if event_payload is None else event_payload
    from cairn.store import agents as agent_store

    with app.store.connect() as conn:
        slug = agent_store.get_agent_by_id(conn, sandbox_id, original.agent_id).slug
    return await fire_agent(app, sandbox_id, slug, payload, kind="test", replay_of=run_id)


def cancel_run(app: App, sandbox_id: str, run_id: str) -> Run:
    """Cancel a live run: at once if this process runs it, else at the running process's
    next heartbeat; a queued run ends before it starts. A finished run is a ``Conflict``."""
    from cairn.errors import Conflict
    from cairn.store import runs as run_store

    run = get_run(app, sandbox_id, run_id)
    if run.status not in LIVE_STATUSES:
        raise Conflict(f"run {run_id} already finished ({run.status}); nothing to cancel")
    if app.runner.cancel(run_id):
        return run
    with app.store.begin() as conn:
        if not run_store.cancel_queued_run(
            conn, run_id, datetime.now(UTC), "cancelled before it started"
        ):
            run_store.request_cancel(conn, run_id)
        return run_store.get_run(conn, sandbox_id, run_id)


def list_runs(app: App, sandbox_id: str, query: RunQuery) -> list[Run]:
    """Runs newest first; ``query.before`` continues from the previous page's last run_id."""
    reader = app.reader
    agent_id = None
    if query.agent_slug is not None:
        agent_id = reader.agent_id(sandbox_id, query.agent_slug)
    where = RunFilter(
        sandbox_id=sandbox_id,
        agent_id=agent_id,
        status=query.status,
        trigger_id=query.trigger_id,
        kind=query.kind,
        before=query.before,
        since=time.time() - query.since_s if query.since_s is not None else None,
        limit=query.limit,
    )
    return reader.list_runs(where)


def get_run(app: App, sandbox_id: str, run_id: str) -> Run:
    """One run with its trace. Reading never ends a run: runs whose worker died are ended
    by the workers' reaper once their lease expires (docs/ledger.md)."""
    from cairn.store import runs as run_store

    with app.store.connect() as conn:
        return run_store.get_run(conn, sandbox_id, run_id)


def get_run_events(app: App, sandbox_id: str, run_id: str, after_seq: int = 0) -> list[RunEvent]:
    """A run's events in order (the run must belong to the sandbox)."""
    from cairn.store import runs as run_store

    with app.store.connect() as conn:
        run_store.get_run(conn, sandbox_id, run_id)
        return run_store.list_events(conn, run_id, after_seq=after_seq)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What retention deleted (or, on a dry run, would delete) in one sandbox."""

    runs: int
    events: int
    older_than_s: float
    dry_run: bool


MIN_PRUNE_AGE_S = 3600.0
"""``--older-than`` below this is refused: a typo like ``0s`` would empty the ledger."""


def prune_runs(
    app: App, sandbox_id: str, older_than_s: float | None = None, *, dry_run: bool = False
) -> Pruned:
    """Retention for one sandbox: finished runs (with their run events) and received events
    (with their trigger decisions) older than ``older_than_s`` (default: the retention
    setting). Live runs are never pruned."""
    from cairn.store import events as event_store
    from cairn.store import runs as run_store
    from cairn.store.sandboxes import require_sandbox

    age = older_than_s if older_than_s is not None else app.settings.retention_days * 86400.0
    if age < MIN_PRUNE_AGE_S:
        raise UsageError(f"--older-than must be at least 1h (got {age:g} s)")
    bound = datetime.now(UTC) - timedelta(seconds=age)
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        runs = run_store.prune_runs(conn, older_than=bound, sandbox_id=sandbox_id, dry_run=dry_run)
        events = event_store.prune_events(conn, bound, sandbox_id, dry_run=dry_run)
    return Pruned(runs, events, age, dry_run)
