"""Explain what an event did: every trigger's recorded decision, in plain English, with the
command that changes it; and "why didn't my agent fire?" from the agent's last event.

Each trigger decision of ``cairn.domain.triggers``, an event no trigger decided, a refused
delivery (from the refusal code the webhook provider recorded, in the provider's terms: its
header, where its secret is) and a provider handshake map to one finding code each;
``docs/diagnosis.md`` lists them.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cairn.domain.agents import Agent
from cairn.domain.deliveries import Refusal
from cairn.domain.diagnosis import Explanation, Finding, by_severity
from cairn.domain.runs import Run
from cairn.domain.sources import DataSource
from cairn.domain.triggers import Event, Trigger, TriggerDecision
from cairn.errors import UsageError
from cairn.services.app import App
from cairn.services.diagnosis.rules import quote_json
from cairn.services.triggers import EVENT_SOURCE_KINDS
from cairn.services.webhooks import MAX_BODY_BYTES, TOLERANCE_S
from cairn.text import capitalised, clip, names, unique
from cairn.webhooks.base import WebhookProvider
from cairn.webhooks.registry import get_provider

AGENT_PLACEHOLDER = "AGENT"


@dataclass(slots=True)
class EventFacts:
    """What an event diagnosis looks up beside the event: its source, the triggers and
    agents its decisions name (as they are now), and the runs it fired."""

    source: DataSource | None
    triggers: dict[str, Trigger] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    only_agent: Agent | None = None

    def source_name(self) -> str:
        return self.source.label if self.source else "(deleted source)"


def _gather(conn: Any, app: App, sandbox_id: str, event: Event) -> EventFacts:
    from cairn.errors import NotFound
    from cairn.store import agents as agent_store
    from cairn.store import runs as run_store
    from cairn.store import sources as source_store
    from cairn.store import triggers as trigger_store

    try:
        source: DataSource | None = source_store.get_source(conn, sandbox_id, event.source_id)
    except NotFound:
        source = None
    facts = EventFacts(source)
    for trigger in trigger_store.list_triggers(conn, sandbox_id, source_id=event.source_id):
        facts.triggers[trigger.trigger_id] = trigger
    for agent in agent_store.list_agents(conn, sandbox_id):
        facts.agents[agent.agent_id] = agent
    for decision in event.decisions or []:
        if decision.run_id:
            try:
                facts.runs[decision.run_id] = run_store.get_run(conn, sandbox_id, decision.run_id)
            except NotFound:
                pass
    return facts


def explain_event(app: App, sandbox_id: str, event_id: str) -> Explanation:
    """Why event ``event_id`` fired what it fired (or nothing), from the recorded trigger
    decisions, or why its delivery was refused."""
    from cairn.store import events as event_store

    with app.store.connect() as conn:
        event = event_store.get_event(conn, sandbox_id, event_id)
        facts = _gather(conn, app, sandbox_id, event)
    return diagnose_event(event, facts)


def why_not_fired(app: App, sandbox_id: str, slug: str) -> Explanation:
    """Why agent ``slug`` did (not) fire on the most recent event of any source bound to it,
    or that it has no trigger at all."""
    from cairn.store import agents as agent_store
    from cairn.store import events as event_store
    from cairn.store import sources as source_store
    from cairn.store import triggers as trigger_store

    with app.store.connect() as conn:
        agent = agent_store.get_agent(conn, sandbox_id, slug)
        triggers = trigger_store.list_triggers(conn, sandbox_id, agent_id=agent.agent_id)
        if not triggers:
            event_sources = [
                s
                for s in source_store.list_sources(conn, sandbox_id)
                if s.kind in EVENT_SOURCE_KINDS and s.status != "revoked"
            ]
            finding = _no_trigger_for_agent(agent, event_sources)
            return Explanation(slug, f"{slug} never fires: {finding.cause}", [finding], "agent")
        latest: Event | None = None
        source_ids = unique(t.data_source_id for t in triggers)
        for source_id in source_ids:
            found = event_store.list_events(conn, sandbox_id, source_id=source_id, limit=1)
            if found and (latest is None or found[0].event_id > latest.event_id):
                latest = found[0]
        if latest is None:
            stored = {s.source_id: s for s in source_store.list_sources(conn, sandbox_id)}
            # A deleted source is named by its id.
            sources = {sid: stored[sid] for sid in source_ids if sid in stored}
            finding = _no_events(agent, triggers, sources)
            findings = [finding, *_paused_now(triggers, set())]
            return Explanation(
                slug, f"{slug} has not fired: {finding.cause}", by_severity(findings), "agent"
            )
        facts = _gather(conn, app, sandbox_id, latest)
    facts.only_agent = agent
    for trigger in triggers:
        facts.triggers.setdefault(trigger.trigger_id, trigger)
    explained = diagnose_event(latest, facts)
    return Explanation(slug, explained.summary, explained.findings, "agent")


# --- the rules ---------------------------------------------------------------------------


def diagnose_event(event: Event, facts: EventFacts) -> Explanation:
    """The explanation of one event (pure over the event and ``facts``). With
    ``facts.only_agent`` it is about that agent's triggers only."""
    head = (
        f"Event {event.event_id} ({event.event_type or 'refused delivery'} on source "
        f"{facts.source_name()}{_arrival(event)})"
    )
    if event.status == "rejected":
        finding = _rejected(event, facts)
        return Explanation(
            event.event_id, f"{head} was refused: {finding.cause}", [finding], "event"
        )
    if event.delivery is not None and event.delivery.handshake:
        finding = _handshake(event, facts)
        return Explanation(event.event_id, f"{head}: {finding.cause}", [finding], "event")
    decisions = list(event.decisions or [])
    agent = facts.only_agent
    if agent is not None:
        decisions = [d for d in decisions if _agent_of(d, facts) == agent.agent_id]
    findings: list[Finding] = []
    if not decisions:
        findings.append(_undecided(event, facts))
    for decision in decisions:
        findings.append(_decision(event, decision, facts))
    if agent is not None:
        reported = {d.trigger_id for d in decisions if d.decision == "paused"}
        mine = [t for t in facts.triggers.values() if t.agent_id == agent.agent_id]
        findings.extend(_paused_now(mine, reported))
    findings = by_severity(findings)
    fired = [f for f in findings if f.code == "fired"]
    primary = fired[0] if fired and not any(f.needs_fixing for f in findings) else findings[0]
    if agent is not None:
        verb = "fired" if fired else "did not fire"
        what = f"{event.event_type} on source {facts.source_name()}{_arrival(event)}"
        summary = f"{agent.slug} {verb} on its last event, {event.event_id} ({what}): "
        summary += primary.cause
    else:
        summary = f"{head}: {primary.cause}"
    return Explanation(event.event_id, summary, findings, "event")


def _arrival(event: Event) -> str:
    """ ", GitHub delivery 72d3…, type from X-GitHub-Event header + body.action" for a
    provider delivery; nothing for a native one."""
    delivery = event.delivery
    if delivery is None or delivery.provider == "cairn":
        return ""
    said = f", {_provider_of(event).title} delivery"
    if delivery.delivery_id:
        said += f" {delivery.delivery_id}"
    if delivery.type_from and event.event_type:
        said += f", type from {delivery.type_from}"
    return said


def _agent_of(decision: TriggerDecision, facts: EventFacts) -> str | None:
    trigger = facts.triggers.get(decision.trigger_id)
    return trigger.agent_id if trigger else None


def _slug(trigger: Trigger | None, facts: EventFacts) -> str:
    if trigger is None:
        return AGENT_PLACEHOLDER
    if trigger.agent_slug:
        return trigger.agent_slug
    agent = facts.agents.get(trigger.agent_id)
    return agent.slug if agent else AGENT_PLACEHOLDER


def _decision(event: Event, decision: TriggerDecision, facts: EventFacts) -> Finding:
    trigger = facts.triggers.get(decision.trigger_id)
    slug = _slug(trigger, facts)
    tid = decision.trigger_id
    named = f"trigger {tid} (agent {slug})"
    detail = decision.detail or {}
    evidence: dict[str, Any] = {"decision": decision.to_dict()}
    if trigger is None:
        evidence["trigger"] = None  # destroyed since
    if decision.decision == "fired":
        run = facts.runs.get(decision.run_id or "")
        state = f" ({run.status}, {run.outcome})" if run and run.outcome else ""
        quiet = run is not None and (run.status != "succeeded" or run.outcome != "acted")
        if run is not None:
            evidence["run"] = {
                "run_id": run.run_id,
                "status": run.status,
                "outcome": run.outcome,
            }
        return Finding(
            "fired",
            "info",
            f"{capitalised(named)} fired: run {decision.run_id}{state}.",
            (
                f"The trigger worked; see why the run did what it did: "
                f"`cairn runs explain {decision.run_id}`."
                if quiet
                else "Nothing to fix."
            ),
            evidence,
        )
    if decision.decision == "filtered_out":
        return _filtered(event, decision, trigger, named, evidence)
    if decision.decision == "rate_limited":
        cap = detail.get("rate_limit_per_hour")
        count = detail.get("fires_in_window")
        start = detail.get("window_started_at")
        reopens = _plus_hour(start)
        more = max(int(cap or 1) * 2, int(count or 0) + 1)
        return Finding(
            "rate_limited",
            "warning",
            f"{capitalised(named)} was rate-limited: it had already fired {count} "
            f"times in the hourly window that began at {start} (cap {cap} per hour).",
            f"It fires again once the window ends ({reopens}); to allow more, "
            f"`cairn agent trigger update {tid} --rate-limit {more}` (or `--rate-limit none` "
            "to remove the cap).",
            evidence
            | {"rate_limit_per_hour": cap, "fires_in_window": count, "window_started_at": start},
        )
    if decision.decision == "paused":
        still = trigger is not None and trigger.status == "paused"
        return Finding(
            "trigger_paused",
            "warning",
            f"{capitalised(named)} was paused when the event came, so it did not fire"
            + (" (it is still paused)." if still else " (it has been resumed since)."),
            (
                f"Resume it: `cairn agent trigger resume {tid}`; events that arrive while it "
                "is paused are recorded, not replayed."
                if still
                else "It is active again; send the event again to fire it, or test with "
                f"`cairn agent test {slug} --event-payload {quote_json(event.payload)}`."
            ),
            evidence | {"trigger_status": trigger.status if trigger else None},
        )
    if decision.decision == "agent_archived":
        archived_slug = str(detail.get("agent") or slug)
        return Finding(
            "agent_archived",
            "warning",
            f"Agent {archived_slug} is archived, and triggers never fire archived agents "
            f"({tid} skipped the event).",
            f"Restore it: `cairn agent unarchive {archived_slug}`.",
            evidence,
        )
    if decision.decision == "busy":
        return Finding(
            "server_busy",
            "error",
            f"The server could not take the fire for {named}: {detail.get('message')}. "
            "Nothing was fired.",
            "Send the event again once the server has room (a new event id, or the sender's "
            f"retry), or run it by hand: `cairn agent test {slug} --event-payload "
            f"{quote_json(event.payload)}`. If the queue is often full, start the server with "
            "more room: `cairn serve --workers N --queue-size M`.",
            evidence,
        )
    return Finding(
        "undecided",
        "warning",
        f"{capitalised(named)} recorded {decision.decision!r}.",
        "See `cairn events show " + event.event_id + "`.",
        evidence,
    )


def _filtered(
    event: Event,
    decision: TriggerDecision,
    trigger: Trigger | None,
    named: str,
    evidence: dict[str, Any],
) -> Finding:
    detail = decision.detail or {}
    tid = decision.trigger_id
    which = detail.get("filter")
    if which == "event_type_filter":
        expected = detail.get("expected")
        actual = detail.get("actual")
        return Finding(
            "filtered_out",
            "warning",
            f"{capitalised(named)} filtered it out: its event_type_filter wants "
            f"{expected!r}, but this event is {actual!r}.",
            "If events of this type should fire it, widen the trigger: "
            f"`cairn agent trigger update {tid} --event-type {_word(actual)}` "
            "(or `--event-type '*'` for every type).",
            evidence | {"filter": "event_type_filter", "expected": expected, "actual": actual},
        )
    path = str(detail.get("field"))
    expected = detail.get("expected")
    actual = detail.get("actual")
    missing = bool(detail.get("missing"))
    config = dict(trigger.filter_config or {}) if trigger else {path: expected}
    if missing:
        config.pop(path, None)
        said = f"the payload has no {path!r}"
    else:
        options = list(expected) if isinstance(expected, list) else [expected]
        extra = actual if isinstance(actual, list) else [actual]
        config[path] = options + [v for v in extra if v not in options]
        said = f"the payload's {path!r} is {json.dumps(actual, default=str)}"
    widened = f"`cairn agent trigger update {tid} --filter " + (
        f"{quote_json(config)}`" if config else "null`"
    )
    return Finding(
        "filtered_out",
        "warning",
        f"{capitalised(named)} filtered it out: its filter_config wants {path!r} "
        f"to be {json.dumps(expected, default=str)}, but {said}.",
        "If the sender should include it, fix the sender's payload; if events like this "
        f"should fire the agent, widen the filter: {widened}.",
        evidence
        | {
            "filter": "filter_config",
            "field": path,
            "expected": expected,
            "actual": actual,
            "missing": missing,
            "filter_config": trigger.filter_config if trigger else None,
        },
    )


def _undecided(event: Event, facts: EventFacts) -> Finding:
    source = facts.source
    label = source.label if source else event.source_id
    agent = facts.only_agent
    slug = agent.slug if agent else AGENT_PLACEHOLDER
    later = [
        t
        for t in facts.triggers.values()
        if (agent is None or t.agent_id == agent.agent_id)
        and t.created_at is not None
        and event.received_at is not None
        and t.created_at > event.received_at
    ]
    evidence: dict[str, Any] = {
        "decisions": [],
        "source_id": event.source_id,
        "event_type": event.event_type,
    }
    if later:
        evidence["triggers_created_after"] = [t.trigger_id for t in later]
        return Finding(
            "no_trigger",
            "warning",
            f"No trigger existed for {('agent ' + slug + ' on ') if agent else ''}source "
            f"{label!r} when the event came; {names([t.trigger_id for t in later])} was "
            "created after it.",
            "Later events are decided by it; to run the agent on this one, "
            f"`cairn agent test {_slug(later[0], facts)} --event-payload "
            f"{quote_json(event.payload)}`.",
            evidence,
        )
    return Finding(
        "no_trigger",
        "error",
        f"No trigger is bound to source {label!r}, so the event fired nothing.",
        f"Bind an agent to it: `cairn agent trigger create {slug} --source {label} "
        f"--event-type {event.event_type or '*'}`.",
        evidence,
    )


def _paused_now(triggers: list[Trigger], reported: set[str]) -> list[Finding]:
    return [
        Finding(
            "trigger_paused",
            "warning",
            f"Trigger {t.trigger_id} (agent {t.agent_slug}) is paused now, so it fires on "
            "nothing until it is resumed.",
            f"`cairn agent trigger resume {t.trigger_id}`.",
            {"trigger_id": t.trigger_id, "status": t.status},
        )
        for t in triggers
        if t.status == "paused" and t.trigger_id not in reported
    ]


def _no_trigger_for_agent(agent: Agent, event_sources: list[DataSource]) -> Finding:
    if event_sources:
        first = event_sources[0].label
        fix = (
            f"Bind it to a source: `cairn agent trigger create {agent.slug} --source {first}` "
            f"(sources that emit events: {names([s.label for s in event_sources])})."
        )
    else:
        fix = (
            "Add a source that emits events (`cairn source webhook add <label>`), then "
            f"`cairn agent trigger create {agent.slug} --source <label>`."
        )
    return Finding(
        "no_trigger",
        "error",
        f"Agent {agent.slug} has no trigger, so no event ever fires it.",
        fix,
        {"triggers": [], "event_sources": [s.label for s in event_sources]},
    )


def _no_events(agent: Agent, triggers: list[Trigger], sources: dict[str, DataSource]) -> Finding:
    labels = [
        sources[t.data_source_id].label if t.data_source_id in sources else t.data_source_id
        for t in triggers
    ]
    webhooks = [s for s in sources.values() if s.kind == "webhook"]
    send = (
        f" Point the sender at {names([str(s.config.get('path')) for s in webhooks])} "
        "with signed requests (docs/webhooks.md)."
        if webhooks
        else ""
    )
    return Finding(
        "no_events",
        "warning",
        f"No event has reached {names(sorted(set(labels)))}, the source"
        + ("s" if len(set(labels)) > 1 else "")
        + f" {agent.slug}'s triggers listen to.",
        f"Check the sender is configured and sending.{send} To try the agent meanwhile: "
        f"`cairn agent test {agent.slug} --event-payload '{{…}}'`.",
        {
            "triggers": [t.trigger_id for t in triggers],
            "sources": sorted(set(labels)),
            "events": [],
        },
    )


# --- refused deliveries and handshakes -------------------------------------------------------


def _legacy_refusal(reason: str) -> Refusal | None:
    """The refusal code of a rejected event stored before refusals carried one."""
    low = reason.lower()
    for needle, code in (
        ("bad signature", "bad_signature"),
        ("stale delivery", "stale"),
        ("missing x-cairn-timestamp", "unsigned"),
        ("not unix seconds", "bad_timestamp"),
        ("malformed json", "malformed"),
        ('"type"', "malformed"),
        ("byte limit", "too_large"),
    ):
        if needle in low:
            return code  # type: ignore[return-value]
    return None


def _provider_of(event: Event) -> WebhookProvider:
    try:
        return get_provider(event.delivery.provider if event.delivery else None)
    except UsageError:  # a plugin provider since uninstalled: speak generically
        return get_provider(None)


def _rejected(event: Event, facts: EventFacts) -> Finding:
    reason = event.reject_reason or ""
    label = facts.source_name()
    provider = _provider_of(event)
    native = provider.name == "cairn"
    code = event.delivery.refusal if event.delivery else None
    code = code or _legacy_refusal(reason)
    evidence: dict[str, Any] = {
        "status": "rejected",
        "reject_reason": reason,
        "source_id": event.source_id,
        "provider": provider.name,
        "refusal": code,
    }
    rotate = f"`cairn source webhook rotate {label} --secret …`"
    if code == "bad_signature":
        return Finding(
            "bad_signature",
            "error",
            f"The delivery to {label!r} was refused: its {provider.signature_header} does not "
            "match the source's signing secret.",
            (
                "On the sender: sign with this source's signing secret (shown once by "
                "`cairn source webhook add`; if it is lost, add a new webhook source and point "
                "the sender at it), as `v1=` + hex HMAC-SHA256 of '<timestamp>.<raw body>' over "
                "the exact bytes sent (docs/webhooks.md)."
                if native
                else f"The source must hold the secret {provider.title} signs with: "
                f"{provider.secret_hint}; set it with {rotate}. A proxy that re-encodes the "
                "body also breaks the signature (docs/webhooks.md)."
            ),
            evidence,
        )
    if code == "stale":
        return Finding(
            "stale_delivery",
            "error",
            f"The delivery to {label!r} was refused as stale: its signed timestamp was more "
            f"than {provider.tolerance_s or TOLERANCE_S} s from the server's clock "
            f"({clip(reason, 120)}).",
            "On the sender: sign each attempt (retries too) with the current time, and keep "
            "its clock in sync (NTP)."
            if native
            else f"A replayed or long-delayed {provider.title} request, or the server's clock "
            "is off: keep it in sync (NTP); fresh deliveries from the provider are accepted.",
            evidence,
        )
    if code == "unsigned":
        return Finding(
            "unsigned_delivery",
            "error",
            f"The delivery to {label!r} was refused: {clip(reason, 140)}.",
            "On the sender: send both headers with every request (docs/webhooks.md)."
            if native
            else f"Is the sender really {provider.title}? Requests from another service need "
            "a source with its own provider (`cairn source webhook add … --provider …`).",
            evidence,
        )
    if code == "bad_timestamp":
        return Finding(
            "bad_timestamp",
            "error",
            f"The delivery to {label!r} was refused: {clip(reason, 120)}.",
            "On the sender: the timestamp header is the current time in whole unix seconds.",
            evidence,
        )
    if code == "malformed":
        return Finding(
            "malformed_delivery",
            "error",
            f"The delivery to {label!r} was refused: {clip(reason, 160)}.",
            'On the sender: send a JSON object {"type": "<event type>", "id": "<your event '
            'id>", "payload": {…}}.'
            if native
            else f"The body is not what {provider.title} sends; check the sender is "
            f"{provider.title} and sends JSON (docs/webhooks.md).",
            evidence,
        )
    if code == "too_large":
        return Finding(
            "delivery_too_large",
            "error",
            f"The delivery to {label!r} was refused: {clip(reason, 120)}.",
            f"On the sender: keep bodies under {MAX_BODY_BYTES // 1024} KiB; send a reference "
            "(a URL or an id) and let the agent fetch the rest with a tool.",
            evidence,
        )
    if code == "no_secret":
        return Finding(
            "awaiting_secret",
            "error",
            f"The delivery to {label!r} was refused: the source has no signing secret yet, "
            f"and {provider.title} issues its own.",
            f"Paste it: {rotate} ({provider.secret_hint}).",
            evidence,
        )
    if code == "unknown_event_type":
        return Finding(
            "unknown_event_type",
            "warning",
            f"The delivery to {label!r} was well signed but refused: {clip(reason, 160)}.",
            f"Subscribe the {provider.title} endpoint to the event kinds Cairn reads "
            "(docs/webhooks.md); nothing on Cairn's side needs changing.",
            evidence,
        )
    return Finding(
        "rejected_delivery",
        "error",
        f"The delivery to {label!r} was refused: {clip(reason, 160)}.",
        "Fix what the reason names on the sender (docs/webhooks.md).",
        evidence,
    )


def _handshake(event: Event, facts: EventFacts) -> Finding:
    delivery = event.delivery
    provider = _provider_of(event)
    kind = delivery.handshake if delivery else None
    return Finding(
        "handshake",
        "info",
        f"{provider.title}'s {kind} reached source {facts.source_name()!r}, was verified with "
        "its signing secret and answered; a handshake never fires a trigger.",
        "Nothing to fix: real events on this source are decided by its triggers.",
        {
            "provider": provider.name,
            "handshake": kind,
            "delivery": delivery.to_dict() if delivery else None,
        },
    )


def _word(value: Any) -> str:
    return shlex.quote(str(value)) if value else "'*'"


def _plus_hour(start: Any) -> str:
    try:
        return (datetime.fromisoformat(str(start)) + timedelta(hours=1)).isoformat()
    except ValueError:
        return "an hour after it began"
