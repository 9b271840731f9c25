"""What went wrong in a window, grouped by agent: the Concierge's answer to "did anything
break in the last hour?" and "what's wrong?".

It reads the ledger only (no catalog is resolved, nothing is run): the window's runs
(failed, with tool errors, or that did nothing while the agent has tools), the events its
triggers did not fire on (filtered out, paused, rate-limited, agent archived, server busy),
agents over their cost-watch threshold now, and the pauses cost-watch made in the window.
Each line cites the run, event or trigger ids it rests on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cairn.domain.runs import NO_OP_OUTCOMES, Run
from cairn.domain.usage import Enforcement, RunawayFlag
from cairn.services.app import App
from cairn.text import plural, tally, unique

MAX_RUNS = 1000
MAX_EVENTS = 1000
NOT_FIRED = ("filtered_out", "paused", "rate_limited", "agent_archived", "busy")


@dataclass(slots=True)
class AgentProblems:
    """One agent's trouble in the window."""

    slug: str
    runs: int = 0
    failed: list[Run] = field(default_factory=list)
    tool_errors: list[Run] = field(default_factory=list)
    no_ops: list[Run] = field(default_factory=list)
    not_fired: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(trigger id, decision) -> event ids."""
    details: dict[tuple[str, str], str] = field(default_factory=dict)
    runaway: list[RunawayFlag] = field(default_factory=list)
    enforced: list[Enforcement] = field(default_factory=list)

    @property
    def any(self) -> bool:
        """Whether anything went wrong."""
        return bool(
            self.failed
            or self.tool_errors
            or self.no_ops
            or self.not_fired
            or self.runaway
            or self.enforced
        )


@dataclass(slots=True)
class Problems:
    """The window's trouble by agent, and how much was read."""

    agents: dict[str, AgentProblems]
    runs_checked: int
    events_checked: int
    truncated: bool = False

    def lines(self, window: str) -> list[str]:
        """The answer, one line per agent in trouble (worst first)."""
        troubled = sorted(
            (a for a in self.agents.values() if a.any),
            key=lambda a: (-len(a.failed) - len(a.tool_errors) - len(a.runaway), a.slug),
        )
        read = (
            f"{plural(self.runs_checked, 'run')} and {plural(self.events_checked, 'event')} "
            "checked" + (", the newest only" if self.truncated else "")
        )
        if not troubled:
            return [f"Nothing broke {window} ({read}): no failed run, no tool error, no run "
                    "that did nothing, no event left unfired, no runaway."]  # fmt: skip
        lines = [f"What went wrong {window}, by agent ({read}):"]
        for agent in troubled:
            lines.append(f"- {agent.slug}: " + "; ".join(_parts(agent)) + ".")
        fine = sorted(a.slug for a in self.agents.values() if not a.any and a.runs)
        if fine:
            lines.append(f"Fine: {', '.join(fine)}.")
        first = next((a for a in troubled if a.failed or a.tool_errors or a.no_ops), None)
        if first is not None:
            run = (first.failed or first.tool_errors or first.no_ops)[0]
            lines.append(f"Ask about one (e.g. `cairn runs explain {run.run_id}`) for the fix.")
        return lines

    def run_ids(self) -> list[str]:
        """Every run id the answer cites, in order."""
        return unique(
            run.run_id
            for agent in self.agents.values()
            for run in [*agent.failed, *agent.tool_errors, *agent.no_ops]
        )

    def commands(self) -> list[str]:
        """The commands that explain the first cited run and event of each kind."""
        commands: list[str] = []
        for agent in self.agents.values():
            for run in (agent.failed or agent.tool_errors or agent.no_ops)[:1]:
                commands.append(f"cairn runs explain {run.run_id}")
            for events in list(agent.not_fired.values())[:1]:
                commands.append(f"cairn events explain {events[0]}")
            for record in agent.enforced[:1]:
                commands += [f"cairn agent trigger resume {t}" for t in record.trigger_ids]
        return commands


def _parts(agent: AgentProblems) -> list[str]:
    parts: list[str] = []
    if agent.failed:
        kinds = Counter(r.error_type or "unknown" for r in agent.failed)
        parts.append(
            f"{plural(len(agent.failed), 'failed run')} ({tally(kinds)}: {_ids(agent.failed)})"
        )
    if agent.tool_errors:
        parts.append(
            f"{plural(len(agent.tool_errors), 'run')} with tool errors ({_ids(agent.tool_errors)})"
        )
    if agent.no_ops:
        kinds = Counter(str(r.outcome) for r in agent.no_ops)
        parts.append(
            f"{plural(len(agent.no_ops), 'run')} that called no tool though it has tools "
            f"({tally(kinds)}: {_ids(agent.no_ops)})"
        )
    for (trigger_id, decision), events in agent.not_fired.items():
        detail = agent.details.get((trigger_id, decision))
        parts.append(
            f"{plural(len(events), 'event')} {decision.replace('_', ' ')} by trigger "
            f"{trigger_id}"
            + (f" ({detail})" if detail else "")
            + f": {', '.join(events[:3])}"
            + (f" and {len(events) - 3} more" if len(events) > 3 else "")
        )
    for flag in agent.runaway:
        parts.append(flag.message)
    for record in agent.enforced:
        parts.append(
            f"cost-watch paused its triggers {', '.join(record.trigger_ids)} at "
            f"{record.enforced_at:%H:%M} UTC (resume: "
            + "; ".join(f"`cairn agent trigger resume {t}`" for t in record.trigger_ids)
            + ")"
        )
    return parts


def problems_in_window(
    app: App,
    sandbox_id: str,
    *,
    since_s: float,
    until: datetime | None = None,
    agent: str | None = None,
) -> Problems:
    """The trouble in the last ``since_s`` seconds (up to ``until``, default now), of one
    agent if given."""
    from cairn.ids import id_floor
    from cairn.services.agents import list_agents
    from cairn.services.runs import RunQuery, list_runs
    from cairn.services.triggers import list_triggers
    from cairn.services.usage import list_enforcements, runaway_agents
    from cairn.store import events as event_store

    now = datetime.now(UTC)
    start = now - timedelta(seconds=since_s)
    end = until.astimezone(UTC) if until is not None else None
    agents = {a.slug: a for a in list_agents(app, sandbox_id) if agent in (None, a.slug)}
    found = {slug: AgentProblems(slug) for slug in agents}
    runs = list_runs(
        app,
        sandbox_id,
        RunQuery(
            agent_slug=agent,
            since_s=since_s,
            before=id_floor("run", end.timestamp()) if end else None,
            limit=MAX_RUNS,
        ),
    )
    for run in runs:
        entry = found.setdefault(run.agent_slug, AgentProblems(run.agent_slug))
        entry.runs += 1
        configured = agents.get(run.agent_slug)
        if run.status == "failed":
            entry.failed.append(run)
        elif run.outcome == "tool_errors":
            entry.tool_errors.append(run)
        elif (
            run.status == "succeeded"
            and run.outcome in NO_OP_OUTCOMES
            and configured is not None
            and configured.tool_sources != []  # tool-less by choice answers in text
        ):
            entry.no_ops.append(run)
    triggers = {t.trigger_id: t for t in list_triggers(app, sandbox_id)}
    with app.store.connect() as conn:
        events = event_store.list_events(conn, sandbox_id, limit=MAX_EVENTS)
    checked = 0
    for event in events:
        received = event.received_at
        if received is None or received < start:
            break  # newest first: the rest are older
        if end is not None and received >= end:
            continue
        checked += 1
        for decision in event.decisions or []:
            trigger = triggers.get(decision.trigger_id)
            slug = trigger.agent_slug if trigger is not None else None
            if decision.decision not in NOT_FIRED or slug not in found:
                continue
            at = (decision.trigger_id, decision.decision)
            found[slug].not_fired.setdefault(at, []).append(event.event_id)
            if at not in found[slug].details and decision.detail:
                found[slug].details[at] = _detail(decision.decision, decision.detail)
    if end is None:
        for flag in runaway_agents(app, sandbox_id):
            if flag.slug in found:
                found[flag.slug].runaway.append(flag)
    for record in list_enforcements(app, sandbox_id, agent, limit=50):
        inside = record.enforced_at >= start and (end is None or record.enforced_at < end)
        if inside and record.agent_slug in found:
            found[record.agent_slug].enforced.append(record)
    return Problems(found, len(runs), checked, len(runs) >= MAX_RUNS)


def _detail(decision: str, detail: dict[str, object]) -> str:
    if decision == "filtered_out":
        if detail.get("filter") == "event_type_filter":
            return f"event_type_filter {detail.get('expected')!r}, got {detail.get('actual')!r}"
        got = "no such field" if detail.get("missing") else f"got {detail.get('actual')!r}"
        return f"filter_config {detail.get('field')!r} wants {detail.get('expected')!r}, {got}"
    if decision == "rate_limited":
        return "its hourly cap was reached"
    return ""


def _ids(runs: list[Run], limit: int = 3) -> str:
    shown = ", ".join(r.run_id for r in runs[:limit])
    return shown + (f" and {len(runs) - limit} more" if len(runs) > limit else "")
