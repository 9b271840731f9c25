"""``doctor``: a proactive scan of a sandbox (or one agent) that runs nothing.

Its finding codes, each with a ``subject``, and why run rules read only runs of the
agent's current version are in ``docs/diagnosis.md`` (Doctor).

Catalogs are resolved once per distinct ``tool_sources`` selection (with no allowlist), and
each agent's allowlist is applied to that, so a sandbox of many agents on the same sources
connects to each server once.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.agents import Agent
from cairn.domain.diagnosis import DoctorReport, Finding, by_severity
from cairn.domain.runs import FINAL_STATUSES, NO_OP_OUTCOMES, Run, RunFilter
from cairn.domain.sources import DataSource
from cairn.domain.trace import SourceSkipped, ToolResolutionTrace
from cairn.domain.triggers import Event, Trigger, TriggerDecision
from cairn.services.app import App
from cairn.services.diagnosis.rules import RunContext, skip_finding, stale_allowlist_finding
from cairn.text import capitalised, iso, names, tally

RECENT_RUNS = 20
RECENT_DECISIONS = 20
MIN_RUNS = 3
MAX_QUIET_DAYS = 3650
AGENT_SPECIFIC_SKIPS = ("disabled", "not_found")


@dataclass(slots=True)
class _Ledger:
    """What the scan reads from the store, in one connection."""

    agents: list[Agent]
    triggers: list[Trigger]
    sources: list[DataSource]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    last_events: dict[str, Event] = field(default_factory=dict)
    decisions: dict[str, list[TriggerDecision]] = field(default_factory=dict)


def _read(app: App, sandbox_id: str, slug: str | None) -> _Ledger:
    from cairn.store import agents as agent_store
    from cairn.store import events as event_store
    from cairn.store import runs as run_store
    from cairn.store import sources as source_store
    from cairn.store import triggers as trigger_store

    with app.store.connect() as conn:
        if slug is not None:
            agents = [agent_store.get_agent(conn, sandbox_id, slug)]
            triggers = trigger_store.list_triggers(conn, sandbox_id, agent_id=agents[0].agent_id)
        else:
            agents = agent_store.list_agents(conn, sandbox_id)
            triggers = trigger_store.list_triggers(conn, sandbox_id)
        ledger = _Ledger(agents, triggers, source_store.list_sources(conn, sandbox_id))
        for agent in agents:
            if agent.status == "active":
                where = RunFilter(sandbox_id=sandbox_id, agent_id=agent.agent_id, limit=RECENT_RUNS)
                ledger.runs[agent.agent_id] = run_store.list_runs(conn, where)
        for trigger in triggers:
            if trigger.status == "active":
                ledger.decisions[trigger.trigger_id] = event_store.recent_decisions(
                    conn, trigger.trigger_id, limit=RECENT_DECISIONS
                )
        for source_id in dict.fromkeys(t.data_source_id for t in triggers):
            found = event_store.list_events(conn, sandbox_id, source_id=source_id, limit=1)
            if found:
                ledger.last_events[source_id] = found[0]
    return ledger


async def doctor(
    app: App, sandbox_id: str, slug: str | None = None, quiet_days: float = 7
) -> DoctorReport:
    """Scan every agent (or one) without running anything: stale allowlist entries against
    today's catalog, sources that would be skipped now, paused and quiet triggers, agents
    whose recent runs mostly fail or use no tools, runaway usage."""
    from cairn.errors import UsageError

    if not 0 <= quiet_days <= MAX_QUIET_DAYS:
        raise UsageError(f"quiet_days {quiet_days:g} is out of range: use 0 to {MAX_QUIET_DAYS}")
    ledger = _read(app, sandbox_id, slug)
    context = RunContext(None, ledger.sources, app.settings.resolve_timeout_s)
    active = [a for a in ledger.agents if a.status == "active"]
    findings: list[Finding] = []
    findings += await _catalogs(app, sandbox_id, active, context)
    findings += _triggers(ledger, quiet_days)
    for agent in active:
        findings += _recent_runs(agent, ledger.runs.get(agent.agent_id, []))
    findings += _runaway(app, sandbox_id, slug)
    pauses = _cost_watch_pauses(app, sandbox_id, ledger)
    by_cost_watch = {t for f in pauses for t in f.evidence.get("trigger_ids", [])}
    findings = [
        f for f in findings if not (f.code == "trigger_paused" and f.subject in by_cost_watch)
    ]
    findings += pauses
    ordered = by_severity(findings)
    checked = {
        "agents": len(active),
        "triggers": len(ledger.triggers),
        "sources": len(ledger.sources) + 1,  # the builtin source
        "runs": sum(len(runs) for runs in ledger.runs.values()),
    }
    return DoctorReport(ordered, not any(f.needs_fixing for f in ordered), checked)


# --- catalogs -----------------------------------------------------------------------------


async def _catalogs(
    app: App, sandbox_id: str, agents: list[Agent], context: RunContext
) -> list[Finding]:
    from cairn.domain.sources import uses_cairn_tools
    from cairn.services.concierge.source import ensure_cairn_source
    from cairn.services.sources import available_sources
    from cairn.tools.resolution import resolve_tools

    if any(uses_cairn_tools(a.tool_sources) for a in agents):
        ensure_cairn_source(app, sandbox_id)  # a Concierge before its first question
    groups: dict[str, list[Agent]] = {}
    for agent in agents:
        if agent.tool_sources == []:
            continue  # tool-less by choice
        groups.setdefault(json.dumps(agent.tool_sources), []).append(agent)
    if not groups:
        return []
    available = available_sources(app, sandbox_id)
    findings: list[Finding] = []
    skipped: dict[tuple[str, str], tuple[SourceSkipped, list[str]]] = {}
    for members in groups.values():
        async with resolve_tools(
            selection=members[0].tool_sources,
            allowlist=[],
            available=available,
            context=app.tool_context,
            pool=app.tool_pool,
        ) as tools:
            trace = tools.trace
        real = list(trace.tool_names_advertised)
        for skip in trace.sources_skipped:
            if skip.reason in AGENT_SPECIFIC_SKIPS:
                for agent in members:
                    own = RunContext(agent, context.sources, context.resolve_timeout_s)
                    finding = skip_finding(skip, own, agent.slug)
                    findings.append(dataclasses.replace(finding, subject=agent.slug))
                continue
            key = (skip.source_id, skip.reason)
            entry = skipped.setdefault(key, (skip, []))
            entry[1].extend(a.slug for a in members)
        for agent in members:
            findings += _allowlist(agent, real, trace, available)
    for skip, slugs in skipped.values():
        base = skip_finding(skip, context, slugs[0])
        findings.append(
            dataclasses.replace(
                base,
                cause=base.cause.rstrip(".") + f"; agents affected: {names(sorted(set(slugs)))}.",
                evidence=base.evidence | {"agents": sorted(set(slugs))},
                subject=skip.label,
            )
        )
    return findings


def _allowlist(
    agent: Agent, real: list[str], trace: ToolResolutionTrace, available: list[DataSource]
) -> list[Finding]:
    from cairn.tools.resolution import apply_allowlist

    advertised, filtered, missing = apply_allowlist(agent.tool_allowlist, real)
    # Entries in the namespace of a skipped source are that source's, not stale.
    skipped = {k.source_id for k in trace.sources_skipped}
    hidden = tuple(
        f"{s.config['namespace']}_"
        for s in available
        if s.config.get("namespace") and s.source_id in skipped
    )
    stale = [entry for entry in missing if not entry.entry.startswith(hidden)]
    findings: list[Finding] = []
    if stale:
        base = stale_allowlist_finding(
            agent.slug, stale, agent.tool_allowlist, advertised=advertised
        )
        findings.append(
            dataclasses.replace(
                base,
                cause=base.cause.replace("was offered", "would be offered"),
                evidence=base.evidence | {"checked_against": "today's catalog"},
                subject=agent.slug,
            )
        )
    if not advertised and not stale and not trace.sources_skipped:
        cause = (
            f"The allowlist lets none of the {len(filtered)} real tools through"
            if filtered
            else "Its sources give no tools"
        )
        findings.append(
            Finding(
                "no_tools_available",
                "error",
                f"{cause}, so {agent.slug} would be offered no tools.",
                f"See `cairn agent tools {agent.slug}` and fix its tool_sources or allowlist.",
                {
                    "tool_names_advertised": [],
                    "allowlist_filtered_out": filtered,
                    "tool_allowlist": agent.tool_allowlist,
                },
                agent.slug,
            )
        )
    return findings


# --- triggers --------------------------------------------------------------------------------


def _triggers(ledger: _Ledger, quiet_days: float) -> list[Finding]:
    agents = {a.agent_id: a for a in ledger.agents}
    sources = {s.source_id: s for s in ledger.sources}
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=quiet_days)
    findings: list[Finding] = []
    for trigger in ledger.triggers:
        agent = agents.get(trigger.agent_id)
        slug = agent.slug if agent else trigger.agent_slug or trigger.agent_id
        source = sources.get(trigger.data_source_id)
        label = source.label if source else trigger.data_source_id
        evidence: dict[str, Any] = {
            "trigger_id": trigger.trigger_id,
            "status": trigger.status,
            "agent": slug,
            "source": label,
            "fire_count": trigger.fire_count,
            "last_fired_at": iso(trigger.last_fired_at),
        }
        if trigger.status == "paused":
            findings.append(
                Finding(
                    "trigger_paused",
                    "warning",
                    f"Trigger {trigger.trigger_id} ({slug} on {label}) is paused: events on "
                    "its source are recorded but never fire the agent.",
                    f"If that is no longer wanted: `cairn agent trigger resume "
                    f"{trigger.trigger_id}`.",
                    evidence,
                    trigger.trigger_id,
                )
            )
            continue
        if agent is not None and agent.status == "archived":
            findings.append(
                Finding(
                    "trigger_agent_archived",
                    "warning",
                    f"Trigger {trigger.trigger_id} is active but its agent {slug} is archived, "
                    "so it never fires.",
                    f"`cairn agent unarchive {slug}`, or pause the trigger: "
                    f"`cairn agent trigger pause {trigger.trigger_id}`.",
                    evidence,
                    trigger.trigger_id,
                )
            )
            continue
        refused = _filters_everything(trigger, ledger.decisions.get(trigger.trigger_id, []))
        if refused is not None:
            findings.append(_filters_all(trigger, slug, label, refused, evidence))
            continue
        last = trigger.last_fired_at or trigger.created_at
        if last is not None and _aware(last) <= cutoff:
            findings.append(_quiet(trigger, slug, label, quiet_days, evidence, ledger))
    return findings


def _filters_everything(
    trigger: Trigger, decisions: list[TriggerDecision]
) -> list[TriggerDecision] | None:
    """The decisions, when every recent one is ``filtered_out`` and the trigger has not
    fired since the oldest of them; else ``None``."""
    if not decisions or any(d.decision != "filtered_out" for d in decisions):
        return None
    oldest = decisions[-1].decided_at
    if trigger.last_fired_at is not None and (
        oldest is None or _aware(trigger.last_fired_at) >= _aware(oldest)
    ):
        return None
    return decisions


def _filters_all(
    trigger: Trigger,
    slug: str,
    label: str,
    decisions: list[TriggerDecision],
    evidence: dict[str, Any],
) -> Finding:
    latest = decisions[0]
    detail = latest.detail or {}
    if detail.get("filter") == "event_type_filter":
        why = (
            f"its event_type_filter {detail.get('expected')!r} did not match the event type "
            f"{detail.get('actual')!r}"
        )
    elif detail.get("missing"):
        why = (
            f"its filter_config wants {detail.get('field')!r} = {detail.get('expected')!r}, "
            "and the payload has no such field"
        )
    else:
        why = (
            f"its filter_config wants {detail.get('field')!r} = {detail.get('expected')!r}, "
            f"and the payload had {detail.get('actual')!r}"
        )
    return Finding(
        "trigger_filters_all",
        "warning",
        f"Trigger {trigger.trigger_id} ({slug} on {label}) filtered out all "
        f"{len(decisions)} of the events it received lately and fired none: on the newest "
        f"({latest.event_id}) {why}.",
        f"`cairn events explain {latest.event_id}` shows the event beside the filter; fix "
        f"the filter with `cairn agent trigger update {trigger.trigger_id} …` (or the sender).",
        evidence
        | {
            "decisions_checked": len(decisions),
            "filtered_out": len(decisions),
            "latest_decision": latest.to_dict(),
        },
        trigger.trigger_id,
    )


def _quiet(
    trigger: Trigger,
    slug: str,
    label: str,
    quiet_days: float,
    evidence: dict[str, Any],
    ledger: _Ledger,
) -> Finding:
    since = (
        f"since {trigger.last_fired_at.isoformat(timespec='seconds')}"
        if trigger.last_fired_at
        else "since it was created"
    )
    event = ledger.last_events.get(trigger.data_source_id)
    evidence = evidence | {"quiet_days": quiet_days, "created_at": iso(trigger.created_at)}
    if event is None:
        detail = f"; no event has reached {label!r} at all"
        fix = f"Check the sender of {label!r} is configured and sending"
    else:
        decision = next(
            (d for d in event.decisions or [] if d.trigger_id == trigger.trigger_id), None
        )
        evidence["last_event"] = {
            "event_id": event.event_id,
            "received_at": iso(event.received_at),
            "status": event.status,
            "decision": decision.to_dict() if decision else None,
        }
        what = (
            f"it was {decision.decision.replace('_', ' ')}"
            if decision
            else (
                "it was refused" if event.status == "rejected" else "the trigger did not decide it"
            )
        )
        detail = f"; the last event on {label!r} ({event.event_id}): {what}"
        fix = f"`cairn events explain {event.event_id}` says why"
    return Finding(
        "trigger_quiet",
        "warning",
        f"Trigger {trigger.trigger_id} ({slug} on {label}) has not fired in "
        f"{quiet_days:g} days ({since}){detail}.",
        f"{fix}; `cairn agent why-not-fired {slug}` explains the agent's last event.",
        evidence,
        trigger.trigger_id,
    )


# --- recent runs -------------------------------------------------------------------------------


def _recent_runs(agent: Agent, runs: list[Run]) -> list[Finding]:
    # Runs of an older configuration are history: a change since may have fixed them.
    finished = [r for r in runs if r.status in FINAL_STATUSES and r.agent_version == agent.version]
    if not finished:
        return []
    if len(finished) < MIN_RUNS:
        return _latest_failed(agent, finished)
    findings: list[Finding] = []
    failed = [r for r in finished if r.status == "failed"]
    errored = [r for r in finished if r.outcome == "tool_errors"]
    if errored and len(errored) * 2 >= len(finished):
        findings.append(_tool_errors(agent, finished, errored))
    if len(failed) * 2 <= len(finished) and finished[0].status == "failed":
        findings += _latest_failed(agent, finished)
    if len(failed) * 2 > len(finished):
        kinds = Counter(r.error_type or "unknown" for r in failed)
        findings.append(
            Finding(
                "runs_mostly_fail",
                "error",
                f"{len(failed)} of {agent.slug}'s last {len(finished)} finished runs failed "
                f"({tally(kinds)}).",
                f"See why the latest did: `cairn runs explain {failed[0].run_id}`.",
                {
                    "runs_checked": len(finished),
                    "failed": len(failed),
                    "error_types": dict(kinds.most_common()),
                    "failed_run_ids": [r.run_id for r in failed[:5]],
                },
                agent.slug,
            )
        )
    quiet = [r for r in finished if r.status == "succeeded" and r.outcome in NO_OP_OUTCOMES]
    if agent.tool_sources == []:
        quiet = []  # tool-less by choice: answering in text is what it is for
    if quiet and len(quiet) * 2 > len(finished):
        outcomes = Counter(str(r.outcome) for r in quiet)
        findings.append(
            Finding(
                "runs_mostly_no_tools",
                "warning",
                f"{len(quiet)} of {agent.slug}'s last {len(finished)} finished runs called no "
                f"tool ({tally(outcomes)}).",
                f"See why: `cairn runs explain {quiet[0].run_id}`; if the agent is meant to "
                "act, its prompt should say when to call which tool.",
                {
                    "runs_checked": len(finished),
                    "no_tool_runs": len(quiet),
                    "outcomes": dict(outcomes.most_common()),
                    "run_ids": [r.run_id for r in quiet[:5]],
                },
                agent.slug,
            )
        )
    return findings


def _latest_failed(agent: Agent, finished: list[Run]) -> list[Finding]:
    latest = finished[0]  # newest first
    if latest.status != "failed":
        return []
    return [
        Finding(
            "latest_run_failed",
            "error",
            f"{agent.slug}'s latest run {latest.run_id} failed ({latest.error_type or 'unknown'}).",
            f"`cairn runs explain {latest.run_id}` says why and what to change.",
            {
                "run_id": latest.run_id,
                "error_type": latest.error_type,
                "runs_checked": len(finished),
                "agent_version": latest.agent_version,
            },
            agent.slug,
        )
    ]


def _tool_errors(agent: Agent, finished: list[Run], errored: list[Run]) -> Finding:
    kinds: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    for run in errored:
        for call in run.tool_calls:
            if call.error is not None:
                kinds[call.error_kind or "tool_error"] += 1
                tools[call.name] += 1
    return Finding(
        "runs_tool_errors",
        "error",
        f"Tool calls errored in {len(errored)} of {agent.slug}'s last {len(finished)} finished "
        f"runs ({tally(tools, 5)}; kinds: {tally(kinds)}).",
        f"`cairn runs explain {errored[0].run_id}` names the cause and the fix of the latest.",
        {
            "runs_checked": len(finished),
            "runs_with_tool_errors": len(errored),
            "error_kinds": dict(kinds.most_common()),
            "tools": dict(tools.most_common()),
            "run_ids": [r.run_id for r in errored[:5]],
        },
        agent.slug,
    )


# --- usage ---------------------------------------------------------------------------------------


def _runaway(app: App, sandbox_id: str, slug: str | None) -> list[Finding]:
    """Flags from the usage thresholds (``cairn.services.usage``)."""
    from cairn.services.usage import runaway_agents

    findings: list[Finding] = []
    for flag in runaway_agents(app, sandbox_id):
        if slug is not None and flag.slug != slug:
            continue
        enforce = (
            "its threshold pauses its triggers: `cairn serve` does so within a minute "
            "(without a server, `cairn usage enforce`)"
            if flag.pause_triggers
            else f"pause its triggers (`cairn agent trigger list {flag.slug}`, then "
            "`cairn agent trigger pause TRIGGER_ID`)"
        )
        findings.append(
            Finding(
                "runaway_usage",
                "error",
                capitalised(flag.message) + ".",
                f"See where it goes: `cairn usage --agent {flag.slug} --by hour`; to stop it "
                f"firing, {enforce}.",
                flag.to_dict(),
                flag.slug,
            )
        )
    return findings


def _cost_watch_pauses(app: App, sandbox_id: str, ledger: _Ledger) -> list[Finding]:
    """Triggers still paused by a cost-watch enforcement: when, why, how to resume."""
    from cairn.services.usage import list_enforcements

    paused = {t.trigger_id: t for t in ledger.triggers if t.status == "paused"}
    if not paused:
        return []
    slugs = {a.slug for a in ledger.agents}
    findings: list[Finding] = []
    seen: set[str] = set()

    for enforcement in list_enforcements(app, sandbox_id, limit=200):
        if enforcement.agent_slug not in slugs:
            continue
        still = [
            t
            for t in enforcement.trigger_ids
            if t in paused
            and t not in seen
            and _paused_since_enforced(enforcement.enforced_at, paused[t].updated_at)
        ]
        if not still:
            continue
        seen.update(still)
        findings.append(
            Finding(
                "cost_watch_paused",
                "warning",
                f"Cost-watch paused {enforcement.agent_slug}'s triggers {', '.join(still)} at "
                f"{enforcement.enforced_at.isoformat(timespec='seconds')}: {enforcement.reason}",
                "; ".join(f"`cairn agent trigger resume {t}`" for t in still)
                + " once the cause is fixed.",
                enforcement.to_dict(),
                enforcement.agent_slug,
            )
        )
    return findings


def _paused_since_enforced(enforced_at: datetime, paused_at: datetime | None) -> bool:
    """Whether a trigger's pause may be the enforcement's (no later change to it)."""
    return paused_at is None or _aware(enforced_at) >= _aware(paused_at)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["doctor"]
