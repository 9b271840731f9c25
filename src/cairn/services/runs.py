"""Run operations: fire an agent, read the ledger, keep it bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.runs import LIVE_STATUSES, Run, RunEvent, RunFilter, RunKind, RunStatus
from cairn.services.app import App

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


async def fire_agent(
    app: App,
    sandbox_id: str,
    slug: str,
    event_payload: Any,
    *,
    kind: RunKind = "test",
    trigger_id: str | None = None,
) -> Run:
    """Fire an agent now and wait for its run to finish (a test fire, a manual fire)."""
    from cairn.services.sources import available_sources
    from cairn.store import agents as agent_store

    with app.store.connect() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
    return await app.runner.fire(
        agent,
        event_payload,
        available_sources(app, sandbox_id),
        kind=kind,
        trigger_id=trigger_id,
    )


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
    found = reader.list_runs(where)
    if any(run.status in LIVE_STATUSES for run in found):
        found = _after_reaping(app, sandbox_id, found)
    return found


def _after_reaping(app: App, sandbox_id: str, found: list[Run]) -> list[Run]:
    """A live run whose heartbeat stopped is shown as what it is: failed, worker lost."""
    from cairn.store import runs as run_store

    cutoff = datetime.now(UTC) - timedelta(seconds=app.settings.stale_run_after_s)
    stale = [
        run
        for run in found
        if run.status in LIVE_STATUSES and run.heartbeat_at and run.heartbeat_at < cutoff
    ]
    if not stale:
        return found
    with app.store.begin() as conn:
        run_store.reap_stale_runs(conn, stale_after_s=app.settings.stale_run_after_s)
        fresh = {run.run_id: run_store.get_run(conn, sandbox_id, run.run_id) for run in stale}
    return [fresh.get(run.run_id, run) for run in found]


def get_run(app: App, sandbox_id: str, run_id: str) -> Run:
    """One run with its trace."""
    from cairn.store import runs as run_store

    with app.store.connect() as conn:
        run = run_store.get_run(conn, sandbox_id, run_id)
    if run.status in LIVE_STATUSES:
        run = _after_reaping(app, sandbox_id, [run])[0]
    return run


def get_run_events(app: App, sandbox_id: str, run_id: str, after_seq: int = 0) -> list[RunEvent]:
    """A run's events in order (the run must belong to the sandbox)."""
    from cairn.store import runs as run_store

    with app.store.connect() as conn:
        run_store.get_run(conn, sandbox_id, run_id)
        return run_store.list_events(conn, run_id, after_seq=after_seq)


def prune_runs(app: App, older_than_s: float | None = None) -> int:
    """Delete finished runs older than ``older_than_s`` (default: the retention setting)."""
    from cairn.store import runs as run_store

    age = older_than_s if older_than_s is not None else app.settings.retention_days * 86400.0
    with app.store.begin() as conn:
        return run_store.prune_runs(conn, older_than=datetime.now(UTC) - timedelta(seconds=age))
