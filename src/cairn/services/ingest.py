"""Event ingestion: store the event once, then record every trigger's decision about it.

One path for every source that emits events (webhooks, schedules, integrations). The event
is committed before anything is decided, so an acknowledged event is never lost; a retry
with the same sender event id is acknowledged and not decided again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn.domain.sources import DataSource
from cairn.domain.triggers import (
    Event,
    Trigger,
    TriggerDecision,
    event_type_matches,
    filter_mismatch,
)
from cairn.errors import Busy
from cairn.ids import new_id
from cairn.services.app import App


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


def record_rejected(app: App, source: DataSource, reason: str) -> str:
    """Keep a refused delivery (bad signature, stale, too large, malformed) with its reason."""
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
) -> IngestResult:
    """Store the event, then decide every trigger on its source (fires go to the server's
    queue; without a server they run before this returns)."""
    from cairn.store import events as event_store

    event = Event(
        event_id=new_id("evt"),
        sandbox_id=source.sandbox_id,
        source_id=source.source_id,
        event_type=event_type,
        payload=payload,
        sender_event_id=sender_event_id,
        received_at=datetime.now(UTC),
    )
    with app.store.begin() as conn:
        existing = event_store.insert_event(conn, event)
    if existing is not None:
        return IngestResult(existing, duplicate=True)
    bound = app.caches.triggers_for(source.sandbox_id, source.source_id)
    decisions = [await _decide(app, trigger, event) for trigger in bound]
    return IngestResult(event.event_id, duplicate=False, decisions=decisions)


async def _decide(app: App, trigger: Trigger, event: Event) -> TriggerDecision:
    from cairn.services.runs import start_fire
    from cairn.store import agents as agent_store
    from cairn.store import events as event_store
    from cairn.store import triggers as trigger_store

    now = datetime.now(UTC)

    def decided(
        kind: Any, detail: dict[str, Any] | None = None, run_id: str | None = None
    ) -> TriggerDecision:
        decision = TriggerDecision(event.event_id, trigger.trigger_id, kind, detail, run_id, now)
        with app.store.begin() as conn:
            event_store.record_decision(conn, decision)
        return decision

    if trigger.status == "paused":
        return decided("paused")
    with app.store.connect() as conn:
        agent = agent_store.get_agent_by_id(conn, trigger.sandbox_id, trigger.agent_id)
    if agent.status == "archived":
        return decided("agent_archived", {"agent": agent.slug})
    if not event_type_matches(trigger.event_type_filter, event.event_type):
        return decided(
            "filtered_out",
            {
                "filter": "event_type_filter",
                "expected": trigger.event_type_filter,
                "actual": event.event_type,
            },
        )
    mismatch = filter_mismatch(trigger.filter_config, event.payload)
    if mismatch is not None:
        return decided("filtered_out", mismatch)
    with app.store.begin() as conn:
        allowed = trigger_store.claim_fire(conn, trigger.trigger_id, now)
        window = None if allowed else trigger_store.window_of(conn, trigger.trigger_id)
    if not allowed:
        return decided("rate_limited", window)
    try:
        fire = start_fire(
            app,
            trigger.sandbox_id,
            agent.slug,
            event.payload,
            kind="trigger",
            trigger_id=trigger.trigger_id,
        )
    except Busy as busy:
        return decided("busy", {"message": str(busy)})
    decision = decided("fired", {"event_type": event.event_type}, fire.run.run_id)
    if fire.job is None:  # no server pool (the CLI in-process): run it now
        await app.runner.execute(fire.run, fire.agent, fire.available)
    return decision
