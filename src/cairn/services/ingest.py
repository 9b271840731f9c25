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

from cairn.batches import LoopBatch
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
from cairn.errors import Busy
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import events as event_store
from cairn.store import runs as run_store
from cairn.store import stamps
from cairn.store import triggers as trigger_store

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
    executor = app.executor
    if executor is not None:
        app.gate.check()
    event = Event.received_now(source, event_type, payload, sender_event_id, delivery)
    fired: list[tuple[Run, Agent]] = []
    with app.store.begin() as conn:
        existing = event_store.insert_event(conn, event)
        if existing is not None:
            return IngestResult(existing, duplicate=True)
        bound = app.caches.triggers_for(source.sandbox_id, source.source_id, conn)
        decisions = _decide_all(
            app, conn, bound, event, fired, queued=executor is not None, traceparent=traceparent
        )
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


def _decide_all(
    app: App,
    conn: Connection,
    bound: list[Trigger],
    event: Event,
    fired: list[tuple[Run, Agent]],
    *,
    queued: bool,
    traceparent: str | None = None,
    agents: dict[str, Agent] | None = None,
    write: bool = True,
) -> list[TriggerDecision]:
    """Every bound trigger's decision about ``event``, with the runs they fire (appended to
    ``fired``); written on ``conn`` unless ``write`` is off (the caller writes them)."""
    decisions = []
    for trigger in bound:
        decision, fire = _decide(
            app, conn, trigger, event, queued=queued, traceparent=traceparent, agents=agents
        )
        if write:
            event_store.record_decisions(conn, [decision])
        decisions.append(decision)
        if fire is not None:
            if write:
                run_store.create_run(conn, fire[0])
            fired.append(fire)
    return decisions


def _decide(
    app: App,
    conn: Connection,
    trigger: Trigger,
    event: Event,
    *,
    queued: bool,
    traceparent: str | None = None,
    agents: dict[str, Agent] | None = None,
) -> tuple[TriggerDecision, tuple[Run, Agent] | None]:
    """One trigger's decision, and the run it fires (not yet written). ``agents``: the
    agents already read in this transaction, by id (a group commit reads each once)."""
    now = datetime.now(UTC)

    def decided(
        kind: Any, detail: dict[str, Any] | None = None, run_id: str | None = None
    ) -> TriggerDecision:
        return TriggerDecision(event.event_id, trigger.trigger_id, kind, detail, run_id, now)

    if trigger.status == "paused":
        return decided("paused"), None
    agent = None if agents is None else agents.get(trigger.agent_id)
    if agent is None:
        agent = app.caches.agent(conn, trigger.sandbox_id, trigger.agent_id)
        if agents is not None:
            agents[trigger.agent_id] = agent
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


# --- group commit: the webhook route's writer ---------------------------------------------


@dataclass(slots=True)
class _Pending:
    """A verified delivery waiting for the next group commit."""

    source: DataSource
    stamp: tuple[Any, ...]
    event: Event
    traceparent: str | None


class GroupCommit:
    """Stores webhook events several to a transaction, each answered after its commit.

    A delivery is verified first, with the source as cached (``Caches.source_entry``), and
    then handed to ``ingest``, which waits. The deliveries handed over while the event loop
    is busy with others are written together at its next turn: ONE transaction reads each
    source's stored values once (a source that changed since its deliveries were verified
    sends them back to be verified again, nothing written), checks the backlog for the
    events that may fire, inserts the events with one statement and decides each one with
    every bound trigger, its fired runs ``queued`` in the same transaction. Only after the
    commit is any of them answered, so a 2xx still means stored, decided and queued. The
    commit, the statements and the source check are paid once per batch instead of once
    per event. A batch that fails is written again one event per transaction, so one bad
    event fails alone. Needs a running executor (``app.executor``): the server's case.
    """

    def __init__(self, app: App, max_batch: int = 256) -> None:
        self.app = app
        self._batch: LoopBatch[_Pending, IngestResult | Busy | None] = LoopBatch(
            self._write, max_batch
        )

    async def ingest(
        self,
        source: DataSource,
        stamp: tuple[Any, ...],
        event_type: str,
        payload: Any,
        sender_event_id: str | None,
        delivery: DeliveryFacts | None,
        traceparent: str | None,
    ) -> IngestResult | None:
        """Store the event once its batch commits; ``None``: the source's stored values are
        no longer ``stamp`` (verify the delivery again with the source as stored now).
        Raises ``Busy`` (nothing written) when the event may fire and the backlog is full."""
        event = Event.received_now(source, event_type, payload, sender_event_id, delivery)
        outcome = await self._batch.submit(_Pending(source, stamp, event, traceparent))
        if isinstance(outcome, Busy):
            raise outcome
        return outcome

    def _write(self, chunk: list[_Pending]) -> list[IngestResult | Busy | None]:
        app = self.app
        executor = app.executor
        assert executor is not None, "the group commit serves a server with an executor"
        outcomes: list[IngestResult | Busy | None] = [None] * len(chunk)
        runs: list[Run] = []
        decided: list[TriggerDecision] = []
        with app.store.begin() as conn:
            stored: dict[str, tuple[Any, ...] | None] = {}
            bound: dict[str, list[Trigger]] = {}
            admitted: list[int] = []
            for index, item in enumerate(chunk):
                source = item.source
                sid = source.source_id
                if sid not in stored:
                    stored[sid] = stamps.source_stamp(conn, sid)
                if stored[sid] != item.stamp:
                    continue  # changed since it was verified: None, verify again
                if sid not in bound:
                    bound[sid] = app.caches.triggers_for(source.sandbox_id, sid, conn)
                may_fire = _may_fire(bound[sid], item.event)
                if may_fire:
                    try:
                        app.gate.check(may_fire)
                    except Busy as busy:
                        outcomes[index] = busy  # before anything of it is written
                        continue
                admitted.append(index)
            existing = event_store.insert_events(conn, [chunk[i].event for i in admitted])
            agents: dict[str, Agent] = {}
            for index, repeated in zip(admitted, existing, strict=True):
                item = chunk[index]
                if repeated is not None:
                    outcomes[index] = IngestResult(repeated, duplicate=True)
                    continue
                fired: list[tuple[Run, Agent]] = []
                decisions = _decide_all(
                    app,
                    conn,
                    bound[item.source.source_id],
                    item.event,
                    fired,
                    queued=True,
                    traceparent=item.traceparent,
                    agents=agents,
                    write=False,
                )
                decided.extend(decisions)
                runs.extend(run for run, _agent in fired)
                outcomes[index] = IngestResult(item.event.event_id, False, decisions)
            run_store.create_runs(conn, runs)  # the batch's, one statement each
            event_store.record_decisions(conn, decided)
            if runs:
                executor.enqueue(conn, runs)
        if runs:
            executor.accepted(runs)
        return outcomes


def _may_fire(bound: list[Trigger], event: Event) -> int:
    """How many of the bound triggers may fire for ``event`` (an upper bound: the agent
    may be archived, the rate limit reached), for the backlog check before it is written."""
    return sum(
        1
        for trigger in bound
        if trigger.status != "paused"
        and event_type_matches(trigger.event_type_filter, event.event_type)
        and filter_mismatch(trigger.filter_config, event.payload) is None
    )
