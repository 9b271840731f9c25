"""Explain a run, an event or an agent's silence, and scan for trouble (``doctor``).

Every diagnosis is deterministic: it reads the run row, its events and its tool-resolution
trace (or an event's recorded trigger decisions) and names the cause and the fix, citing
the fields it rests on. Nothing is run and nothing is changed. ``doctor`` is the one that
reaches out: it resolves each agent's tool catalog as a run would, to see what would be
skipped *now* (so it is ``async``, like ``agent_catalog``).

Entry points: ``explain_run``, ``explain_event``, ``why_not_fired`` (synchronous, ledger
reads only) and ``doctor`` (async). The rules live beside this module: runs in
``diagnosis.runs`` (``diagnose_run``, a pure function of the row, the events and a
``RunContext``), events and triggers in ``diagnosis.events``, the scan in
``diagnosis.scan``, what they share in ``diagnosis.rules``. ``docs/diagnosis.md`` lists
every finding code.
"""

from __future__ import annotations

from cairn.domain.agents import Agent
from cairn.domain.diagnosis import DoctorReport, Explanation, Finding
from cairn.domain.runs import Run
from cairn.services.app import App
from cairn.services.diagnosis.events import explain_event, why_not_fired
from cairn.services.diagnosis.rules import RunContext
from cairn.services.diagnosis.runs import diagnose_run
from cairn.services.diagnosis.scan import doctor

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
    explanation = diagnose_run(run, events, run_context(app, sandbox_id, run.agent_id))
    over = _over_threshold(app, sandbox_id, run)
    if over is None:
        return explanation
    findings = [*explanation.findings, over]
    return Explanation(explanation.subject, explanation.summary, findings, explanation.kind)


def _over_threshold(app: App, sandbox_id: str, run: Run) -> Finding | None:
    """When the run's agent is over its cost-watch threshold now: the run's own tokens and
    cost beside the agent's hour, so an explanation of a runaway's run says what it costs."""
    from cairn.services.usage import format_micros, runaway_agents

    flags = [f for f in runaway_agents(app, sandbox_id) if f.slug == run.agent_slug]
    if not flags:
        return None
    tokens = run.usage.tokens_in + run.usage.tokens_out
    cost = f", est. cost {format_micros(run.cost_micros)}" if run.cost_micros is not None else ""
    pause = (
        "its threshold pauses its triggers (the server does so within a minute)"
        if flags[0].pause_triggers
        else f'to stop it, pause its triggers (`cairn ask "stop {run.agent_slug}"`)'
    )
    return Finding(
        "runaway_usage",
        "warning",
        f"This run used {tokens:,} tokens ({run.usage.tokens_in:,} in, "
        f"{run.usage.tokens_out:,} out){cost}, and {'; and '.join(f.message for f in flags)}.",
        f"See where it goes: `cairn usage --agent {run.agent_slug} --by hour`; {pause}.",
        {
            "tokens_in": run.usage.tokens_in,
            "tokens_out": run.usage.tokens_out,
            "cost_micros": run.cost_micros,
            "flags": [f.to_dict() for f in flags],
        },
    )
