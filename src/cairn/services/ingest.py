"""Event ingestion: the event, every trigger's decision about it and the runs it fires,
in ONE transaction.

One path for every source that emits events (webhooks, schedules, integrations). When the
transaction commits, the event is acknowledged and its fired runs are ``queued`` in the
ledger, which is the workers' backlog: an acknowledged event is never lost and a fired run
is never dropped. Back-pressure comes before: past the backlog limit ``Busy`` is raised
and nothing is written (the webhook answers 503 with ``Retry-After``). A retry with the
same sender event id is acknowledged and not decided again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cairn.domain.agents import Agent
from cairn.domain.deliveries import DeliveryFacts
from cairn.domain.runs import Run
from cairn.domain.sources import DataSource
from cairn.domain.triggers import (
    Event,
    Trigger,
    TriggerDecision,
    event_type_matches,
    filter_mismatch,
)
from cairn.ids import new_id
from cairn.services.app import App

if TYPE_CHECKING:
    from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one delivered event."""

    event_id: str
    duplicate: bool
    decisions: list[TriggerDecision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the webhook response body)."""
        return {
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "decisions": [d.to_dict() for d in self.decisions],
        }


def record_rejected(
    app: App, source: DataSource, reason: str, delivery: DeliveryFacts | None = None
) -> str:
    """Keep a refused delivery (bad signature, stale, too large, malformed) with its reason
    and, from a webhook provider, the refusal code and what the sender sent."""
    from cairn.store import events as event_store

    event = Event(
        event_id=new_id("evt"),
        sandbox_id=source.sandbox_id,
        source_id=source.source_id,
        event_type=None,
        payload=None,
        status="rejected",
        reject_reason=reason,
        received_at=datetime.now(UTC),
        delivery=delivery,
    )
    with app.store.begin() as conn:
        event_store.insert_event(conn, event)
    return event.event_id


async def ingest(
    app: App,
    source: DataSource,
    event_type: str,
    payload: Any,
    sender_event_id: str | None = None,
    delivery: DeliveryFacts | None = None,
    traceparent: str | None = None,
) -> IngestResult:
    """Store the event with every trigger's decision and the runs it fires (queued for the
    workers; without workers in this process they run before this returns). Raises
    ``Busy`` before writing anything when the backlog is full. ``delivery``: how a webhook
    delivery arrived (provider, delivery id, type source), kept with the event; the runs
    it fires keep the delivery's ``traceparent``."""
    from cairn.store import events as event_store
    from cairn.store import runs as run_store

    executor = app.executor
    if executor is not None:
        app.gate.check()
    event = Event(
        event_id=new_id("evt"),
        sandbox_id=source.sandbox_id,
        source_id=source.source_id,
        event_type=event_type,
        payload=payload,
        sender_event_id=sender_event_id,
        received_at=datetime.now(UTC),
        delivery=delivery,
    )
    fired: list[tuple[Run, Agent]] = []
    with app.store.begin() as conn:
        existing = event_store.insert_event(conn, event)
        if existing is not None:
            return IngestResult(existing, duplicate=True)
        bound = app.caches.triggers_for(source.sandbox_id, source.source_id, conn)
        decisions = []
        for trigger in bound:
            decision, fire = _decide(
                app, conn, trigger, event, queued=executor is not None, traceparent=traceparent
            )
            event_store.record_decision(conn, decision)
            decisions.append(decision)
            if fire is not None:
                run_store.create_run(conn, fire[0])
                fired.append(fire)
        if fired and executor is not None:
            executor.enqueue(conn, [run for run, _agent in fired])
    if executor is not None:
        if fired:
            executor.accepted([run for run, _agent in fired])
    else:
        from cairn.services.sources import available_sources

        for run, agent in fired:  # the CLI in-process: run them now
            await app.runner.execute(run, agent, available_sources(app, run.sandbox_id))
    return IngestResult(event.event_id, duplicate=False, decisions=decisions)


def _decide(
    app: App,
    conn: Connection,
    trigger: Trigger,
    event: Event,
    *,
    queued: bool,
    traceparent: str | None = None,
) -> tuple[TriggerDecision, tuple[Run, Agent] | None]:
    """One trigger's decision, and the run it fires (not yet written)."""
    from cairn.store import agents as agent_store
    from cairn.store import triggers as trigger_store

    now = datetime.now(UTC)

    def decided(
        kind: Any, detail: dict[str, Any] | None = None, run_id: str | None = None
    ) -> TriggerDecision:
        return TriggerDecision(event.event_id, trigger.trigger_id, kind, detail, run_id, now)

    if trigger.status == "paused":
        return decided("paused"), None
    agent = agent_store.get_agent_by_id(conn, trigger.sandbox_id, trigger.agent_id)
    if agent.status == "archived":
        return decided("agent_archived", {"agent": agent.slug}), None
    if not event_type_matches(trigger.event_type_filter, event.event_type):
        detail = {
            "filter": "event_type_filter",
            "expected": trigger.event_type_filter,
            "actual": event.event_type,
        }
        return decided("filtered_out", detail), None
    mismatch = filter_mismatch(trigger.filter_config, event.payload)
    if mismatch is not None:
        return decided("filtered_out", mismatch), None
    if not trigger_store.claim_fire(conn, trigger.trigger_id, now):
        return decided("rate_limited", trigger_store.window_of(conn, trigger.trigger_id)), None
    run = app.runner.new_run(
        agent,
        event.payload,
        kind="trigger",
        trigger_id=trigger.trigger_id,
        start_now=not queued,
        traceparent=traceparent,
    )
    return decided("fired", {"event_type": event.event_type}, run.run_id), (run, agent)
