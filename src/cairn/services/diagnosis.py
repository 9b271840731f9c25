"""Explain a run, an event or an agent's silence, and scan for trouble (``doctor``).

Every diagnosis is deterministic: it reads the run row, its events and its tool-resolution
trace (or an event's recorded trigger decisions) and names the cause and the fix, citing
the fields it rests on. Nothing is run and nothing is changed. ``doctor`` is the one that
reaches out: it resolves each agent's tool catalog as a run would, to see what would be
skipped *now* (so it is ``async``, like ``agent_catalog``).

Entry points: ``explain_run``, ``explain_event``, ``why_not_fired`` (synchronous, ledger
reads only) and ``doctor`` (async). The rules live beside this module: runs in
``diagnosis_runs`` (``diagnose_run``, a pure function of the row, the events and a
``RunContext``), events and triggers in ``diagnosis_events``, the scan in
``diagnosis_doctor``, what they share in ``diagnosis_rules``. ``docs/diagnosis.md`` lists
every finding code.
"""

from __future__ import annotations

from cairn.domain.agents import Agent
from cairn.domain.diagnosis import DoctorReport, Explanation, Finding
from cairn.services.app import App
from cairn.services.diagnosis_rules import RunContext
from cairn.services.diagnosis_runs import diagnose_run

__all__ = [
    "DoctorReport",
    "Explanation",
    "Finding",
    "RunContext",
    "diagnose_run",
    "doctor",
    "explain_event",
    "explain_run",
    "run_context",
    "why_not_fired",
]


def run_context(app: App, sandbox_id: str, agent_id: str) -> RunContext:
    """The context for a run of ``agent_id`` (the agent may be gone: then ``None``)."""
    from cairn.errors import NotFound
    from cairn.store import agents as agent_store
    from cairn.store import sources as source_store

    with app.store.connect() as conn:
        try:
            agent: Agent | None = agent_store.get_agent_by_id(conn, sandbox_id, agent_id)
        except NotFound:
            agent = None
        sources = source_store.list_sources(conn, sandbox_id)
    return RunContext(agent, sources, app.settings.resolve_timeout_s)


# --- entry points ------------------------------------------------------------------------


def explain_run(app: App, sandbox_id: str, run_id: str) -> Explanation:
    """Why run ``run_id`` did what it did, from its row, events and trace. ``NotFound``
    for an unknown run."""
    from cairn.services.runs import get_run, get_run_events

    run = get_run(app, sandbox_id, run_id)
    events = get_run_events(app, sandbox_id, run_id)
    return diagnose_run(run, events, run_context(app, sandbox_id, run.agent_id))


def explain_event(app: App, sandbox_id: str, event_id: str) -> Explanation:
    """Why event ``event_id`` fired what it fired (or nothing), from the recorded trigger
    decisions, or why its delivery was refused."""
    from cairn.services.diagnosis_events import explain_event as explain

    return explain(app, sandbox_id, event_id)


def why_not_fired(app: App, sandbox_id: str, slug: str) -> Explanation:
    """Why agent ``slug`` did (not) fire on the most recent event of any source bound to it,
    or that it has no trigger at all."""
    from cairn.services.diagnosis_events import why_not_fired as explain

    return explain(app, sandbox_id, slug)


async def doctor(
    app: App, sandbox_id: str, slug: str | None = None, quiet_days: float = 7
) -> DoctorReport:
    """Scan every agent (or one) without running anything: stale allowlist entries against
    today's catalog, sources that would be skipped now, paused and quiet triggers, agents
    whose recent runs mostly fail or use no tools, runaway usage."""
    from cairn.services.diagnosis_doctor import scan

    return await scan(app, sandbox_id, slug=slug, quiet_days=quiet_days)
